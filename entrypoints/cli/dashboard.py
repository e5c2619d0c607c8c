"""``starpromo dashboard``: conversion, failures, guard and payments metrics (SPEC 7) for a trailing window."""

from __future__ import annotations

from typing import Any

import click

from domain.dashboard import DEFAULT_WINDOW_HOURS, MAX_WINDOW_HOURS, MIN_WINDOW_HOURS
from entrypoints.cli._ops import cli_errors, echo_json, get_container, series_table
from entrypoints.cli.payments import movement_lines


def register(cli: click.Group) -> None:
    cli.add_command(dashboard)


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f} %"


def render(data: dict[str, Any], show_series: bool = False) -> str:
    """The dashboard document as an aligned, readable summary."""
    w, conv, fail, guard = data["window"], data["conversion"], data["failures"], data["guard"]
    lines = [
        f"window      {w['from']} .. {w['to']} ({w['hours']} h)",
        "",
        "conversion",
        f"  attempts        {conv['attempts_total']:>8}   accepted {conv['attempts_accepted']}"
        f" ({_pct(conv['acceptance_rate'])})",
        f"  reservations    {conv['reservations_total']:>8}   applied {conv['reservations_applied']}"
        f" ({_pct(conv['reservation_apply_rate'])})",
        "",
        f"failures        {sum(fail['by_result'].values()):>10}   ({_pct(fail['failure_rate'])} of attempts)",
    ]
    width = max((len(r) for r in fail["by_result"]), default=0)
    lines += [f"  {result:<{width}} {count:>{max(23 - width, 1)}}" for result, count in fail["by_result"].items()]
    hashes = guard["candidate_abusive_hashes"]
    lines += [
        "",
        "guard",
        f"  paused campaigns {guard['paused_campaigns_total']:>7}   paused in the window "
        f"{guard['paused_campaigns_recent']} (campaigns and codes)",
        f"  paused codes     {guard['paused_codes_total']:>7}   (on their own)",
        f"  candidate abusive hashes {len(hashes)}",
    ]
    lines += [
        f"    {h['normalized_code_hash'][:16]}...  failures {h['failures']}  users {h['distinct_users']}"
        f"  last seen {h['last_seen']}"
        for h in hashes
    ]
    pay = data["payments"]
    lines += [
        "",
        "payments",
        f"  paid            {pay['paid_count']:>8}   {pay['paid_stars']} Stars",
        f"  refunded        {pay['refunded_count']:>8}   {pay['refunded_stars']} Stars",
        f"  failed          {pay['failed_count']:>8}   {pay['failed_stars']} Stars",
        f"  open review items {pay['open_review_items']:>6}   purchases in review {pay['purchases_in_review']}"
        + ("   (starpromo payments reviews)" if pay["open_review_items"] else ""),
    ]
    lines += movement_lines(pay["other_movements"])
    if show_series:
        lines += ["", series_table(data["series"])]
    return "\n".join(lines)


@click.command()
@click.option("--window-hours", default=DEFAULT_WINDOW_HOURS, show_default=True,
              type=click.IntRange(MIN_WINDOW_HOURS, MAX_WINDOW_HOURS),
              help=f"Trailing window in hours ({MIN_WINDOW_HOURS}..{MAX_WINDOW_HOURS}).")
@click.option("--series", "show_series", is_flag=True, help="Also print the hourly series.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document of GET /internal/promo/dashboard.")
@click.pass_context
def dashboard(ctx: click.Context, window_hours: int, show_series: bool, as_json: bool) -> None:
    """Conversion, failures by result and brute-force guard state over the last WINDOW_HOURS."""
    with cli_errors():
        data = get_container(ctx).dashboard_service().metrics(window_hours)
    if as_json:
        echo_json(data)
    else:
        click.echo(render(data, show_series))
