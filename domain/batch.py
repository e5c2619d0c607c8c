"""Codes by the hundred thousand (SPEC 10): batch code generation into a campaign, and CSV import.

Both operations run in ONE unit of work: every chunk is bulk-inserted (``PromoCodes.add_many``) inside
the same transaction and the report rows are handed to a :class:`ReportSink` as they are made; only when
every chunk is in and the sink is closed is the unit of work committed. A failure anywhere (a bad row, a
racing writer inserting the same code, a full disk) rolls everything back: nothing is inserted, no campaign
is created.

Memory stays flat in the number of codes: generation works in chunks and relies on ``existing_hashes``
seeing the chunks this unit of work inserted already (same transaction), so no set of every generated
code is kept. The import keeps one entry per normalized code of the file to find duplicates inside it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from domain import audit
from domain.campaigns import add_campaign, build_code, validate_spec
from domain.code_files import (
    CodeTerms,
    GeneratedRow,
    ImportRow,
    RawRow,
    ReportRow,
    RowProblem,
    conflicts,
    parse_import_row,
    report_row,
)
from domain.codes import GENERATION_ALPHABET, CodeHasher, code_prefix, normalize_code
from domain.errors import InvalidTransition, NotFound, ValidationError
from domain.model import Campaign, CampaignStatus

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

# 32 characters = 5 bits: a random byte modulo 32 is uniform, so one byte per character is unbiased.
assert 256 % len(GENERATION_ALPHABET) == 0
_BYTE_TO_CHAR = bytes(ord(GENERATION_ALPHABET[b % len(GENERATION_ALPHABET)]) for b in range(256))


class ReportSink(Protocol):
    """Where report rows go (a CSV file in the CLI). ``close`` runs before the commit."""

    def write(self, rows: Sequence[ReportRow]) -> None: ...

    def write_generated(self, shared: ReportRow, rows: Sequence[GeneratedRow]) -> None:
        """Rows of one generated batch: ``GENERATED_COLUMNS`` from each of ``rows``, every other column from
        ``shared`` (the same campaign fields); ``code_files.expand_generated`` gives them as ``write`` would."""
        ...

    def close(self) -> None: ...


Progress = Callable[[int], None]


@attrs.frozen
class BatchResult:
    inserted: int
    problems: int = 0
    # The campaign the codes went into (generation; an import may fill several).
    campaign: Campaign | None = None
    campaign_created: bool = False

    @property
    def ok(self) -> bool:
        return self.problems == 0


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
    """``generate`` and ``import_rows``: all-or-nothing bulk creation of codes with a report."""

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
        terms: CodeTerms,
        count: int,
        sink: ReportSink,
        *,
        actor: str,
        length: int = DEFAULT_CODE_LENGTH,
        prefix: str = "",
        progress: Progress | None = None,
    ) -> BatchResult:
        """``count`` new codes of the campaign named ``terms.spec.name``: created with those terms when none has
        that name, else the given terms must equal the campaign's (``ValidationError`` naming each field that
        differs). Raises ValidationError (``count``, ``length``, ``prefix``) before anything is written."""
        norm_prefix, errors = validate_generation(count, length, prefix)
        if errors:
            raise ValidationError(errors)
        now = self._clock.now()
        with self._uow() as uow:
            campaign = uow.campaigns.get_by_name(terms.spec.name)
            created = campaign is None
            if campaign is None:
                invalid = validate_spec(terms.spec, now, self._known_products, name_field="campaign_name",
                                        budget_field="campaign_max_total_uses")
                if invalid:
                    raise ValidationError(invalid)
                campaign = add_campaign(uow, terms.spec, now)
            else:
                mismatch = conflicts(terms, campaign)
                if mismatch:
                    raise ValidationError(mismatch)
                self._check_open(campaign)
            return self._generate(uow, campaign, created, count, sink, actor, length, norm_prefix,
                                  terms.code_max_total_uses, progress, now)

    def generate_into(
        self,
        campaign_id: int,
        count: int,
        sink: ReportSink,
        *,
        actor: str,
        code_max_total_uses: int | None = None,
        length: int = DEFAULT_CODE_LENGTH,
        prefix: str = "",
        progress: Progress | None = None,
    ) -> BatchResult:
        """``count`` new codes of an existing campaign (its terms), each with its own cap ``code_max_total_uses``."""
        norm_prefix, errors = validate_generation(count, length, prefix)
        if code_max_total_uses is not None and code_max_total_uses < 1:
            errors.append({"field": "max_total_uses", "message": "must be >= 1 or null"})
        if errors:
            raise ValidationError(errors)
        now = self._clock.now()
        with self._uow() as uow:
            campaign = uow.campaigns.get(campaign_id)
            if campaign is None:
                raise NotFound(f"campaign {campaign_id} not found")
            self._check_open(campaign)
            return self._generate(uow, campaign, False, count, sink, actor, length, norm_prefix,
                                  code_max_total_uses, progress, now)

    @staticmethod
    def _check_open(campaign: Campaign) -> None:
        if campaign.status is CampaignStatus.EXPIRED:
            raise InvalidTransition(f"campaign {campaign.id} has expired; no codes can be added",
                                    {"status": campaign.status.value})

    def _generate(self, uow: UnitOfWork, campaign: Campaign, created: bool, count: int, sink: ReportSink,
                  actor: str, length: int, norm_prefix: str, code_cap: int | None, progress: Progress | None,
                  now: datetime) -> BatchResult:
        # The next chunk's candidates (random draw and HMAC, pure CPU) are prepared on a helper thread while
        # this one waits for the database with the current chunk.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="codes-draw") as ahead:
            remaining = count
            upcoming = ahead.submit(self._candidates, min(self._chunk, remaining), length, norm_prefix)
            # Every row of a generated batch shares its campaign fields: format them once.
            shared = report_row(0, "", "", "", campaign, code_cap)
            while remaining:
                n = min(self._chunk, remaining)
                first = upcoming.result()
                if remaining > n:
                    upcoming = ahead.submit(self._candidates, min(self._chunk, remaining - n), length, norm_prefix)
                codes = self._fresh_codes(uow, n, length, norm_prefix, first)
                rows = [build_code(campaign, h, code_prefix(c), code_cap, now) for c, h in codes]
                ids = uow.promo_codes.add_many(rows)
                sink.write_generated(shared, [(str(i), c, c, code_prefix(c))
                                              for i, (c, _) in zip(ids, codes, strict=True)])
                remaining -= n
                if progress is not None:
                    progress(n)
        assert campaign.id is not None
        audit.record(uow, now, actor, audit.CODES_GENERATED, audit.CAMPAIGN, campaign.id, {
            "count": count, "prefix": norm_prefix, "length": length, "max_total_uses": code_cap,
            "campaign_created": created, "campaign_name": campaign.name})
        sink.close()
        uow.commit()
        return BatchResult(inserted=count, campaign=campaign, campaign_created=created)

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
        actor: str,
        on_problem: Callable[[RowProblem], None],
        progress: Progress | None = None,
    ) -> BatchResult:
        """Validate every row of ``read()`` first (``on_problem`` hears each bad one, in line order per
        kind); insert only when there is none, reading the rows a second time.

        Rows are grouped into campaigns by ``campaign_name``: a missing campaign is created with the terms of
        its rows (which must all agree), an existing one takes rows whose terms equal its own. Problems:
        malformed fields, terms that disagree, a code repeated inside the file (normalized), a code already
        stored (under the current or a previous pepper). One audit entry per campaign the file fills."""
        now = self._clock.now()
        with self._uow() as uow:
            problems = self._validate_import(uow, read(), on_problem, now)
            if problems:
                return BatchResult(inserted=0, problems=problems)
            inserted = 0
            chunk: list[ImportRow] = []
            campaigns: dict[str, Campaign] = {}
            filled: dict[str, dict[str, Any]] = {}

            def campaign_of(row: ImportRow) -> Campaign:
                name = row.terms.spec.name
                if name not in campaigns:
                    existing = uow.campaigns.get_by_name(name)
                    campaigns[name] = existing or add_campaign(uow, row.terms.spec, now)
                    filled[name] = {"count": 0, "campaign_created": existing is None, "campaign_name": name}
                filled[name]["count"] += 1
                return campaigns[name]

            def flush() -> None:
                rows = []
                for r in chunk:
                    owner = campaign_of(r)
                    rows.append((r, owner, build_code(owner, self._hasher.hash(r.normalized_code),
                                                      code_prefix(r.normalized_code), r.terms.code_max_total_uses,
                                                      now)))
                ids = uow.promo_codes.add_many([code for _, _, code in rows])
                sink.write([report_row(i, r.code, r.normalized_code, code.code_prefix, owner,
                                       r.terms.code_max_total_uses)
                            for i, (r, owner, code) in zip(ids, rows, strict=True)])
                if progress is not None:
                    progress(len(chunk))
                chunk.clear()

            for raw in read():
                row = self._parsed_or_raise(raw, now)
                chunk.append(row)
                inserted += 1
                if len(chunk) >= self._chunk:
                    flush()
            if chunk:
                flush()
            for name, details in filled.items():
                campaign_id = campaigns[name].id
                assert campaign_id is not None
                audit.record(uow, now, actor, audit.CODES_IMPORTED, audit.CAMPAIGN, campaign_id, details)
            sink.close()
            uow.commit()
        return BatchResult(inserted=inserted)

    def _parsed_or_raise(self, raw: RawRow, now: datetime) -> ImportRow:
        # The second pass reads what the first pass found clean; anything else means the file changed.
        parsed = raw if isinstance(raw, RowProblem) else parse_import_row(raw[0], raw[1], now, self._known_products)
        if not isinstance(parsed, ImportRow):
            first = parsed if isinstance(parsed, RowProblem) else parsed[0]
            raise ValidationError.single("csv", f"the file changed while importing ({first})")
        return parsed

    def _validate_import(
        self, uow: UnitOfWork, rows: Iterable[RawRow], on_problem: Callable[[RowProblem], None], now: datetime
    ) -> int:
        problems = 0
        first_line: dict[str, int] = {}
        pending: list[tuple[int, tuple[str, ...]]] = []
        # Per campaign name: the stored campaign, or the first row that will create it.
        stored: dict[str, Campaign | None] = {}
        first_of: dict[str, ImportRow] = {}

        def report(problem: RowProblem) -> None:
            nonlocal problems
            problems += 1
            on_problem(problem)

        def check_stored() -> None:
            taken = uow.promo_codes.existing_hashes([h for _, hashes in pending for h in hashes])
            for line, hashes in pending:
                if taken.intersection(hashes):
                    report(RowProblem(line, "code", "already stored (a code with this value exists)"))
            pending.clear()

        def check_campaign(row: ImportRow) -> bool:
            name = row.terms.spec.name
            if name not in stored:
                stored[name] = uow.campaigns.get_by_name(name)
            campaign = stored[name]
            if campaign is not None:
                found = [RowProblem(row.line, e["field"], e["message"]) for e in conflicts(row.terms, campaign)]
                if campaign.status is CampaignStatus.EXPIRED:
                    found.append(RowProblem(row.line, "campaign_name", f"campaign {campaign.id} has expired"))
            else:
                first = first_of.setdefault(name, row)
                found = [RowProblem(row.line, field, f"differs from line {first.line} of the same campaign_name")
                         for field in _differing_terms(first, row)]
            for p in found:
                report(p)
            return not found

        for raw in rows:
            if isinstance(raw, RowProblem):
                report(raw)
                continue
            parsed = parse_import_row(raw[0], raw[1], now, self._known_products)
            if not isinstance(parsed, ImportRow):
                for p in parsed:
                    report(p)
                continue
            if not check_campaign(parsed):
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


_CAMPAIGN_TERMS = ("promo_type", "grant_plan_code", "grant_days", "discount_percent", "discount_stars",
                   "applicable_products", "target_scope", "valid_from", "valid_until", "per_user_limit")


def _differing_terms(first: ImportRow, row: ImportRow) -> list[str]:
    return [f for f in _CAMPAIGN_TERMS if getattr(first.terms.spec, f) != getattr(row.terms.spec, f)]
