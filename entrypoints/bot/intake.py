"""Taking in Telegram updates (webhook and polling alike): validate, queue or handle, drop duplicates durably.

An update's ``update_id`` is recorded in ``processed_updates`` in the SAME transaction as the change it causes
and the replies it owes (``entrypoints.bot.turn``): a duplicate delivery is dropped even across restarts and
across several processes, and an update whose handling failed before that commit left nothing behind, so it
is handled again (Telegram redelivers what the webhook did not answer 2xx; the RQ job tries again) instead of
being dropped with its reply lost.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs
from telebot import types

from adapters.jsonlog import log_event
from entrypoints.bot.handlers import PromoBot
from entrypoints.bot.outbox import OutboxWorker
from entrypoints.bot.turn import UpdateAlreadyTaken
from ports.clock import Clock
from ports.jobs import JobQueue
from ports.repositories import UnitOfWorkFactory

log = logging.getLogger("starpromo.bot.intake")

PROCESS_UPDATE_JOB = "entrypoints.bot.jobs:process_update"
MAX_UPDATE_ID = 2**63 - 1
# Telegram keeps an undelivered update for at most 24 h; ids older than this are forgotten.
DEDUP_RETENTION = timedelta(hours=48)
HOUSEKEEPING_EVERY = 256  # ids: one cleanup pass per this many update ids
HOUSEKEEPING_BATCH = 1000


@attrs.frozen(repr=False)
class SealedUpdate:
    """A raw update travelling through the queue. Its repr names only the ``update_id``: RQ logs a job's
    call string (``process_update(<repr>)``), and an update may carry a plaintext promo code."""

    update_id: int
    raw: dict[str, Any]

    def __repr__(self) -> str:
        return f"<telegram update {self.update_id}>"


class Intake(enum.StrEnum):
    PROCESSED = "processed"
    QUEUED = "queued"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


def update_id_of(raw: object) -> int | None:
    """The ``update_id`` of a Telegram update, or None when ``raw`` is not one."""
    if not isinstance(raw, Mapping):
        return None
    uid = raw.get("update_id")
    if isinstance(uid, bool) or not isinstance(uid, int) or not 0 <= uid <= MAX_UPDATE_ID:
        return None
    return uid


def handle_update(bot: PromoBot, raw: Mapping[str, Any], uow_factory: UnitOfWorkFactory, clock: Clock,
                  outbox: OutboxWorker | None = None) -> Intake:
    """Parse and handle one update; then deliver its replies right away when their chat and the global budget
    allow (the rest is the outbox worker's). PROCESSED, DUPLICATE (another delivery was handled), or IGNORED
    (logged: not a usable Telegram update). Raises ``StorageUnavailable`` when the database is away: nothing of
    the update was kept, so it must be handled again (the webhook answers 503 and Telegram delivers it again;
    the RQ job tries again)."""
    update_id = update_id_of(raw)
    try:
        update = types.Update.de_json(dict(raw))  # type: ignore[no-untyped-call]
    except Exception as exc:  # telebot raises KeyError/TypeError/AttributeError on malformed objects
        log_event(log, "telegram_update_unparseable", level=logging.WARNING, update_id=update_id,
                  error=type(exc).__name__)
        return Intake.IGNORED
    try:
        turn = bot.dispatch(update, update_id)
    except UpdateAlreadyTaken:
        log_event(log, "telegram_update_duplicate", update_id=update_id)
        return Intake.DUPLICATE
    if outbox is not None and turn.chats:
        deliver_now(outbox, turn.chats)
    if update_id is not None and update_id % HOUSEKEEPING_EVERY == 0:
        _prune(uow_factory, clock)
    return Intake.PROCESSED


def deliver_now(outbox: OutboxWorker, chats: list[int]) -> None:
    """The replies just committed, sent now if they may go at once; a failure here loses nothing (they stay owed)."""
    try:
        outbox.delivery.deliver_chats(chats)
    except Exception as exc:
        log_event(log, "telegram_outbox_inline_failed", level=logging.WARNING, error=type(exc).__name__)
    outbox.kick()


def _prune(uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
    now = clock.now()
    with uow_factory() as uow:
        removed = uow.processed_updates.delete_before(now - DEDUP_RETENTION, HOUSEKEEPING_BATCH)
        uow.commit()
    log_event(log, "telegram_processed_updates_pruned", removed=removed)


class UpdateIntake:
    """``take(raw)``: one delivered update -> processed, queued (RQ), duplicate or ignored."""

    def __init__(self, bot: PromoBot, uow_factory: UnitOfWorkFactory, clock: Clock,
                 queue: JobQueue | None = None, outbox: OutboxWorker | None = None) -> None:
        self._bot = bot
        self._uow = uow_factory
        self._clock = clock
        self._queue = queue
        self.outbox = outbox

    def take(self, raw: object) -> Intake:
        update_id = update_id_of(raw)
        if update_id is None:
            log_event(log, "telegram_update_ignored", level=logging.WARNING, reason="not an update with an update_id")
            return Intake.IGNORED
        assert isinstance(raw, Mapping)
        # A pre-checkout query must be answered within 10 s: never behind a queue of other work.
        if self._queue is not None and "pre_checkout_query" not in raw:
            if self._seen(update_id):
                log_event(log, "telegram_update_duplicate", update_id=update_id)
                return Intake.DUPLICATE
            try:
                self._queue.enqueue(PROCESS_UPDATE_JOB, SealedUpdate(update_id, dict(raw)))
                return Intake.QUEUED
            except Exception as exc:  # Redis down must not stop the bot: handle it here instead
                log_event(log, "telegram_update_enqueue_failed", level=logging.WARNING, update_id=update_id,
                          error=type(exc).__name__)
        return handle_update(self._bot, raw, self._uow, self._clock, self.outbox)

    def _seen(self, update_id: int) -> bool:
        """Handled already (a cheap read before queueing; the handling itself is what decides)."""
        with self._uow() as uow:
            return uow.processed_updates.seen(update_id)
