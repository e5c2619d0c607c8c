"""The RQ job for a webhook update (enqueued by import path ``entrypoints.bot.jobs:process_update``)."""

from __future__ import annotations

import logging
import time
from typing import Any

from adapters.jsonlog import log_event
from domain.errors import StorageUnavailable
from entrypoints.bot.intake import Intake, SealedUpdate, handle_update
from entrypoints.worker.process import process_container

log = logging.getLogger("starpromo.bot.jobs")

# The database away: try again in-process (nothing of the update was kept), then fail the job; it waits in RQ's
# failed registry for `rq requeue` (docs/runbooks/telegram_outbox_backlog.md).
RETRY_DELAYS_SECONDS = (1.0, 2.0, 4.0, 8.0)


def process_update(update: SealedUpdate | dict[str, Any]) -> bool:
    """Handle one Telegram update in the worker's container; False when it was a duplicate or unusable."""
    container = process_container()
    raw = update.raw if isinstance(update, SealedUpdate) else update
    for delay in (*RETRY_DELAYS_SECONDS, None):
        try:
            outcome = handle_update(container.telegram_bot(), raw, container.uow_factory(), container.clock(),
                                    container.telegram_outbox_worker())
            return outcome is Intake.PROCESSED
        except StorageUnavailable as exc:
            if delay is None:
                raise
            log_event(log, "telegram_update_retry", level=logging.WARNING, update_id=raw.get("update_id"),
                      error=type(exc).__name__, retry_in_s=delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
