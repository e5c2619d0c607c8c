"""The CSV files of codes (SPEC 10): the import file (parsed and validated row by row) and the report written for
every inserted code -- the one place a plaintext code ever appears."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import attrs

from domain.campaigns import CampaignSpec, terms_conflicts, validate_budget, validate_spec
from domain.codes import CODE_PATTERN, MAX_RAW_CODE_LENGTH, normalize_code
from domain.model import Campaign, PromoType, TargetScope

# Import columns: the code, its campaign's name and terms, the code's own cap (``max_total_uses``). ``discount_stars``
# and ``per_user_limit`` may be absent, so files made for earlier versions still import.
IMPORT_COLUMNS: tuple[str, ...] = (
    "code",
    "campaign_name",
    "promo_type",
    "discount_percent",
    "discount_stars",
    "grant_plan_code",
    "grant_days",
    "target_scope",
    "valid_from",
    "valid_until",
    "max_total_uses",
    "applicable_products",
    "per_user_limit",
)
REQUIRED_IMPORT_COLUMNS: tuple[str, ...] = ("code", "campaign_name", "promo_type")
REPORT_COLUMNS: tuple[str, ...] = (
    "promo_code_id",
    "campaign_id",
    "campaign_name",
    "code",
    "normalized_code",
    "code_prefix",
    "promo_type",
    "discount_percent",
    "discount_stars",
    "grant_plan_code",
    "grant_days",
    "target_scope",
    "valid_from",
    "valid_until",
    "max_total_uses",
    "applicable_products",
    "per_user_limit",
)
# The columns that differ between the report rows of one generated batch, in this order.
GENERATED_COLUMNS: tuple[str, ...] = ("promo_code_id", "code", "normalized_code", "code_prefix")
GeneratedRow = tuple[str, str, str, str]
ReportRow = Mapping[str, str]

_PRODUCT_SPLIT = re.compile(r"[,;\s]+")
_INTEGER = re.compile(r"^[+-]?\d{1,18}$")
_TYPES = " or ".join(t.value for t in PromoType)
T = TypeVar("T")


@attrs.frozen
class RowProblem:
    """One bad row (or the header, line 1) of an import file."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@attrs.frozen
class CodeTerms:
    """A campaign spec as flags or columns gave it, the code's own cap, and which fields were actually given."""

    spec: CampaignSpec
    code_max_total_uses: int | None
    given: frozenset[str]


@attrs.frozen
class ImportRow:
    line: int
    code: str
    normalized_code: str
    terms: CodeTerms


RawRow = tuple[int, Mapping[str, str]] | RowProblem

# Column or flag name -> the CampaignSpec field it sets (the others are the same); and back.
SPEC_FIELD = {"campaign_name": "name", "campaign_max_total_uses": "max_total_uses",
              "max_total_uses": "code_max_total_uses"}
COLUMN_OF = {v: k for k, v in SPEC_FIELD.items()}


def conflicts(terms: CodeTerms, campaign: Campaign) -> list[dict[str, str]]:
    """Where codes for an existing campaign disagree with it, named by column/flag (see ``terms_conflicts``)."""
    return [{**e, "field": COLUMN_OF.get(e["field"], e["field"])}
            for e in terms_conflicts(terms.spec, campaign, terms.given)]


# --- parsing campaign fields ----------------------------------------------------------------------


def _blank(value: str | None) -> bool:
    return value is None or value.strip() == ""


def _parse_int(value: str) -> int:
    text = value.strip()
    if not _INTEGER.fullmatch(text):
        raise ValueError("must be an integer")
    return int(text)


def parse_datetime(value: str) -> datetime:
    """ISO 8601 with a timezone (``Z`` or an offset), returned in UTC."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("must be an ISO 8601 timestamp with a timezone, e.g. 2026-12-31T23:59:59Z") from None
    if moment.utcoffset() is None:
        raise ValueError("must carry a timezone, e.g. 2026-12-31T23:59:59Z")
    return moment.astimezone(UTC)


def parse_products(value: str) -> tuple[str, ...]:
    """Product codes separated by commas, semicolons or spaces; empty = every product."""
    return tuple(p for p in _PRODUCT_SPLIT.split(value.strip()) if p)


def parse_campaign_fields(
    values: Mapping[str, str | None], now: datetime, known_products: Collection[str] | None = None
) -> tuple[CodeTerms | None, list[dict[str, str]]]:
    """Text values keyed by the SPEC 3 column names (``max_total_uses`` is the code's own cap,
    ``campaign_max_total_uses`` the campaign's budget) -> validated :class:`CodeTerms`.

    Returns ``(terms, [])`` or ``(None, errors)`` with one ``{"field", "message"}`` per problem."""
    errors: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    def text(field: str) -> str | None:
        value = values.get(field)
        return None if value is None or _blank(value) else value.strip()

    def parsed(field: str, parse: Callable[[str], T]) -> T | None:
        value = text(field)
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            bad(field, str(exc))
            return None

    name = text("campaign_name")
    if name is None:
        bad("campaign_name", "required")
    raw_type = text("promo_type")
    promo_type: PromoType | None = None
    if raw_type is None:
        bad("promo_type", f"required: {_TYPES}")
    elif raw_type.upper() in PromoType.__members__:
        promo_type = PromoType(raw_type.upper())
    else:
        bad("promo_type", f"must be {_TYPES}, got {raw_type!r}")
    raw_scope = text("target_scope")
    scope = TargetScope.ALL
    if raw_scope is not None:
        if raw_scope.upper() in TargetScope.__members__:
            scope = TargetScope(raw_scope.upper())
        else:
            bad("target_scope", f"must be ALL or FIRST_PURCHASE_ONLY, got {raw_scope!r}")
    discount = parsed("discount_percent", _parse_int)
    discount_stars = parsed("discount_stars", _parse_int)
    grant_days = parsed("grant_days", _parse_int)
    code_cap = parsed("max_total_uses", _parse_int)
    budget = parsed("campaign_max_total_uses", _parse_int)
    per_user = parsed("per_user_limit", _parse_int)
    valid_from = parsed("valid_from", parse_datetime)
    valid_until = parsed("valid_until", parse_datetime)
    products = parse_products(values.get("applicable_products") or "")
    if promo_type is None:
        return None, errors
    spec = CampaignSpec(
        name=name or "",
        promo_type=promo_type,
        grant_plan_code=text("grant_plan_code"),
        grant_days=grant_days,
        discount_percent=discount,
        discount_stars=discount_stars,
        applicable_products=products,
        target_scope=scope,
        valid_from=valid_from,
        valid_until=valid_until,
        max_total_uses=budget,
        per_user_limit=per_user if per_user is not None else 1,
    )
    # Report every problem at once, but each field only once: a field that did not parse is not
    # judged again as missing.
    unparsed = {e["field"] for e in errors}
    found = validate_spec(spec, now, known_products, name_field="campaign_name",
                          budget_field="campaign_max_total_uses")
    validate_budget(code_cap, found, "max_total_uses")
    errors += [e for e in found if e["field"] not in unparsed]
    given = frozenset(SPEC_FIELD.get(k, k) for k, v in values.items() if not _blank(v))
    return (None, errors) if errors else (CodeTerms(spec, code_cap, given), [])


# --- import rows ----------------------------------------------------------------------------------


def read_import_csv(lines: Iterable[str]) -> Iterator[RawRow]:
    """Rows of an import file as ``(line, {column: value})``; structural problems as :class:`RowProblem`.

    ``line`` is the physical line a record starts on (the header is line 1). A header problem, a
    CSV syntax error or undecodable bytes end the iteration after their problem."""
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield RowProblem(1, "header", f"malformed CSV: {exc}")
        return
    except UnicodeDecodeError:
        yield RowProblem(1, "file", "not valid UTF-8 text")
        return
    if header is None or all(not cell.strip() for cell in header):
        yield RowProblem(1, "header", "the file is empty; expected a header row: " + ",".join(IMPORT_COLUMNS))
        return
    columns = [c.strip().lstrip("\ufeff").lower() for c in header]
    header_problems = []
    unknown = [c for c in columns if c not in IMPORT_COLUMNS]
    if unknown:
        header_problems.append(f"unknown column(s): {', '.join(unknown)}")
    missing = [c for c in REQUIRED_IMPORT_COLUMNS if c not in columns]
    if missing:
        header_problems.append(f"missing column(s): {', '.join(missing)}")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        header_problems.append(f"repeated column(s): {', '.join(repeated)}")
    if header_problems:
        yield RowProblem(1, "header", "; ".join(header_problems) + f" (columns: {', '.join(IMPORT_COLUMNS)})")
        return
    data_rows = 0
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield RowProblem(start, "csv", f"malformed CSV: {exc}")
            return
        except UnicodeDecodeError:
            yield RowProblem(start, "file", "not valid UTF-8 text")
            return
        if not row or all(not cell.strip() for cell in row):
            continue
        data_rows += 1
        if len(row) != len(columns):
            yield RowProblem(start, "row", f"expected {len(columns)} fields, got {len(row)}")
            continue
        yield start, dict(zip(columns, row, strict=True))
    if data_rows == 0:
        yield RowProblem(1, "file", "no data rows after the header")


def parse_import_row(
    line: int, row: Mapping[str, str], now: datetime, known_products: Collection[str] | None = None
) -> ImportRow | list[RowProblem]:
    problems: list[RowProblem] = []
    raw_code = (row.get("code") or "").strip()
    normalized = ""
    if not raw_code:
        problems.append(RowProblem(line, "code", "required"))
    elif len(raw_code) > MAX_RAW_CODE_LENGTH:
        problems.append(RowProblem(line, "code", f"longer than {MAX_RAW_CODE_LENGTH} characters"))
    else:
        normalized = normalize_code(raw_code)
        if not CODE_PATTERN.fullmatch(normalized):
            problems.append(RowProblem(line, "code", "must normalize to 4..32 characters A-Z 0-9"))
    fields = {k: v for k, v in row.items() if k != "code"}
    terms, errors = parse_campaign_fields(fields, now, known_products)
    problems.extend(RowProblem(line, e["field"], e["message"]) for e in errors)
    if problems or terms is None:
        return problems
    return ImportRow(line=line, code=raw_code, normalized_code=normalized, terms=terms)


# --- report rows ----------------------------------------------------------------------------------


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def report_row(promo_code_id: int, code: str, normalized_code: str, prefix: str, campaign: Campaign,
               code_max_total_uses: int | None) -> dict[str, str]:
    """One report line: the plaintext ``code`` appears here and nowhere else."""
    return {
        "promo_code_id": str(promo_code_id),
        "campaign_id": _text(campaign.id),
        "campaign_name": campaign.name,
        "code": code,
        "normalized_code": normalized_code,
        "code_prefix": prefix,
        "promo_type": campaign.promo_type.value,
        "discount_percent": _text(campaign.discount_percent),
        "discount_stars": _text(campaign.discount_stars),
        "grant_plan_code": _text(campaign.grant_plan_code),
        "grant_days": _text(campaign.grant_days),
        "target_scope": campaign.target_scope.value,
        "valid_from": _text(campaign.valid_from),
        "valid_until": _text(campaign.valid_until),
        "max_total_uses": _text(code_max_total_uses),
        "applicable_products": ",".join(campaign.applicable_products),
        "per_user_limit": str(campaign.per_user_limit),
    }


def expand_generated(shared: ReportRow, rows: Sequence[GeneratedRow]) -> list[dict[str, str]]:
    """``ReportSink.write_generated``'s rows as full report rows."""
    return [{**shared, **dict(zip(GENERATED_COLUMNS, row, strict=True))} for row in rows]
