"""``starpromo campaigns list|show|create|update|pause|resume|stats`` (SPEC 10): the admin side of SPEC 3 from a
terminal, under the same rules as the internal API. Every change is audited as ``cli:<login name>``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from domain.campaigns import MAX_LIST_LIMIT, MAX_PER_USER_LIMIT, MAX_USES, CampaignView
from domain.code_files import parse_campaign_fields, parse_datetime
from domain.dashboard import DEFAULT_WINDOW_HOURS, MAX_WINDOW_HOURS, MIN_WINDOW_HOURS
from domain.errors import ValidationError
from domain.model import UNCHANGED, Campaign, CampaignChanges, CampaignFilter, CampaignStatus, PromoType, Unchanged
from entrypoints.cli._ops import (
    EXIT_USAGE,
    campaign_json,
    cap_text,
    cli_actor,
    cli_errors,
    code_json,
    echo_json,
    get_container,
    iso,
    more_hint,
    read_code,
    series_table,
    status_text,
    table,
)
from entrypoints.cli._terms import terms_options, terms_values, type_option

LIST_HEADERS = ("id", "name", "type", "status", "codes", "used/budget", "per_user")
MAX_NAME_WIDTH = 40
# The word that clears a nullable field (``valid_until``, the budget) in ``update``.
CLEAR = "none"

# Field names of ``parse_campaign_fields`` (columns) and of ``CampaignService`` -> the flags of ``create``.
CREATE_FLAGS = {
    "campaign_name": "--name", "name": "--name", "promo_type": "--type",
    "campaign_max_total_uses": "--max-total-uses", "code_max_total_uses": "--code-max-total-uses",
    "code": "code (standard input)",
}
# ``parse_campaign_fields`` calls the code's own cap ``max_total_uses``; the service calls the budget so.
CREATE_PARSE_FLAGS = {**CREATE_FLAGS, "max_total_uses": "--code-max-total-uses"}


def register(cli: click.Group) -> None:
    cli.add_command(campaigns)


@click.group()
def campaigns() -> None:
    """Campaigns: list, show, create, change, pause or resume them, and their metrics."""


def _row(view: CampaignView) -> list[str]:
    c = view.campaign
    name = c.name if len(c.name) <= MAX_NAME_WIDTH else c.name[:MAX_NAME_WIDTH - 1] + "~"
    return [str(c.id), name, c.promo_type.value, status_text(c), str(view.codes_total),
            cap_text(c.used_total, c.max_total_uses), str(c.per_user_limit)]


@campaigns.command("list")
@click.option("--status", type=click.Choice([s.value for s in CampaignStatus], case_sensitive=False),
              help="Only campaigns in this status.")
@click.option("--name", help="Only campaigns whose name contains this text (case-insensitive).")
@click.option("--type", "promo_type", type=click.Choice([t.value for t in PromoType], case_sensitive=False),
              help="Only campaigns of this promo type.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIST_LIMIT),
              help=f"Rows per page (1..{MAX_LIST_LIMIT}).")
@click.option("--cursor", type=click.IntRange(min=0), help="Continue below this id (the cursor printed after more:).")
@click.option("--json", "as_json", is_flag=True, help='Print {"items": [...], "next_cursor": ...} as the API does.')
@click.pass_context
def list_(ctx: click.Context, status: str | None, name: str | None, promo_type: str | None, limit: int,
          cursor: int | None, as_json: bool) -> None:
    """List campaigns, newest first: id, name, type, status, codes, used/budget ('-': unlimited), per-user limit."""
    flt = CampaignFilter(
        status=CampaignStatus(status.upper()) if status else None,
        promo_type=PromoType(promo_type.upper()) if promo_type else None,
        name_contains=name or None,
    )
    with cli_errors():
        page = get_container(ctx).campaign_service().list_campaigns(flt, limit=limit, cursor=cursor)
    if as_json:
        echo_json({"items": [campaign_json(v) for v in page.items], "next_cursor": page.next_cursor})
        return
    if not page.items:
        click.echo("no campaigns")
        return
    click.echo(table(LIST_HEADERS, [_row(v) for v in page.items]))
    more_hint(page.next_cursor)


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, tuple):
        return ",".join(value) or "- (every product)"
    return str(getattr(value, "value", value))


def render_campaign(view: CampaignView) -> str:
    """Every ``promo_campaigns`` column, one per line, then its codes by status."""
    c = view.campaign
    data = campaign_json(c)
    lines = [[k, _value(getattr(c, k))] for k in data]
    for line in lines:
        if line[0] == "max_total_uses" and c.max_total_uses is None:
            line[1] = "- (unlimited)"
    by_status = ", ".join(f"{s.value} {n}" for s, n in view.codes_by_status.items())
    lines.append(["codes", f"{view.codes_total} ({by_status})"])
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in lines)


@campaigns.command("show")
@click.argument("campaign_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print the campaign JSON of the internal API.")
@click.pass_context
def show(ctx: click.Context, campaign_id: int, as_json: bool) -> None:
    """Show campaign ID: its columns and its codes counted by status."""
    with cli_errors():
        view = get_container(ctx).campaign_service().get(campaign_id)
    if as_json:
        echo_json(campaign_json(view))
    else:
        click.echo(render_campaign(view))


@campaigns.command("create")
@click.option("--name", required=True, help="Unique name, 1..200 characters.")
@type_option
@terms_options
@click.option("--max-total-uses", metavar="N",
              help="The campaign's budget: redemptions across all its codes (default: unlimited).")
@click.option("--with-code", is_flag=True,
              help="Also create one chosen code, read from standard input (first line) or a hidden prompt - "
                   "never from the command line.")
@click.option("--code-max-total-uses", metavar="N", help="That code's own cap (with --with-code; default: none).")
@click.option("--json", "as_json", is_flag=True, help="Print the campaign (and the code row) as JSON.")
@click.pass_context
def create(ctx: click.Context, /, name: str, promo_type: str, max_total_uses: str | None, with_code: bool,
           code_max_total_uses: str | None, as_json: bool, **terms: str | None) -> None:
    """Create a campaign with its terms, budget and per-user limit (and, with --with-code, its first code).

    The terms that set a price or a grant never change afterwards. An existing name is refused
    (CAMPAIGN_EXISTS), as is a code that exists already (CODE_EXISTS); either way nothing is created."""
    if code_max_total_uses is not None and not with_code:
        click.echo("error: --code-max-total-uses: only with --with-code", err=True)
        raise click.exceptions.Exit(EXIT_USAGE)
    with cli_errors(CREATE_PARSE_FLAGS):
        container = get_container(ctx)
        parsed, errors = parse_campaign_fields(
            {**terms_values(terms), "campaign_name": name, "promo_type": promo_type,
             "campaign_max_total_uses": max_total_uses, "max_total_uses": code_max_total_uses},
            container.clock().now(), container.products().codes)
        if errors or parsed is None:
            raise ValidationError(errors)
    code = read_code() if with_code else None
    with cli_errors(CREATE_FLAGS):
        campaign, stored_code = container.campaign_service().create(
            parsed.spec, actor=cli_actor(), code=code, code_max_total_uses=parsed.code_max_total_uses)
    if as_json:
        data = campaign_json(campaign)
        if stored_code is not None:
            data["code"] = code_json(stored_code)
        echo_json(data)
        return
    click.echo(f"created campaign {campaign.id} {campaign.name!r} ({campaign.promo_type.value})")
    if stored_code is not None:
        click.echo(f"created code {stored_code.id} (prefix {stored_code.code_prefix}) in it")


def _parse_changes(name: str | None, valid_until: str | None, max_total_uses: str | None,
                   per_user_limit: int | None) -> CampaignChanges:
    errors: list[dict[str, str]] = []
    until: datetime | Unchanged | None = UNCHANGED
    if valid_until is not None:
        if valid_until.strip().lower() == CLEAR:
            until = None
        else:
            try:
                until = parse_datetime(valid_until)
            except ValueError as exc:
                errors.append({"field": "valid_until", "message": f"{exc}, or {CLEAR} (no end)"})
    budget: int | Unchanged | None = UNCHANGED
    if max_total_uses is not None:
        text = max_total_uses.strip()
        if text.lower() == CLEAR:
            budget = None
        elif text.isdecimal():
            budget = int(text)
        else:
            errors.append({"field": "max_total_uses", "message": f"must be 1..{MAX_USES} or {CLEAR} (unlimited)"})
    if errors:
        raise ValidationError(errors)
    return CampaignChanges(
        name=UNCHANGED if name is None else name,
        valid_until=until,
        max_total_uses=budget,
        per_user_limit=UNCHANGED if per_user_limit is None else per_user_limit,
    )


def _changed_text(campaign: Campaign, fields: list[str]) -> str:
    shown = {"valid_until": "- (no end)", "max_total_uses": "- (unlimited)"}
    parts = []
    for f in fields:
        value = getattr(campaign, f)
        parts.append(f"{f} {shown.get(f, '-') if value is None else _value(value)}")
    return ", ".join(parts)


@campaigns.command("update")
@click.argument("campaign_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--name", help="New unique name, 1..200 characters.")
@click.option("--valid-until", metavar="TIME|none",
              help=f"New end, ISO 8601 with timezone, not in the past; '{CLEAR}': no end.")
@click.option("--max-total-uses", metavar=f"N|{CLEAR}",
              help=f"New budget, not below the units used; '{CLEAR}': unlimited.")
@click.option("--per-user-limit", type=int, metavar="N",
              help=f"New per-user limit, 1..{MAX_PER_USER_LIMIT} (lowering it revokes nothing users hold).")
@click.option("--json", "as_json", is_flag=True, help="Print the changed campaign as JSON.")
@click.pass_context
def update(ctx: click.Context, campaign_id: int, name: str | None, valid_until: str | None,
           max_total_uses: str | None, per_user_limit: int | None, as_json: bool) -> None:
    """Change what may change of campaign ID: its name, valid_until, budget (max_total_uses) or per-user limit.

    A refused change (a name in use, valid_until in the past, a budget below the units used) changes nothing."""
    with cli_errors():
        changes = _parse_changes(name, valid_until, max_total_uses, per_user_limit)
    fields = list(changes.changed())
    if not fields:
        click.echo("error: nothing to change: give --name, --valid-until, --max-total-uses or --per-user-limit",
                   err=True)
        raise click.exceptions.Exit(EXIT_USAGE)
    with cli_errors():
        campaign = get_container(ctx).campaign_service().change(campaign_id, changes, actor=cli_actor())
    if as_json:
        echo_json(campaign_json(campaign))
        return
    click.echo(f"campaign {campaign.id} {campaign.name!r} updated: {_changed_text(campaign, fields)}")


def _set_status(ctx: click.Context, campaign_id: int, status: CampaignStatus, reason: str | None,
                as_json: bool) -> None:
    with cli_errors():
        campaign = get_container(ctx).campaign_service().set_status(campaign_id, status, actor=cli_actor(),
                                                                    reason=reason)
    if as_json:
        echo_json(campaign_json(campaign))
        return
    note = f", reason: {reason}" if reason else ""
    click.echo(f"campaign {campaign.id} {campaign.name!r} is {status_text(campaign)}{note}")


_reason_option = click.option("--reason", help="Why (kept in the audit log; at most 500 characters).")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print the campaign as JSON.")


@campaigns.command("pause")
@click.argument("campaign_id", metavar="ID", type=click.IntRange(min=1))
@_reason_option
@_json_option
@click.pass_context
def pause(ctx: click.Context, campaign_id: int, reason: str | None, as_json: bool) -> None:
    """Pause campaign ID: every code of it answers PAUSED (ACTIVE -> PAUSED; already PAUSED is a no-op)."""
    _set_status(ctx, campaign_id, CampaignStatus.PAUSED, reason, as_json)


@campaigns.command("resume")
@click.argument("campaign_id", metavar="ID", type=click.IntRange(min=1))
@_reason_option
@_json_option
@click.pass_context
def resume(ctx: click.Context, campaign_id: int, reason: str | None, as_json: bool) -> None:
    """Resume campaign ID (PAUSED -> ACTIVE; refused past valid_until or with the budget used up)."""
    _set_status(ctx, campaign_id, CampaignStatus.ACTIVE, reason, as_json)


def render_stats(data: dict[str, Any], show_series: bool) -> str:
    w = data["window"]
    attempts = data["attempts_by_result"]
    redemptions = data["redemptions_by_status"]
    width = max(len(k) for k in [*attempts, *redemptions])
    lines = [f"campaign    {data['campaign_id']}",
             f"window      {w['from']} .. {w['to']} ({w['hours']} h)",
             "",
             f"attempts    {sum(attempts.values())}"]
    lines += [f"  {k.ljust(width)}  {v:>8}" for k, v in attempts.items()]
    lines += ["", f"redemptions {sum(redemptions.values())}"]
    lines += [f"  {k.ljust(width)}  {v:>8}" for k, v in redemptions.items()]
    lines += ["",
              f"purchases paid        {data['purchases_paid']:>8}   {data['stars_revenue']} Stars revenue",
              f"discount Stars given  {data['discount_stars_given']:>8}",
              f"grant days given      {data['grant_days_given']:>8}"]
    if show_series:
        lines += ["", series_table(data["series"])]
    return "\n".join(lines)


@campaigns.command("stats")
@click.argument("campaign_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--window-hours", default=DEFAULT_WINDOW_HOURS, show_default=True,
              type=click.IntRange(MIN_WINDOW_HOURS, MAX_WINDOW_HOURS),
              help=f"Trailing window in hours ({MIN_WINDOW_HOURS}..{MAX_WINDOW_HOURS}).")
@click.option("--series", "show_series", is_flag=True, help="Also print the hourly series.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON of GET /internal/promo/campaigns/{id}/stats.")
@click.pass_context
def stats(ctx: click.Context, campaign_id: int, window_hours: int, show_series: bool, as_json: bool) -> None:
    """Metrics of campaign ID over the trailing window: attempts by result, redemptions by status, paid purchases,
    Stars revenue, discounts and grant days given."""
    with cli_errors():
        data = get_container(ctx).report_service().campaign_stats(campaign_id, window_hours)
    if as_json:
        echo_json(data)
    else:
        click.echo(render_stats(data, show_series))
