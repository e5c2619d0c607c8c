"""``starpromo outbox``: the replies the Telegram bot owes (SPEC 9, issue 17) -- how many wait, how old the oldest
is, which Telegram refused for good; and sending refused ones again once the cause is fixed.

Message texts are never printed (a reply may quote what a user wrote); ids, chats, methods and errors are.
"""

from __future__ import annotations

from typing import Any

import click

from domain.outbox import OutboxMessage, OutboxStatus
from entrypoints.cli._ops import cli_errors, echo_json, get_container, json_value

MAX_LIST = 1000


def register(cli: click.Group) -> None:
    cli.add_command(outbox)


@click.group()
def outbox() -> None:
    """The Telegram replies owed: backlog, refused replies, redelivery."""


def _row(message: OutboxMessage) -> dict[str, Any]:
    return {"id": message.id, "chat_id": message.chat_id, "method": message.method,
            "status": message.status.value, "attempts": message.attempts,
            "created_at": json_value(message.created_at), "next_attempt_at": json_value(message.next_attempt_at),
            "last_error": message.last_error}


@outbox.command()
@click.option("--failed", "show_failed", default=20, show_default=True, type=click.IntRange(0, MAX_LIST),
              help="List up to this many replies Telegram refused for good (oldest first).")
@click.pass_context
def status(ctx: click.Context, show_failed: int) -> None:
    """Print the backlog as JSON: PENDING replies, how many are due now, the age of the oldest, FAILED ones."""
    with cli_errors():
        container = get_container(ctx)
        now = container.clock().now()
        with container.uow_factory()() as uow:
            summary = uow.telegram_outbox.summary(now)
            failed = uow.telegram_outbox.list(OutboxStatus.FAILED.value, show_failed) if show_failed else []
    next_due = summary.next_due_at
    echo_json({**summary.as_dict(now),
               "next_due_in_seconds": None if next_due is None else round((next_due - now).total_seconds(), 1),
               "failed_replies": [_row(m) for m in failed]})


@outbox.command()
@click.option("--id", "ids", multiple=True, type=click.IntRange(1, 2**63 - 1), metavar="ID",
              help="A FAILED reply to send again (repeatable).")
@click.option("--all-failed", is_flag=True, help="Every FAILED reply.")
@click.pass_context
def redeliver(ctx: click.Context, ids: tuple[int, ...], all_failed: bool) -> None:
    """Make FAILED replies PENDING again, due now (after fixing what Telegram refused, e.g. a product title).

    The delivery (serve with the bot, worker, run_telegram_outbox) sends them in order per chat."""
    if bool(ids) == all_failed:
        raise click.UsageError("choose --id ID (repeatable) or --all-failed")
    with cli_errors():
        container = get_container(ctx)
        with container.uow_factory()() as uow:
            count = uow.telegram_outbox.redeliver(None if all_failed else list(ids), container.clock().now())
            uow.commit()
    echo_json({"redelivered": count})
