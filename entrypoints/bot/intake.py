"""Taking in Telegram updates (webhook and polling alike): validate, drop duplicates durably, dispatch.

A delivery is recorded in ``processed_updates`` (its own short transaction) *before* it is handled, so a
duplicate ``update_id`` is dropped even across restarts and across several ``serve`` processes. The cost:
an update whose handling crashes is not retried by Telegram; every handler is idempotent or reported
(payments are also covered by ``run_payment_recovery`` and reconciliation).
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


def handle_update(bot: PromoBot, raw: Mapping[str, Any]) -> bool:
    """Parse and dispatch one update; False (logged) when it is not a usable Telegram update."""
    update_id = update_id_of(raw)
    try:
        update = types.Update.de_json(dict(raw))  # type: ignore[no-untyped-call]
    except Exception as exc:  # telebot raises KeyError/TypeError/AttributeError on malformed objects
        log_event(log, "telegram_update_unparseable", level=logging.WARNING, update_id=update_id,
                  error=type(exc).__name__)
        return False
    try:
        bot.dispatch(update)
    except Exception as exc:
        log_event(log, "telegram_update_failed", level=logging.ERROR, update_id=update_id,
                  error=type(exc).__name__)
        return False
    return True


class UpdateIntake:
    """``take(raw)``: one delivered update -> processed, queued (RQ), duplicate or ignored."""

    def __init__(self, bot: PromoBot, uow_factory: UnitOfWorkFactory, clock: Clock,
                 queue: JobQueue | None = None) -> None:
        self._bot = bot
        self._uow = uow_factory
        self._clock = clock
        self._queue = queue

    def take(self, raw: object) -> Intake:
        update_id = update_id_of(raw)
        if update_id is None:
            log_event(log, "telegram_update_ignored", level=logging.WARNING, reason="not an update with an update_id")
            return Intake.IGNORED
        assert isinstance(raw, Mapping)
        if not self._first_delivery(update_id):
            log_event(log, "telegram_update_duplicate", update_id=update_id)
            return Intake.DUPLICATE
        # A pre-checkout query must be answered within 10 s: never behind a queue of other work.
        if self._queue is not None and "pre_checkout_query" not in raw:
            try:
                self._queue.enqueue(PROCESS_UPDATE_JOB, SealedUpdate(update_id, dict(raw)))
                return Intake.QUEUED
            except Exception as exc:  # Redis down must not stop the bot: handle it here instead
                log_event(log, "telegram_update_enqueue_failed", level=logging.WARNING, update_id=update_id,
                          error=type(exc).__name__)
        handled = handle_update(self._bot, raw)
        return Intake.PROCESSED if handled else Intake.IGNORED

    def _first_delivery(self, update_id: int) -> bool:
        now = self._clock.now()
        with self._uow() as uow:
            first = uow.processed_updates.add(update_id, now)
            if first and update_id % HOUSEKEEPING_EVERY == 0:
                removed = uow.processed_updates.delete_before(now - DEDUP_RETENTION, HOUSEKEEPING_BATCH)
                log_event(log, "telegram_processed_updates_pruned", removed=removed)
            uow.commit()
        return first
