"""Delivering ``telegram_outbox`` (SPEC 9): claim a chat's oldest owed message, pace, send, mark it.

``OutboxDelivery.deliver_due`` claims up to a batch of messages (each the oldest PENDING one of its chat, leased
for ``DeliveryPolicy.lease``), takes the chat's turn and one message of the global budget from the
:class:`MessagePacer`, sends, and only after Telegram's ok marks the row SENT with Telegram's ``message_id``.
A 429 puts the row back for ``retry_after``; a 5xx or an unreachable Bot API backs off; a 400 or 403 marks it
FAILED (logged, never retried). A process killed mid-send leaves its lease, which runs out: the next claim
takes the message again (a kill between Telegram's ok and the mark is the one case that sends twice).

``OutboxWorker`` runs deliveries on a few threads until stopped (``starpromo serve`` with the bot, ``starpromo
worker``, polling); ``kick`` wakes it. Right after an update's transaction commits, the process that handled it
delivers that update's replies itself (``deliver_chats``) when their chat's turn and the global budget allow at
once, so a quiet bot answers as fast as before and a flood never holds a webhook request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import attrs

from adapters.jsonlog import log_event
from adapters.telegram import Button, TelegramApiError, TelegramBotApi
from adapters.telegram.client import CONNECT_TIMEOUT, READ_TIMEOUT, RetryPolicy
from adapters.telegram.pacing import MessagePacer
from domain.outbox import SEND_INVOICE, DeliveryPolicy, OutboxMessage, permanent_refusal
from ports.clock import Clock
from ports.repositories import UnitOfWorkFactory

log = logging.getLogger("starpromo.bot.outbox")

# One send is one HTTP call: a 429 is rescheduled for its retry_after (not waited for: the thread moves on to other
# chats), a 5xx or a network error backs off through the outbox (DeliveryPolicy.backoff).
SEND_RETRY = RetryPolicy(attempts=1, max_wait=0.0, wait_on_429=False)
# The longest one send can take: a message is sent only while at least this much (or half the lease) of its lease
# is left, so a lease never runs out under a request in flight (another process would take the message again).
SEND_SECONDS = CONNECT_TIMEOUT + READ_TIMEOUT + 1
BATCH = 8
DEFAULT_THREADS = 4
IDLE_WAIT_SECONDS = 1.0
SENT_RETENTION = timedelta(days=7)
HOUSEKEEPING_BATCH = 1000


@attrs.define
class DeliveryCounts:
    """What one pass did: ``claimed`` rows, then each ``sent``, ``rate_limited`` (429), ``retried`` (5xx or
    unreachable), ``failed`` (refused for good or too old) or ``paced`` (put back: the chat's turn or the global
    budget was not there in time)."""

    claimed: int = 0
    sent: int = 0
    rate_limited: int = 0
    retried: int = 0
    failed: int = 0
    paced: int = 0

    def add(self, other: DeliveryCounts) -> None:
        for field in attrs.fields(DeliveryCounts):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class OutboxDelivery:
    def __init__(self, uow_factory: UnitOfWorkFactory, api: TelegramBotApi, pacer: MessagePacer, clock: Clock,
                 policy: DeliveryPolicy | None = None, batch: int = BATCH) -> None:
        self._uow = uow_factory
        self._api = api
        self.pacer = pacer
        self._clock = clock
        self.policy = policy or DeliveryPolicy()
        self._batch = batch
        self._send_margin = min(timedelta(seconds=SEND_SECONDS), self.policy.lease / 2)

    def deliver_due(self, *, chat_id: int | None = None, chat_wait: float = 1.1, budget_wait: float = 1.0,
                    limit: int | None = None) -> DeliveryCounts:
        """One claim (of at most ``limit``, default a batch) and the delivery of what it claimed. A message
        waits at most ``chat_wait`` seconds for its chat's turn and ``budget_wait`` for the global budget,
        else it is put back."""
        now = self._clock.now()
        with self._uow() as uow:
            claimed = uow.telegram_outbox.claim_due(now, now + self.policy.lease, limit or self._batch, chat_id)
            uow.commit()
        counts = DeliveryCounts(claimed=len(claimed))
        for message in claimed:
            outcome = self._deliver(message, chat_wait, budget_wait)
            setattr(counts, outcome, getattr(counts, outcome) + 1)
        return counts

    def deliver_chats(self, chat_ids: Iterable[int]) -> DeliveryCounts:
        """Right after a commit: the replies just written (``chat_ids``: one entry per reply), now, as far as their
        chat's turn and the budget allow without waiting for the budget (the rest stays for the worker)."""
        counts = DeliveryCounts()
        for chat_id, owed in sorted(Counter(chat_ids).items()):
            for _ in range(owed):
                one = self.deliver_due(chat_id=chat_id, budget_wait=0.0, limit=1)
                counts.add(one)
                if one.sent == 0:
                    break
        return counts

    def drain(self, max_seconds: float = 30.0, wait_for_due: bool = False) -> DeliveryCounts:
        """Deliver until nothing is due (or ``max_seconds`` passed). ``wait_for_due``: while a message becomes
        due (a 429's ``retry_after``, a lease running out) before then, wait for it (``run_telegram_outbox``)."""
        counts = DeliveryCounts()
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            one = self.deliver_due()
            counts.add(one)
            if one.claimed > 0:
                continue
            wait = self.until_next_due() if wait_for_due else None
            if wait is None or wait > deadline - time.monotonic():
                break
            time.sleep(min(max(wait, 0.05), 1.0))
        return counts

    def until_next_due(self) -> float | None:
        """Seconds until the next PENDING message may be claimed (negative: it may now); None: nothing pending."""
        with self._uow() as uow:
            next_due = uow.telegram_outbox.next_due_at()
        return None if next_due is None else (next_due - self._clock.now()).total_seconds()

    def housekeeping(self) -> int:
        """Forget SENT rows older than a week (bounded); how many."""
        with self._uow() as uow:
            removed = uow.telegram_outbox.delete_sent_before(self._clock.now() - SENT_RETENTION, HOUSEKEEPING_BATCH)
            uow.commit()
        return removed

    # --- one message ---------------------------------------------------------------------------------------

    def _deliver(self, message: OutboxMessage, chat_wait: float, budget_wait: float) -> str:
        assert message.id is not None
        if self.policy.too_old(message, self._clock.now()):
            self._fail(message, "too old to send", None)
            return "failed"
        wait = self.pacer.chat_wait(message.chat_id)
        if 0 < wait <= chat_wait:
            time.sleep(wait)
            wait = self.pacer.chat_wait(message.chat_id)
        if wait > 0:
            self._put_back(message, wait)
            return "paced"
        if not self.pacer.take(budget_wait):
            self._put_back(message, 0.0)
            return "paced"
        assert message.leased_until is not None
        if self._clock.now() > message.leased_until - self._send_margin:
            # Too little of the lease left for a request: leave the row alone; once its lease runs out any
            # process takes it again (touching it now could undo another process's newer claim).
            return "paced"
        try:
            telegram_message_id = self._send(message)
        except TelegramApiError as exc:
            return self._refused(message, exc)
        with self._uow() as uow:
            uow.telegram_outbox.mark_sent(message.id, telegram_message_id, self._clock.now())
            uow.commit()
        return "sent"

    def _send(self, message: OutboxMessage) -> int:
        p = message.payload
        if message.method == SEND_INVOICE:
            return self._api.send_invoice(message.chat_id, p["title"], p["description"], p["payload"], p["label"],
                                          int(p["amount"]), retry=SEND_RETRY)
        buttons = [[Button(b["text"], b["callback_data"]) for b in row] for row in p.get("buttons", ())]
        return self._api.send_message(message.chat_id, p["text"], buttons, retry=SEND_RETRY)

    def _refused(self, message: OutboxMessage, exc: TelegramApiError) -> str:
        assert message.id is not None
        now = self._clock.now()
        error = f"{exc.error_code or 'unreachable'}: {exc.description}"
        if exc.error_code == 429:
            retry_after = exc.retry_after if exc.retry_after is not None else 1
            self._reschedule(message, now + timedelta(seconds=retry_after), error)
            return "rate_limited"
        if permanent_refusal(exc.error_code):
            self._fail(message, error, exc.error_code)
            return "failed"
        self._reschedule(message, now + self.policy.backoff(message.attempts), error)
        log_event(log, "telegram_outbox_retry", level=logging.WARNING, outbox_id=message.id, chat_id=message.chat_id,
                  method=message.method, error_code=exc.error_code, attempts=message.attempts)
        return "retried"

    def _put_back(self, message: OutboxMessage, wait: float) -> None:
        self._reschedule(message, self._clock.now() + timedelta(seconds=wait), message.last_error)

    def _reschedule(self, message: OutboxMessage, when: Any, error: str | None) -> None:
        assert message.id is not None
        with self._uow() as uow:
            uow.telegram_outbox.reschedule(message.id, when, error, self._clock.now())
            uow.commit()

    def _fail(self, message: OutboxMessage, error: str, error_code: int | None) -> None:
        assert message.id is not None
        with self._uow() as uow:
            uow.telegram_outbox.mark_failed(message.id, error, self._clock.now())
            uow.commit()
        log_event(log, "telegram_outbox_failed", level=logging.ERROR, outbox_id=message.id, chat_id=message.chat_id,
                  method=message.method, error_code=error_code, error=error[:300], attempts=message.attempts)


class OutboxWorker:
    """``threads`` threads delivering the outbox until ``stop()``; ``kick()`` wakes them early."""

    def __init__(self, delivery: OutboxDelivery, threads: int = DEFAULT_THREADS,
                 idle_wait: float = IDLE_WAIT_SECONDS) -> None:
        self.delivery = delivery
        self._threads_wanted = threads
        self._idle_wait = idle_wait
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.counts = DeliveryCounts()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def start(self) -> OutboxWorker:
        with self._lock:
            if self.running:
                return self
            self._stop.clear()
            self._threads = [threading.Thread(target=self._loop, name=f"starpromo-outbox-{i}", daemon=True)
                             for i in range(self._threads_wanted)]
            for thread in self._threads:
                thread.start()
        log_event(log, "telegram_outbox_worker_started", threads=self._threads_wanted,
                  messages_per_second=self.delivery.pacer.per_second, shared_pacing=self.delivery.pacer.shared)
        return self

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                counts = self.delivery.deliver_due()
            except Exception as exc:  # the database away, a bug: log, wait, go on
                log_event(log, "telegram_outbox_pass_failed", level=logging.ERROR, error=type(exc).__name__,
                          message=str(exc)[:300])
                self._stop.wait(self._idle_wait)
                continue
            with self._lock:
                self.counts.add(counts)
            if counts.claimed == 0:
                # Asleep until a kick, the next message's due time (a 429's retry_after) or idle_wait at most.
                until_due = self.delivery.until_next_due()
                wait = self._idle_wait if until_due is None else min(max(until_due, 0.01), self._idle_wait)
                self._wake.wait(wait)
                self._wake.clear()
