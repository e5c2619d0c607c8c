"""``starpromo codes generate`` and ``starpromo codes import`` (SPEC 10): campaigns in bulk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

import click

from domain.batch import (
    DEFAULT_CODE_LENGTH,
    REPORT_COLUMNS,
    RawRow,
    RowProblem,
    parse_campaign_fields,
    read_import_csv,
    validate_generation,
)
from domain.model import PromoType, TargetScope
from entrypoints.cli._ops import (
    EXIT_FAILURE,
    EXIT_USAGE,
    ReportFile,
    check_out_path,
    cli_errors,
    field_flag,
    get_container,
    progress_bar,
)

# Domain field -> the flag that sets it (the rest are ``--`` + the column name with dashes).
GENERATE_FLAGS = {"promo_type": "--type"}
DEFAULT_MAX_ERRORS = 50


def register(cli: click.Group) -> None:
    cli.add_command(codes)


@click.group()
def codes() -> None:
    """Create promo codes in bulk: generate random ones or import a CSV file."""


@codes.command("generate")
@click.option("--campaign-name", required=True, help="Name shared by every generated code.")
@click.option("--count", required=True, type=int, help="How many codes (one campaign row each).")
@click.option("--type", "promo_type", required=True, metavar="PROMO_TYPE",
              type=click.Choice([t.value for t in PromoType], case_sensitive=False),
              help="PREMIUM_GRANT or PERCENT_DISCOUNT.")
@click.option("--prefix", default="", help="Fixed start of every code (A-Z, 0-9); counts towards --length.")
@click.option("--length", default=DEFAULT_CODE_LENGTH, show_default=True, type=int,
              help="Characters per code, prefix included (4..32).")
@click.option("--discount-percent", help="1..99 (PERCENT_DISCOUNT only).")
@click.option("--grant-plan-code", help="Plan granted (PREMIUM_GRANT only).")
@click.option("--grant-days", help="Days granted, 1..3650 (PREMIUM_GRANT only).")
@click.option("--target-scope", default=TargetScope.ALL.value, show_default=True,
              type=click.Choice([s.value for s in TargetScope], case_sensitive=False))
@click.option("--valid-from", help="ISO 8601 with timezone, e.g. 2026-05-01T00:00:00Z (default: now).")
@click.option("--valid-until", help="ISO 8601 with timezone (default: no end).")
@click.option("--max-total-uses", help="Redemptions allowed per code (default: unlimited).")
@click.option("--applicable-products", help="Comma-separated product codes (default: every product).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Report CSV to write (holds the plaintext codes; created with mode 0600).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.pass_context
def generate(
    ctx: click.Context,
    campaign_name: str,
    count: int,
    promo_type: str,
    prefix: str,
    length: int,
    discount_percent: str | None,
    grant_plan_code: str | None,
    grant_days: str | None,
    target_scope: str,
    valid_from: str | None,
    valid_until: str | None,
    max_total_uses: str | None,
    applicable_products: str | None,
    out: Path,
    overwrite: bool,
) -> None:
    """Generate COUNT random codes of one campaign and write the report CSV.

    Codes use the alphabet 23456789ABCDEFGHJKLMNPQRSTUVWXYZ (no look-alikes). Collisions with the batch
    or with stored codes are retried. The run is one transaction: on any error nothing is inserted
    and no report is left behind.
    """
    spec, errors = parse_campaign_fields({
        "campaign_name": campaign_name,
        "promo_type": promo_type,
        "discount_percent": discount_percent,
        "grant_plan_code": grant_plan_code,
        "grant_days": grant_days,
        "target_scope": target_scope,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "max_total_uses": max_total_uses,
        "applicable_products": applicable_products,
    })
    _, gen_errors = validate_generation(count, length, prefix)
    errors = gen_errors + errors
    if errors or spec is None:
        for e in errors:
            click.echo(f"error: {field_flag(e['field'], GENERATE_FLAGS)}: {e['message']}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE)
    check_out_path(out, overwrite)
    with cli_errors(GENERATE_FLAGS):
        service = get_container(ctx).batch_service()
        report = ReportFile(out, REPORT_COLUMNS)
        try:
            with progress_bar(count, "generating") as advance:
                result = service.generate(spec, count, report, length=length, prefix=prefix, progress=advance)
        except BaseException:
            report.discard()
            raise
        report.publish()
    click.echo(f"inserted {result.inserted} codes of campaign {spec.campaign_name!r}; report: {out}")


@codes.command("import")
@click.option("--csv", "csv_path", required=True,
              type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
              help="UTF-8 CSV with the columns: code, campaign_name, promo_type, discount_percent, "
                   "grant_plan_code, grant_days, target_scope, valid_from, valid_until, max_total_uses, "
                   "applicable_products (only the first three are required).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Report CSV to write, with the promo_code_id of each inserted row.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--max-errors", default=DEFAULT_MAX_ERRORS, show_default=True, type=click.IntRange(min=1),
              help="How many problems to print (the total is always given).")
@click.pass_context
def import_(ctx: click.Context, csv_path: Path, out: Path, overwrite: bool, max_errors: int) -> None:
    """Import codes from a CSV file, all or nothing.

    The whole file is validated first; every bad row is reported with its line number, field and
    reason, as is a code repeated inside the file or already stored. Any problem: nothing is inserted,
    exit 1. A clean file is inserted in bulk in one transaction and the report lists each row's id.
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
                result = service.import_rows(read, report, on_problem=on_problem, progress=advance)
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
    import sys

    if not sys.stderr.isatty():
        return 0
    with path.open("rb") as f:
        return max(sum(1 for _ in f) - 1, 0)
