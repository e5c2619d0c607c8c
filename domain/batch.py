"""Campaigns by the hundred thousand (SPEC 10): batch code generation and CSV import.

Both operations run in ONE unit of work: every chunk is bulk-inserted (``PromoCodes.add_many``) inside
the same transaction and the report rows are handed to a :class:`ReportSink` as they are made; only when
every chunk is in and the sink is closed is the unit of work committed. A failure anywhere (a bad row, a
racing writer inserting the same code, a full disk) rolls everything back: nothing is inserted.

Memory stays flat in the number of codes: generation works in chunks and relies on ``existing_hashes``
seeing the chunks this unit of work inserted already (same transaction), so no set of every generated
code is kept. The import keeps one entry per normalized code of the file to find duplicates inside it.
"""

from __future__ import annotations

import csv
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

import attrs

from domain.campaigns import CampaignSpec, build_campaign, validate_spec
from domain.codes import (
    CODE_PATTERN,
    GENERATION_ALPHABET,
    MAX_RAW_CODE_LENGTH,
    CodeHasher,
    code_prefix,
    normalize_code,
)
from domain.errors import ValidationError
from domain.model import Campaign, PromoType, TargetScope

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.repositories import UnitOfWork, UnitOfWorkFactory

DEFAULT_CHUNK_SIZE = 10_000
DEFAULT_CODE_LENGTH = 12
MIN_CODE_LENGTH = 4
MAX_CODE_LENGTH = 32
MAX_GENERATE_COUNT = 10_000_000
# Rounds of fresh candidates for one chunk before giving up: each round keeps every candidate that is
# new, so many rounds happen only when the code space is nearly used up.
MAX_GENERATION_ROUNDS = 64
MAX_CANDIDATES_PER_ROUND = 65_536

IMPORT_COLUMNS: tuple[str, ...] = (
    "code",
    "campaign_name",
    "promo_type",
    "discount_percent",
    "grant_plan_code",
    "grant_days",
    "target_scope",
    "valid_from",
    "valid_until",
    "max_total_uses",
    "applicable_products",
)
REQUIRED_IMPORT_COLUMNS: tuple[str, ...] = ("code", "campaign_name", "promo_type")
CAMPAIGN_FIELDS: tuple[str, ...] = IMPORT_COLUMNS[1:]
REPORT_COLUMNS: tuple[str, ...] = (
    "promo_code_id",
    "campaign_name",
    "code",
    "normalized_code",
    "code_prefix",
    "promo_type",
    "discount_percent",
    "grant_plan_code",
    "grant_days",
    "target_scope",
    "valid_from",
    "valid_until",
    "max_total_uses",
    "applicable_products",
)

# 32 characters = 5 bits: a random byte modulo 32 is uniform, so one byte per character is unbiased.
assert 256 % len(GENERATION_ALPHABET) == 0
_BYTE_TO_CHAR = bytes(ord(GENERATION_ALPHABET[b % len(GENERATION_ALPHABET)]) for b in range(256))
_PRODUCT_SPLIT = re.compile(r"[,;\s]+")
_INTEGER = re.compile(r"^[+-]?\d{1,18}$")

ReportRow = Mapping[str, str]
T = TypeVar("T")


# The columns that differ between the report rows of one generated batch, in this order.
GENERATED_COLUMNS: tuple[str, ...] = ("promo_code_id", "code", "normalized_code", "code_prefix")
GeneratedRow = tuple[str, str, str, str]


class ReportSink(Protocol):
    """Where report rows go (a CSV file in the CLI). ``close`` runs before the commit."""

    def write(self, rows: Sequence[ReportRow]) -> None: ...

    def write_generated(self, shared: ReportRow, rows: Sequence[GeneratedRow]) -> None:
        """Rows of one generated batch: ``GENERATED_COLUMNS`` from each of ``rows``, every other column from
        ``shared`` (the same campaign fields); ``expand_generated`` gives them as ``write`` would."""
        ...

    def close(self) -> None: ...


def expand_generated(shared: ReportRow, rows: Sequence[GeneratedRow]) -> list[dict[str, str]]:
    """``write_generated``'s rows as full report rows."""
    return [{**shared, **dict(zip(GENERATED_COLUMNS, row, strict=True))} for row in rows]


Progress = Callable[[int], None]


@attrs.frozen
class RowProblem:
    """One bad row (or the header, line 1) of an import file."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


@attrs.frozen
class ImportRow:
    line: int
    code: str
    normalized_code: str
    spec: CampaignSpec


RawRow = tuple[int, Mapping[str, str]] | RowProblem


@attrs.frozen
class BatchResult:
    inserted: int
    problems: int = 0

    @property
    def ok(self) -> bool:
        return self.problems == 0


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
    values: Mapping[str, str | None], known_products: Collection[str] | None = None
) -> tuple[CampaignSpec | None, list[dict[str, str]]]:
    """Text values keyed by the SPEC 3 column names -> a validated :class:`CampaignSpec`.

    Returns ``(spec, [])`` or ``(None, errors)`` with one ``{"field", "message"}`` per problem."""
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
        bad("promo_type", "required: PREMIUM_GRANT or PERCENT_DISCOUNT")
    elif raw_type.upper() in PromoType.__members__:
        promo_type = PromoType(raw_type.upper())
    else:
        bad("promo_type", f"must be PREMIUM_GRANT or PERCENT_DISCOUNT, got {raw_type!r}")
    raw_scope = text("target_scope")
    scope = TargetScope.ALL
    if raw_scope is not None:
        if raw_scope.upper() in TargetScope.__members__:
            scope = TargetScope(raw_scope.upper())
        else:
            bad("target_scope", f"must be ALL or FIRST_PURCHASE_ONLY, got {raw_scope!r}")
    discount = parsed("discount_percent", _parse_int)
    grant_days = parsed("grant_days", _parse_int)
    max_uses = parsed("max_total_uses", _parse_int)
    valid_from = parsed("valid_from", parse_datetime)
    valid_until = parsed("valid_until", parse_datetime)
    products = parse_products(values.get("applicable_products") or "")
    if promo_type is None:
        return None, errors
    spec = CampaignSpec(
        campaign_name=name or "",
        promo_type=promo_type,
        grant_plan_code=text("grant_plan_code"),
        grant_days=grant_days,
        discount_percent=discount,
        applicable_products=products,
        target_scope=scope,
        valid_from=valid_from,
        valid_until=valid_until,
        max_total_uses=max_uses,
    )
    # Report every problem at once, but each field only once: a field that did not parse is not
    # judged again as missing.
    unparsed = {e["field"] for e in errors}
    errors += [e for e in validate_spec(spec, known_products) if e["field"] not in unparsed]
    return (None, errors) if errors else (spec, [])


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
    line: int, row: Mapping[str, str], known_products: Collection[str] | None = None
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
    spec, errors = parse_campaign_fields(row, known_products)
    problems.extend(RowProblem(line, e["field"], e["message"]) for e in errors)
    if problems or spec is None:
        return problems
    return ImportRow(line=line, code=raw_code, normalized_code=normalized, spec=spec)


# --- report rows ----------------------------------------------------------------------------------


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def report_row(promo_code_id: int, code: str, normalized_code: str, campaign: Campaign) -> dict[str, str]:
    """One report line: the plaintext ``code`` appears here and nowhere else."""
    return {
        "promo_code_id": str(promo_code_id),
        "campaign_name": campaign.campaign_name,
        "code": code,
        "normalized_code": normalized_code,
        "code_prefix": campaign.code_prefix,
        "promo_type": campaign.promo_type.value,
        "discount_percent": _text(campaign.discount_percent),
        "grant_plan_code": _text(campaign.grant_plan_code),
        "grant_days": _text(campaign.grant_days),
        "target_scope": campaign.target_scope.value,
        "valid_from": _text(campaign.valid_from),
        "valid_until": _text(campaign.valid_until),
        "max_total_uses": _text(campaign.max_total_uses),
        "applicable_products": ",".join(campaign.applicable_products),
    }


# --- generation -----------------------------------------------------------------------------------


def random_codes(count: int, length: int, prefix: str = "") -> list[str]:
    """``count`` cryptographically random codes over ``GENERATION_ALPHABET``, ``prefix`` included in
    ``length``. One random byte per character (unbiased: 256 is a multiple of 32); duplicates possible."""
    k = length - len(prefix)
    if k < 1:
        raise ValueError("length must exceed the prefix length")
    chars = secrets.token_bytes(count * k).translate(_BYTE_TO_CHAR).decode("ascii")
    return [prefix + chars[i * k:(i + 1) * k] for i in range(count)]


def validate_generation(count: int, length: int, prefix: str) -> tuple[str, list[dict[str, str]]]:
    """The normalized prefix and one ``{"field", "message"}`` per bad parameter."""
    errors: list[dict[str, str]] = []
    if not 1 <= count <= MAX_GENERATE_COUNT:
        errors.append({"field": "count", "message": f"must be 1..{MAX_GENERATE_COUNT}"})
    if not MIN_CODE_LENGTH <= length <= MAX_CODE_LENGTH:
        errors.append({"field": "length", "message": f"must be {MIN_CODE_LENGTH}..{MAX_CODE_LENGTH}"})
    norm_prefix = normalize_code(prefix)
    if norm_prefix and not re.fullmatch(r"[A-Z0-9]+", norm_prefix):
        errors.append({"field": "prefix", "message": "must consist of A-Z and 0-9 (dashes and spaces are dropped)"})
    elif len(norm_prefix) >= length and not errors:
        errors.append({"field": "prefix", "message": f"must be shorter than the code length ({length})"})
    if not errors:
        space = len(GENERATION_ALPHABET) ** (length - len(norm_prefix))
        if count > space:
            errors.append({"field": "count", "message": f"only {space} codes of length {length} with prefix "
                                                        f"{norm_prefix!r} exist; use a longer length"})
    return norm_prefix, errors


class BatchService:
    """``generate`` and ``import_rows``: all-or-nothing bulk creation of campaigns with a report."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        hasher: CodeHasher,
        known_products: Collection[str] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        self._uow = uow_factory
        self._clock = clock
        self._hasher = hasher
        self._known_products = known_products
        self._chunk = chunk_size

    def generate(
        self,
        spec: CampaignSpec,
        count: int,
        sink: ReportSink,
        *,
        length: int = DEFAULT_CODE_LENGTH,
        prefix: str = "",
        progress: Progress | None = None,
    ) -> BatchResult:
        """``count`` new codes of one campaign spec. Raises ValidationError (fields ``count``,
        ``length``, ``prefix`` and the spec's) before anything is written."""
        norm_prefix, errors = validate_generation(count, length, prefix)
        errors += validate_spec(spec, self._known_products)
        if errors:
            raise ValidationError(errors)
        now = self._clock.now()
        # The next chunk's candidates (random draw and HMAC, pure CPU) are prepared on a helper thread while
        # this one waits for the database with the current chunk.
        with self._uow() as uow, ThreadPoolExecutor(max_workers=1, thread_name_prefix="codes-draw") as ahead:
            remaining = count
            upcoming = ahead.submit(self._candidates, min(self._chunk, remaining), length, norm_prefix)
            while remaining:
                n = min(self._chunk, remaining)
                first = upcoming.result()
                if remaining > n:
                    upcoming = ahead.submit(self._candidates, min(self._chunk, remaining - n), length, norm_prefix)
                codes = self._fresh_codes(uow, n, length, norm_prefix, first)
                campaigns = [build_campaign(spec, h, code_prefix(c), now) for c, h in codes]
                ids = uow.promo_codes.add_many(campaigns)
                # Every row of a generated batch shares its campaign fields: format them once.
                shared = report_row(0, "", "", campaigns[0])
                sink.write_generated(shared, [(str(i), c, c, code_prefix(c))
                                              for i, (c, _) in zip(ids, codes, strict=True)])
                remaining -= n
                if progress is not None:
                    progress(n)
            sink.close()
            uow.commit()
        return BatchResult(inserted=count)

    def _candidates(self, draw: int, length: int, prefix: str) -> dict[str, tuple[str, ...]]:
        """``draw`` random codes (fewer when the draw repeats itself) with their lookup hashes."""
        return {code: self._hasher.lookup_hashes(code) for code in dict.fromkeys(random_codes(draw, length, prefix))}

    def _fresh_codes(self, uow: UnitOfWork, n: int, length: int, prefix: str,
                     first: dict[str, tuple[str, ...]] | None = None) -> list[tuple[str, str]]:
        """``n`` (code, hash) pairs: distinct among themselves and unknown to the store under every
        pepper (earlier chunks of this run are in the store already, same unit of work). ``first``: the
        first round's candidates, drawn already."""
        chosen: dict[str, str] = {}
        for attempt in range(MAX_GENERATION_ROUNDS):
            want = n - len(chosen)
            if want == 0:
                break
            if attempt == 0 and first is not None:
                candidates = first
            else:
                # Ask for more candidates each round: when the space is crowded most of them collide.
                draw = min(want << attempt, max(want, MAX_CANDIDATES_PER_ROUND))
                candidates = {c: h for c, h in self._candidates(draw, length, prefix).items() if c not in chosen}
            taken = uow.promo_codes.existing_hashes([h for hashes in candidates.values() for h in hashes])
            for code, hashes in candidates.items():
                if len(chosen) == n:
                    break
                if not taken.intersection(hashes):
                    chosen[code] = hashes[0]
        if len(chosen) < n:
            raise ValidationError.single(
                "length", f"could not find {n} unused codes with prefix {prefix!r}; the code space is nearly "
                          "used up: use a longer length or another prefix")
        return list(chosen.items())

    # --- import -----------------------------------------------------------------------------------

    def import_rows(
        self,
        read: Callable[[], Iterable[RawRow]],
        sink: ReportSink,
        *,
        on_problem: Callable[[RowProblem], None],
        progress: Progress | None = None,
    ) -> BatchResult:
        """Validate every row of ``read()`` first (``on_problem`` hears each bad one, in line order per
        kind); insert only when there is none, reading the rows a second time.

        Problems: malformed fields, a code repeated inside the file (normalized), a code already
        stored (under the current or a previous pepper)."""
        with self._uow() as uow:
            problems = self._validate_import(uow, read(), on_problem)
            if problems:
                return BatchResult(inserted=0, problems=problems)
            now = self._clock.now()
            inserted = 0
            chunk: list[ImportRow] = []

            def flush() -> None:
                campaigns = [
                    build_campaign(r.spec, self._hasher.hash(r.normalized_code), code_prefix(r.normalized_code), now)
                    for r in chunk
                ]
                ids = uow.promo_codes.add_many(campaigns)
                sink.write([report_row(i, r.code, r.normalized_code, c)
                            for i, r, c in zip(ids, chunk, campaigns, strict=True)])
                if progress is not None:
                    progress(len(chunk))
                chunk.clear()

            for raw in read():
                row = self._parsed_or_raise(raw)
                chunk.append(row)
                inserted += 1
                if len(chunk) >= self._chunk:
                    flush()
            if chunk:
                flush()
            sink.close()
            uow.commit()
        return BatchResult(inserted=inserted)

    def _parsed_or_raise(self, raw: RawRow) -> ImportRow:
        # The second pass reads what the first pass found clean; anything else means the file changed.
        parsed = raw if isinstance(raw, RowProblem) else parse_import_row(raw[0], raw[1], self._known_products)
        if not isinstance(parsed, ImportRow):
            first = parsed if isinstance(parsed, RowProblem) else parsed[0]
            raise ValidationError.single("csv", f"the file changed while importing ({first})")
        return parsed

    def _validate_import(
        self, uow: UnitOfWork, rows: Iterable[RawRow], on_problem: Callable[[RowProblem], None]
    ) -> int:
        problems = 0
        first_line: dict[str, int] = {}
        pending: list[tuple[int, tuple[str, ...]]] = []

        def report(problem: RowProblem) -> None:
            nonlocal problems
            problems += 1
            on_problem(problem)

        def check_stored() -> None:
            taken = uow.promo_codes.existing_hashes([h for _, hashes in pending for h in hashes])
            for line, hashes in pending:
                if taken.intersection(hashes):
                    report(RowProblem(line, "code", "already stored (a campaign with this code exists)"))
            pending.clear()

        for raw in rows:
            if isinstance(raw, RowProblem):
                report(raw)
                continue
            parsed = parse_import_row(raw[0], raw[1], self._known_products)
            if not isinstance(parsed, ImportRow):
                for p in parsed:
                    report(p)
                continue
            seen_at = first_line.setdefault(parsed.normalized_code, parsed.line)
            if seen_at != parsed.line:
                report(RowProblem(parsed.line, "code", f"duplicate of line {seen_at} (same normalized code)"))
                continue
            pending.append((parsed.line, self._hasher.lookup_hashes(parsed.normalized_code)))
            if len(pending) >= self._chunk:
                check_stored()
        if pending:
            check_stored()
        return problems
