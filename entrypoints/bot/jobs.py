"""The RQ job for a webhook update (enqueued by import path ``entrypoints.bot.jobs:process_update``)."""

from __future__ import annotations

from typing import Any

from entrypoints.bot.intake import SealedUpdate, handle_update
from entrypoints.worker.process import process_container


def process_update(update: SealedUpdate | dict[str, Any]) -> bool:
    """Handle one Telegram update (already deduplicated by the webhook) in the worker's container."""
    container = process_container()
    raw = update.raw if isinstance(update, SealedUpdate) else update
    return handle_update(container.telegram_bot(), raw)
