"""``starpromo codes list|pause|resume|lookup|generate|import`` (SPEC 10): single codes for support and the brute-force
guard's aftermath, and codes in bulk into campaigns. Every change is audited as ``cli:<login name>``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

import click

from domain.batch import DEFAULT_CODE_LENGTH, MAX_CODE_LENGTH, MIN_CODE_LENGTH, validate_generation
from domain.campaigns import MAX_LIST_LIMIT
from domain.code_files import IMPORT_COLUMNS, REPORT_COLUMNS, RawRow, RowProblem, parse_campaign_fields, read_import_csv
from domain.errors import ValidationError
from domain.model import Campaign, CampaignStatus, CodeFilter, PromoCode
from domain.promo_codes import CodeLookup
from entrypoints.cli._ops import (
    EXIT_FAILURE,
    ReportFile,
    campaign_json,
    cap_text,
    check_out_path,
    cli_actor,
    cli_errors,
    code_json,
    echo_json,
    get_container,
    iso,
    more_hint,
    progress_bar,
    read_code,
    refuse_code_arguments,
    status_text,
    table,
    when,
)
from entrypoints.cli._terms import terms_options, terms_values, type_option

# Column or service field -> the flag of ``generate`` that sets it (the rest are ``--`` + the name with dashes).
GENERATE_FLAGS = {"promo_type": "--type", "name": "--campaign-name"}
DEFAULT_MAX_ERRORS = 50
LIST_HEADERS = ("id", "prefix", "status", "used/max", "created_at", "updated_at")


def register(cli: click.Group) -> None:
    cli.add_command(codes)


@click.group()
def codes() -> None:
    """Codes: list a campaign's codes, pause or resume one, look one up, generate or import them in bulk."""


# --- single codes -------------------------------------------------------------------------------------


@codes.command("list")
@click.option("--campaign", "campaign_id", required=True, type=click.IntRange(min=1), metavar="ID",
              help="The campaign whose codes to list.")
@click.option("--status", type=click.Choice([s.value for s in CampaignStatus], case_sensitive=False),
              help="Only codes in this status.")
@click.option("--prefix", help="Only codes whose code_prefix starts with this (1..4 characters A-Z 0-9).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIST_LIMIT),
              help=f"Rows per page (1..{MAX_LIST_LIMIT}).")
@click.option("--cursor", type=click.IntRange(min=0), help="Continue after this id (the cursor printed after more:).")
@click.option("--json", "as_json", is_flag=True, help='Print {"items": [...], "next_cursor": ...} as the API does.')
@click.pass_context
def list_(ctx: click.Context, campaign_id: int, status: str | None, prefix: str | None, limit: int,
          cursor: int | None, as_json: bool) -> None:
    """List the codes of a campaign by id: id, code_prefix, status, used/max ('-': no cap of its own)."""
    flt = CodeFilter(campaign_id=campaign_id, status=CampaignStatus(status.upper()) if status else None,
                     code_prefix=prefix or None)
    with cli_errors({"code_prefix": "--prefix"}):
        page = get_container(ctx).code_service().list_codes(flt, limit=limit, cursor=cursor)
    if as_json:
        echo_json({"items": [code_json(c) for c in page.items], "next_cursor": page.next_cursor})
        return
    if not page.items:
        click.echo("no codes")
        return
    rows = [[str(c.id), c.code_prefix, status_text(c), cap_text(c.used_total, c.max_total_uses), when(c.created_at),
             when(c.updated_at)] for c in page.items]
    click.echo(table(LIST_HEADERS, rows))
    more_hint(page.next_cursor)


def _set_status(ctx: click.Context, promo_code_id: int, status: CampaignStatus, reason: str | None,
                as_json: bool) -> None:
    with cli_errors():
        code = get_container(ctx).code_service().set_status(promo_code_id, status, actor=cli_actor(), reason=reason)
    if as_json:
        echo_json(code_json(code))
        return
    note = f", reason: {reason}" if reason else ""
    click.echo(f"code {code.id} (prefix {code.code_prefix}) of campaign {code.campaign_id} is "
               f"{status_text(code)}{note}")


_reason_option = click.option("--reason", help="Why (kept in the audit log; at most 500 characters).")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print the code as JSON.")


@codes.command("pause")
@click.argument("promo_code_id", metavar="ID", type=click.IntRange(min=1))
@_reason_option
@_json_option
@click.pass_context
def pause(ctx: click.Context, promo_code_id: int, reason: str | None, as_json: bool) -> None:
    """Pause code ID alone; its campaign's other codes keep working (ACTIVE -> PAUSED; PAUSED already: no-op)."""
    _set_status(ctx, promo_code_id, CampaignStatus.PAUSED, reason, as_json)


@codes.command("resume")
@click.argument("promo_code_id", metavar="ID", type=click.IntRange(min=1))
@_reason_option
@_json_option
@click.pass_context
def resume(ctx: click.Context, promo_code_id: int, reason: str | None, as_json: bool) -> None:
    """Resume code ID (PAUSED -> ACTIVE; refused past valid_until or with its cap used up)."""
    _set_status(ctx, promo_code_id, CampaignStatus.ACTIVE, reason, as_json)


def verdict(code: PromoCode, campaign: Campaign, now: datetime) -> str:
    """What a redeem of this code would answer now, as far as the code and its campaign decide it (SPEC 4 checks
    4-6; the user's own checks 7-8 aside)."""
    for what, row in (("code", code), ("campaign", campaign)):
        if row.status is CampaignStatus.PAUSED:
            return f"PAUSED: the {what} is {status_text(row)}"
    for what, row in (("code", code), ("campaign", campaign)):
        if row.status is CampaignStatus.EXPIRED:
            return f"EXPIRED: the {what} is EXPIRED"
        if row.is_past_validity(now):
            return f"EXPIRED: the {what} is past valid_until"
    if now < campaign.valid_from:
        return f"NOT_APPLICABLE: valid from {iso(campaign.valid_from)}"
    if code.status is CampaignStatus.DEPLETED or code.capacity_used_up():
        return "DEPLETED: the code reached its own cap"
    if campaign.status is CampaignStatus.DEPLETED or campaign.capacity_used_up():
        return "DEPLETED: the campaign's budget is used up"
    return "redeemable (unless the user holds it already or reached the per-user limit)"


def render_lookup(found: CodeLookup, now: datetime) -> str:
    code, c = found.code, found.campaign
    lines = [
        ("promo_code_id", str(code.id)),
        ("code_prefix", code.code_prefix),
        ("code_hash", code.code_hash),
        ("code status", status_text(code)),
        ("code used/max", cap_text(code.used_total, code.max_total_uses)),
        ("campaign", f"{c.id} {c.name!r} ({c.promo_type.value})"),
        ("campaign status", status_text(c)),
        ("campaign used/budget", cap_text(c.used_total, c.max_total_uses)),
        ("per_user_limit", str(c.per_user_limit)),
        ("valid", f"{iso(c.valid_from)} .. {iso(c.valid_until) if c.valid_until else '(no end)'}"),
        ("redeem now", verdict(code, c, now)),
    ]
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in lines)


@codes.command("lookup", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@click.option("--json", "as_json", is_flag=True, help='Print {"code": {...}, "campaign": {...}} as the API does.')
@click.pass_context
def lookup(ctx: click.Context, as_json: bool) -> None:
    """Find the code a user typed: its row, its campaign and what a redeem would answer now.

    The code is read from standard input (first line) or a hidden prompt on a terminal - never from the
    command line, where ps would show it - and it is never printed. Writes no attempt.

    \b
    Example:  starpromo codes lookup < code.txt
    """
    refuse_code_arguments(ctx)
    raw = read_code()
    with cli_errors({"code": "code (standard input)"}):
        container = get_container(ctx)
        found = container.code_service().lookup(raw)
    if as_json:
        echo_json({"code": code_json(found.code), "campaign": campaign_json(found.campaign)})
    else:
        click.echo(render_lookup(found, container.clock().now()))


# --- codes in bulk ------------------------------------------------------------------------------------


@codes.command("generate")
@click.option("--campaign-name", required=True,
              help="The campaign: created when none has this name, else the codes are added to it.")
@click.option("--count", required=True, type=int, help="How many codes (1..10,000,000).")
@click.option("--prefix", default="", help="Fixed start of every code (A-Z, 0-9); counts towards --length.")
@click.option("--length", default=DEFAULT_CODE_LENGTH, show_default=True, type=int,
              help=f"Characters per code, prefix included ({MIN_CODE_LENGTH}..{MAX_CODE_LENGTH}).")
@type_option
@terms_options
@click.option("--max-total-uses", metavar="N", help="Each code's own cap, e.g. 1 for single-use codes "
                                                    "(default: none, only the campaign's budget applies).")
@click.option("--campaign-max-total-uses", metavar="N",
              help="The campaign's budget: redemptions across all its codes (default: unlimited).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Report CSV to write (holds the plaintext codes; created with mode 0600).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.pass_context
def generate(ctx: click.Context, /, campaign_name: str, count: int, prefix: str, length: int, promo_type: str,
             max_total_uses: str | None, campaign_max_total_uses: str | None, out: Path, overwrite: bool,
             **terms: str | None) -> None:
    """Generate COUNT random codes into the campaign --campaign-name and write the report CSV.

    No campaign of that name: it is created with the terms given. One exists: the codes are added to it, and
    every term given must equal the campaign's (the flag that differs is named; nothing is inserted).

    Codes use the alphabet 23456789ABCDEFGHJKLMNPQRSTUVWXYZ (no look-alikes). Collisions with the batch
    or with stored codes are retried. The run is one transaction: on any error nothing is inserted
    and no report is left behind.
    """
    with cli_errors(GENERATE_FLAGS):
        container = get_container(ctx)
        parsed, errors = parse_campaign_fields(
            {**terms_values(terms), "campaign_name": campaign_name, "promo_type": promo_type,
             "max_total_uses": max_total_uses, "campaign_max_total_uses": campaign_max_total_uses},
            container.clock().now(), container.products().codes)
        _, gen_errors = validate_generation(count, length, prefix)
        if gen_errors + errors or parsed is None:
            raise ValidationError(gen_errors + errors)
    check_out_path(out, overwrite)
    with cli_errors(GENERATE_FLAGS):
        service = container.batch_service()
        report = ReportFile(out, REPORT_COLUMNS)
        try:
            with progress_bar(count, "generating") as advance:
                result = service.generate(parsed, count, report, actor=cli_actor(), length=length, prefix=prefix,
                                          progress=advance)
        except BaseException:
            report.discard()
            raise
        report.publish()
    c = result.campaign
    into = f"new campaign {c.id} {c.name!r}" if c is not None and result.campaign_created else \
        f"campaign {c.id} {c.name!r}" if c is not None else repr(campaign_name)
    click.echo(f"inserted {result.inserted} codes into {into}; report: {out}")


@codes.command("import")
@click.option("--csv", "csv_path", required=True,
              type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
              help="UTF-8 CSV with the columns: " + ", ".join(IMPORT_COLUMNS) + " (code, campaign_name and "
                   "promo_type required; max_total_uses is each code's own cap). Rows are grouped into "
                   "campaigns by campaign_name.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Report CSV to write, with the promo_code_id and campaign_id of each inserted row.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--max-errors", default=DEFAULT_MAX_ERRORS, show_default=True, type=click.IntRange(min=1),
              help="How many problems to print (the total is always given).")
@click.pass_context
def import_(ctx: click.Context, csv_path: Path, out: Path, overwrite: bool, max_errors: int) -> None:
    """Import codes from a CSV file into campaigns, all or nothing.

    A campaign_name with no campaign creates one with the terms of its rows (which must agree); an existing
    campaign takes rows whose terms equal its own. The whole file is validated first; every bad row is
    reported with its line number, field and reason, as is a code repeated inside the file or already
    stored. Any problem: nothing is inserted, exit 1. A clean file is inserted in bulk in one transaction
    and the report lists each row's ids.
    """
    check_out_path(out, overwrite)
    shown = 0

    def on_problem(problem: RowProblem) -> None:
        nonlocal shown
        if shown < max_errors:
            click.echo(f"{csv_path}:{problem}", err=True)
        shown += 1

    def read() -> Iterator[RawRow]:
        with csv_path.open("rb") as f:
            yield from read_import_csv(_decoded_lines(f))

    with cli_errors():
        service = get_container(ctx).batch_service()
        report = ReportFile(out, REPORT_COLUMNS)
        try:
            with progress_bar(_data_lines(csv_path), "importing") as advance:
                result = service.import_rows(read, report, actor=cli_actor(), on_problem=on_problem,
                                             progress=advance)
        except BaseException:
            report.discard()
            raise
        if not result.ok:
            report.discard()
            more = f" (first {max_errors} shown)" if result.problems > max_errors else ""
            click.echo(f"import rejected: {result.problems} problem(s){more}; nothing was inserted", err=True)
            raise click.exceptions.Exit(EXIT_FAILURE)
        report.publish()
    click.echo(f"inserted {result.inserted} codes from {csv_path}; report: {out}")


def _decoded_lines(f: IO[bytes]) -> Iterator[str]:
    """UTF-8 text line by line (a leading byte order mark dropped), so that undecodable bytes are
    reported on the line that holds them."""
    first = True
    for raw in f:
        line = raw.decode("utf-8")
        if first:
            line = line.removeprefix("\ufeff")
            first = False
        yield line


def _data_lines(path: Path) -> int:
    """Lines after the header: the progress bar's length (only computed on a terminal)."""
    if not sys.stderr.isatty():
        return 0
    with path.open("rb") as f:
        return max(sum(1 for _ in f) - 1, 0)
