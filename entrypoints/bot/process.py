"""Starting a process's outbox delivery (SPEC 9): ``starpromo serve`` with the bot (each worker process, after the
fork), ``starpromo worker`` without Redis, and ``starpromo bot --polling``."""

from __future__ import annotations

from entrypoints.bot.outbox import OutboxWorker
from entrypoints.container import Container


def start_outbox_worker(container: Container) -> OutboxWorker | None:
    """This process's delivery threads, started; None when no bot is configured (no TELEGRAM_BOT_TOKEN)."""
    if not container.telegram_bot.is_defined:
        return None
    worker: OutboxWorker = container.telegram_outbox_worker()
    return worker.start()
