"""``starpromo audit`` (SPEC 10): the audit log, newest first - who changed what, through the API, the console, the
CLI (``cli:<login name>``) or a job (``job:<name>``)."""

from __future__ import annotations

import json
from typing import Any

import click

from domain.audit import ACTIONS, MAX_LIST_LIMIT, TARGET_TYPES
from domain.model import AuditEntry, AuditFilter
from entrypoints.cli._ops import cli_errors, echo_json, get_container, iso, more_hint, table

HEADERS = ("id", "at", "actor", "action", "target", "details")


def register(cli: click.Group) -> None:
    cli.add_command(audit)


def entry_json(e: AuditEntry) -> dict[str, Any]:
    return {"id": e.id, "at": iso(e.at), "actor": e.actor, "action": e.action, "target_type": e.target_type,
            "target_id": e.target_id, "details": e.details}


@click.command()
@click.option("--actor", help="Only entries by this actor, e.g. cli:alice, api, job:run_promo_bruteforce_guard.")
@click.option("--action", type=click.Choice(ACTIONS), help="Only entries of this action.")
@click.option("--target-type", type=click.Choice(TARGET_TYPES), help="Only entries about this kind of target.")
@click.option("--target-id", help="Only entries about this target id (with --target-type).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIST_LIMIT),
              help=f"Entries per page (1..{MAX_LIST_LIMIT}).")
@click.option("--cursor", type=click.IntRange(min=0), help="Continue below this id (the cursor printed after more:).")
@click.option("--json", "as_json", is_flag=True, help='Print {"items": [...], "next_cursor": ...} as the API does.')
@click.pass_context
def audit(ctx: click.Context, actor: str | None, action: str | None, target_type: str | None, target_id: str | None,
          limit: int, cursor: int | None, as_json: bool) -> None:
    """List audit entries, newest first: when, who (actor), what (action), on what (target) and the details."""
    flt = AuditFilter(actor=actor or None, action=action, target_type=target_type, target_id=target_id or None)
    with cli_errors():
        page = get_container(ctx).audit_service().list_entries(flt, limit=limit, cursor=cursor)
    if as_json:
        echo_json({"items": [entry_json(e) for e in page.items], "next_cursor": page.next_cursor})
        return
    if not page.items:
        click.echo("no audit entries")
        return
    rows = [[str(e.id), iso(e.at), e.actor, e.action, f"{e.target_type}:{e.target_id}",
             json.dumps(e.details, sort_keys=True, ensure_ascii=False, separators=(",", ":"))]
            for e in page.items]
    click.echo(table(HEADERS, rows))
    more_hint(page.next_cursor)
