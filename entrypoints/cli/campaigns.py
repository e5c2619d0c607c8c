"""``starpromo campaigns list|pause|resume``: the admin side of SPEC 3 from a terminal."""

from __future__ import annotations

from datetime import datetime

import click

from domain.campaigns import MAX_LIST_LIMIT
from domain.model import Campaign, CampaignFilter, CampaignStatus, PromoType
from entrypoints.cli._ops import campaign_json, cli_errors, echo_json, get_container, table

LIST_HEADERS = ("id", "name", "type", "status", "prefix", "used/max", "valid_until")
MAX_NAME_WIDTH = 40


def register(cli: click.Group) -> None:
    cli.add_command(campaigns)


@click.group()
def campaigns() -> None:
    """List campaigns and pause or resume them (the same rules as the internal API)."""


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def _row(c: Campaign) -> list[str]:
    name = c.campaign_name if len(c.campaign_name) <= MAX_NAME_WIDTH else c.campaign_name[:MAX_NAME_WIDTH - 1] + "~"
    cap = "-" if c.max_total_uses is None else str(c.max_total_uses)
    status = c.status.value + (f" ({c.paused_reason.value})" if c.paused_reason is not None else "")
    return [str(c.id), name, c.promo_type.value, status, c.code_prefix, f"{c.used_total}/{cap}",
            _when(c.valid_until)]


@campaigns.command("list")
@click.option("--status", type=click.Choice([s.value for s in CampaignStatus], case_sensitive=False),
              help="Only campaigns in this status.")
@click.option("--type", "promo_type", type=click.Choice([t.value for t in PromoType], case_sensitive=False),
              help="Only campaigns of this promo type.")
@click.option("--name", help="Only campaigns whose name contains this text (case-insensitive).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIST_LIMIT),
              help=f"Rows per page (1..{MAX_LIST_LIMIT}).")
@click.option("--cursor", type=click.IntRange(min=0), help="Continue after this id (the next_cursor printed before).")
@click.option("--json", "as_json", is_flag=True, help='Print {"items": [...], "next_cursor": ...} as JSON.')
@click.pass_context
def list_(ctx: click.Context, status: str | None, promo_type: str | None, name: str | None, limit: int,
          cursor: int | None, as_json: bool) -> None:
    """List campaigns ordered by id, one page at a time."""
    flt = CampaignFilter(
        status=CampaignStatus(status.upper()) if status else None,
        promo_type=PromoType(promo_type.upper()) if promo_type else None,
        name_contains=name or None,
    )
    with cli_errors():
        page = get_container(ctx).campaign_service().list_campaigns(flt, limit=limit, cursor=cursor)
    if as_json:
        echo_json({"items": [campaign_json(c) for c in page.items], "next_cursor": page.next_cursor})
        return
    if not page.items:
        click.echo("no campaigns")
        return
    click.echo(table(LIST_HEADERS, [_row(c) for c in page.items]))
    if page.next_cursor is not None:
        click.echo(f"more: add --cursor {page.next_cursor}")


def _set_status(ctx: click.Context, promo_code_id: int, status: CampaignStatus, reason: str | None,
                as_json: bool) -> None:
    with cli_errors():
        campaign = get_container(ctx).campaign_service().set_status(promo_code_id, status)
    if as_json:
        echo_json(campaign_json(campaign))
    else:
        note = f" ({reason})" if reason else ""
        click.echo(f"campaign {campaign.id} {campaign.campaign_name!r} is {campaign.status.value}{note}")


@campaigns.command("pause")
@click.argument("promo_code_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--reason", help="Free-text note shown in the output (paused_reason is always MANUAL).")
@click.option("--json", "as_json", is_flag=True, help="Print the campaign as JSON.")
@click.pass_context
def pause(ctx: click.Context, promo_code_id: int, reason: str | None, as_json: bool) -> None:
    """Pause campaign ID (ACTIVE -> PAUSED; already PAUSED is a no-op)."""
    _set_status(ctx, promo_code_id, CampaignStatus.PAUSED, reason, as_json)


@campaigns.command("resume")
@click.argument("promo_code_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print the campaign as JSON.")
@click.pass_context
def resume(ctx: click.Context, promo_code_id: int, as_json: bool) -> None:
    """Resume campaign ID (PAUSED -> ACTIVE; refused once expired or used up)."""
    _set_status(ctx, promo_code_id, CampaignStatus.ACTIVE, None, as_json)
