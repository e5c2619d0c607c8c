"""Codes of a campaign from its page (SPEC 14): generate N more codes and import a CSV into it — each answered with
the report CSV as a download, built in memory and never kept (``entrypoints.http.report_csv.CsvReport``, as the API
does) — and pause or resume one code.

The import takes the file format of ``starpromo codes import`` (SPEC 10), read in this campaign's terms: a row's
``campaign_name`` must be empty (this campaign) or this campaign's name; an empty term cell takes this campaign's
value, and the ``campaign_name`` and ``promo_type`` columns may be left out altogether, so a file with only a
``code`` column imports into this campaign. Anything given must equal the campaign's (the domain names the line and
the field). The whole file is checked first; any problem and nothing is inserted."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator
from typing import IO, Any

from flask import abort, flash, redirect, request, url_for
from werkzeug.formparser import FormDataParser
from werkzeug.wrappers import Response

from domain.batch import DEFAULT_CODE_LENGTH
from domain.code_files import RawRow, RowProblem, read_import_csv
from domain.errors import DomainError, NotFound
from domain.model import Campaign, CampaignStatus
from entrypoints.console import security
from entrypoints.console.app import MAX_UPLOAD_BYTES
from entrypoints.console.blueprint import bp
from entrypoints.console.views.campaign_forms import CodeStatusForm, GenerateForm, ImportForm
from entrypoints.console.views.campaigns import (
    error_status,
    fail,
    get_campaign,
    known_id,
    operator_name,
    render_campaign_page,
)
from entrypoints.http.report_csv import CsvReport

log = logging.getLogger("starpromo.console")

UPLOAD_ENDPOINTS = frozenset({"ops.campaign_import"})
MAX_PROBLEMS_SHOWN = 20
# The term columns an import row may leave empty: this campaign's value is used.
TERM_COLUMNS = ("promo_type", "discount_percent", "discount_stars", "grant_plan_code", "grant_days")
# Columns an import file for one campaign may leave out (they are this campaign's).
OPTIONAL_HERE = ("campaign_name", "promo_type")
CONFIRMED = "yes"


def _in_memory(total_content_length: int | None, content_type: str | None, filename: str | None = None,
               content_length: int | None = None) -> IO[bytes]:
    return io.BytesIO()


class InMemoryFormDataParser(FormDataParser):
    """Uploaded files stay in memory (an import file holds plaintext codes: no temporary file on disk). The body is
    at most ``MAX_UPLOAD_BYTES``."""

    def __init__(self, stream_factory: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(_in_memory, *args, **kwargs)


@bp.url_value_preprocessor
def _upload_limits(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # Runs before the blueprint's before_request (security.py), whose CSRF check reads the body: the larger limit
    # and the in-memory parser must be set first. Elsewhere the app's MAX_CONTENT_LENGTH (64 KiB) applies.
    if endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = MAX_UPLOAD_BYTES
        request.form_data_parser_class = InMemoryFormDataParser


def _confirmed(form: GenerateForm | ImportForm) -> bool:
    if request.form.get("confirm") == CONFIRMED:
        return True
    form.confirm.errors = ["tick this box to confirm: this cannot be undone"]
    return False


def _download(report: CsvReport, filename: str) -> Response:
    response = report.response(filename)
    response.status_code = 200
    response.headers["Cache-Control"] = "no-store"
    return response


# --- generate ----------------------------------------------------------------------------------------


@bp.post("/campaigns/<int:campaign_id>/generate")
def campaign_generate(campaign_id: int) -> Response | tuple[str, int]:
    known_id(campaign_id, "campaign")
    form = GenerateForm()
    valid = form.validate()
    if not _confirmed(form) or not valid:
        return render_campaign_page(campaign_id, 400, generate_form=form)
    assert form.count.data is not None
    report = CsvReport()
    try:
        result = security.container().batch_service().generate_into(
            campaign_id, form.count.data, report, actor=operator_name(),
            code_max_total_uses=form.code_max_total_uses.data, length=form.length.data or DEFAULT_CODE_LENGTH,
            prefix=form.prefix.data or "")
    except NotFound:
        abort(404, f"There is no campaign {campaign_id}.")
    except DomainError as exc:
        return render_campaign_page(campaign_id, fail(form, exc, {"max_total_uses": "code_max_total_uses"}),
                                    generate_form=form)
    log.info("codes generated", extra={"event": "promo_codes_generated", "campaign_id": campaign_id,
                                       "count": result.inserted, "actor": operator_name()})
    flash(f"{result.inserted:,} codes generated; their only copy is the CSV file your browser downloaded.", "ok")
    return _download(report, f"campaign-{campaign_id}-codes.csv")


# --- import ------------------------------------------------------------------------------------------


def _decoded_lines(data: bytes) -> Iterator[str]:
    """UTF-8 text line by line (a leading byte order mark dropped); undecodable bytes raise on their own line."""
    for number, raw in enumerate(io.BytesIO(data)):
        line = raw.decode("utf-8")
        yield line.removeprefix("\ufeff") if number == 0 else line


def with_optional_columns(lines: Iterator[str]) -> Iterator[str]:
    """The lines of an import file for one campaign, with the ``OPTIONAL_HERE`` columns it leaves out added (empty).

    A record never spans lines in a valid file here (no code, name or term holds a line break), so an empty cell is
    added per line; a file that does anything else is refused by the checks as it would be anyway."""
    first = next(lines, None)
    if first is None:
        return
    try:
        header = next(csv.reader([first]), [])
    except csv.Error:
        header = []
    columns = [c.strip().lower() for c in header]
    missing = [c for c in OPTIONAL_HERE if c not in columns]
    if not missing or "code" not in columns:
        yield first
        yield from lines
        return
    body = first.rstrip("\r\n")
    yield body + "," + ",".join(missing) + (first[len(body):] or "\n")
    for line in lines:
        body = line.rstrip("\r\n")
        yield body + "," * len(missing) + line[len(body):] if body.strip() else line


def _term_texts(campaign: Campaign) -> dict[str, str]:
    return {column: "" if getattr(campaign, column) is None else str(getattr(campaign, column))
            for column in TERM_COLUMNS}


def rows_for_campaign(rows: Iterable[RawRow], campaign: Campaign) -> Iterator[RawRow]:
    """Import rows read as this campaign's: ``campaign_name`` empty or its name; empty terms are its terms (unless
    the row names another ``promo_type``: then nothing is filled and the domain reports what differs)."""
    terms = _term_texts(campaign)
    for raw in rows:
        if isinstance(raw, RowProblem):
            yield raw
            continue
        line, row = raw
        name = (row.get("campaign_name") or "").strip()
        if name and name != campaign.name:
            yield RowProblem(line, "campaign_name", f"must be empty or {campaign.name!r}: this page imports into "
                                                    "this campaign only")
            continue
        filled = {**row, "campaign_name": campaign.name}
        kind = (row.get("promo_type") or "").strip().upper()
        if not kind or kind == campaign.promo_type.value:
            filled.update({k: v for k, v in terms.items() if not (row.get(k) or "").strip()})
        yield line, filled


@bp.post("/campaigns/<int:campaign_id>/import")
def campaign_import(campaign_id: int) -> Response | tuple[str, int]:
    known_id(campaign_id, "campaign")
    form = ImportForm()
    upload = request.files.get("csv")
    confirmed = _confirmed(form)
    if upload is None or not upload.filename:
        form.csv.errors = ["choose a CSV file"]
    if not confirmed or form.csv.errors:
        return render_campaign_page(campaign_id, 400, import_form=form)
    assert upload is not None
    data = upload.stream.read()
    campaign = get_campaign(campaign_id)
    if campaign.status is CampaignStatus.EXPIRED:
        form.csv.errors = ["the campaign has expired; no codes can be added"]
        return render_campaign_page(campaign_id, 409, import_form=form)

    problems: list[RowProblem] = []

    def read() -> Iterator[RawRow]:
        return rows_for_campaign(read_import_csv(with_optional_columns(_decoded_lines(data))), campaign)

    report = CsvReport()
    try:
        result = security.container().batch_service().import_rows(
            read, report, actor=operator_name(), on_problem=problems.append)
    except DomainError as exc:
        return render_campaign_page(campaign_id, fail(form, exc, {"csv": "csv"}), import_form=form)
    if not result.ok:
        shown = [str(p) for p in sorted(problems, key=lambda p: p.line)[:MAX_PROBLEMS_SHOWN]]
        if len(problems) > MAX_PROBLEMS_SHOWN:
            shown.append(f"… and {len(problems) - MAX_PROBLEMS_SHOWN} more problem(s)")
        form.csv.errors = shown
        form.page_errors.append(f"Import refused: {len(problems)} problem(s) in the file; nothing was inserted.")
        return render_campaign_page(campaign_id, 400, import_form=form)
    log.info("codes imported", extra={"event": "promo_codes_imported", "campaign_id": campaign_id,
                                      "count": result.inserted, "actor": operator_name()})
    flash(f"{result.inserted:,} codes imported; the report is the CSV file your browser downloaded.", "ok")
    return _download(report, f"campaign-{campaign_id}-import.csv")


# --- one code ------------------------------------------------------------------------------------------


def _back_args(form: CodeStatusForm) -> dict[str, Any]:
    """The campaign page's code filter the button was pressed under (only well-formed values)."""
    args: dict[str, Any] = {}
    prefix = (form.code_prefix.data or "").strip()
    if prefix and len(prefix) <= 4 and prefix.isascii() and prefix.isalnum():
        args["code_prefix"] = prefix
    if form.code_status.data in CampaignStatus.__members__:
        args["code_status"] = form.code_status.data
    cursor = (form.cursor.data or "").strip()
    if cursor.isdecimal() and cursor.isascii() and len(cursor) <= 18:
        args["cursor"] = cursor
    return args


@bp.post("/codes/<int:code_id>/status")
def code_status(code_id: int) -> Response | tuple[str, int]:
    known_id(code_id, "code")
    form = CodeStatusForm()
    codes = security.container().code_service()
    try:
        code = codes.get(code_id)
    except NotFound:
        abort(404, f"There is no code {code_id}.")
    if not form.validate():
        form.page_errors.extend(f"{name}: {'; '.join(errors)}" for name, errors in form.errors.items())
        return render_campaign_page(code.campaign_id, 400, code_form=form)
    target = CampaignStatus(form.status.data or "")
    try:
        code = codes.set_status(code_id, target, actor=operator_name())
    except NotFound:
        abort(404, f"There is no code {code_id}.")
    except DomainError as exc:
        form.page_errors.append(f"Code {code_id} ({code.code_prefix}…): {exc.message}")
        return render_campaign_page(code.campaign_id, error_status(exc), code_form=form)
    log.info("code status set", extra={"event": "promo_code_status_set", "promo_code_id": code_id,
                                       "campaign_id": code.campaign_id, "code_prefix": code.code_prefix,
                                       "status": code.status.value, "actor": operator_name()})
    flash(f"Code {code_id} ({code.code_prefix}…) is {'paused' if target is CampaignStatus.PAUSED else 'active'} now.",
          "ok")
    if form.back.data == "code":
        return redirect(url_for("ops.code", code_id=code_id))
    return redirect(url_for("ops.campaign", campaign_id=code.campaign_id, **_back_args(form), _anchor="codes"))
