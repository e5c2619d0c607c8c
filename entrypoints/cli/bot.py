"""``starpromo bot``: run the bot by long polling (local use) or register the webhook with Telegram."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

import click

from adapters.jsonlog import configure_json_logging, log_event
from domain.errors import StorageUnavailable
from entrypoints.cli._ops import fail, get_container

if TYPE_CHECKING:
    from entrypoints.container import Container

log = logging.getLogger("starpromo.bot.polling")

MAX_BACKOFF_SECONDS = 30.0


def register(cli: click.Group) -> None:
    cli.add_command(bot)


def run_polling(container: Container, long_polling_timeout: int, stop: threading.Event) -> int:
    """Long-poll ``getUpdates`` and take each update in (deduplicated like webhook deliveries) until
    ``stop`` is set; returns how many updates arrived. Bot API errors back off and retry; an update whose
    handling found the database away is not confirmed, so it comes again. The replies go out through this
    process's outbox delivery (SPEC 9)."""
    from adapters.telegram import TelegramApiError
    from entrypoints.bot.intake import UpdateIntake, update_id_of
    from entrypoints.bot.process import start_outbox_worker

    api = container.telegram_api()
    outbox = start_outbox_worker(container)
    intake = UpdateIntake(container.telegram_bot(), container.uow_factory(), container.clock(), outbox=outbox)
    api.delete_webhook()  # Telegram refuses getUpdates while a webhook is set
    log_event(log, "telegram_polling_started")
    offset, seen, backoff = 0, 0, 1.0
    while not stop.is_set():
        try:
            updates = api.get_updates(offset, long_polling_timeout)
        except TelegramApiError as exc:
            log_event(log, "telegram_polling_failed", level=logging.WARNING, error_code=exc.error_code,
                      description=exc.description, retry_in_s=backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            continue
        backoff = 1.0
        for raw in updates:
            update_id = update_id_of(raw)
            try:
                intake.take(raw)
            except StorageUnavailable as exc:
                # Not confirmed: Telegram hands this update (and those after it) out again on the next call.
                log_event(log, "telegram_polling_update_deferred", level=logging.WARNING, update_id=update_id,
                          error=type(exc).__name__, retry_in_s=backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                break
            if update_id is not None:
                offset = max(offset, update_id + 1)  # confirms it to Telegram on the next call
            seen += 1
    if outbox is not None:
        outbox.stop()
    log_event(log, "telegram_polling_stopped", updates=seen)
    return seen


@click.command()
@click.option("--polling", is_flag=True, help="Fetch updates by long polling (local use; removes a webhook).")
@click.option("--webhook-url", metavar="URL",
              help="Register URL (https://HOST/webhook/telegram; Telegram takes https only) as the bot's webhook "
                   "with TELEGRAM_WEBHOOK_SECRET.")
@click.option("--poll-timeout", default=25, show_default=True, type=click.IntRange(1, 50),
              help="Long-polling wait per getUpdates call, in seconds.")
@click.pass_context
def bot(ctx: click.Context, polling: bool, webhook_url: str | None, poll_timeout: int) -> None:
    """Run the Telegram bot (--polling) or point Telegram at the webhook of `starpromo serve` (--webhook-url)."""
    if polling == bool(webhook_url):
        fail("choose one: --polling (local use) or --webhook-url URL (production, served by `starpromo serve`)", 2)
    configure_json_logging()
    container = get_container(ctx)
    settings = container.settings()
    from adapters.telegram import TelegramApiError
    from adapters.telegram.rules import check_webhook_url

    if not settings.telegram_bot_token:
        fail("configuration error: TELEGRAM_BOT_TOKEN is required", 2)
    if webhook_url:
        try:
            check_webhook_url(webhook_url)
        except ValueError as exc:
            fail(f"error: --webhook-url: {exc}", 2)
        if not settings.telegram_webhook_secret:
            fail("configuration error: TELEGRAM_WEBHOOK_SECRET is required for a webhook", 2)
        try:
            container.telegram_api().set_webhook(webhook_url, settings.telegram_webhook_secret)
        except TelegramApiError as exc:
            fail(f"error: setWebhook failed: {exc.description}")
        click.echo(f"webhook set: {webhook_url}")
        return
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    try:
        run_polling(container, poll_timeout, stop)
    except KeyboardInterrupt:
        stop.set()
    except TelegramApiError as exc:
        fail(f"error: {exc.method} failed: {exc.description}")
