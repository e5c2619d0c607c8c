"""SPEC 10 `starpromo codes generate`: secure unique codes into one campaign (created, or added to when the terms
agree), all-or-nothing, a report with the ids."""

from __future__ import annotations

import csv
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from dependency_injector import providers

from adapters.memory import ManualClock
from domain.batch import BatchService
from domain.code_files import REPORT_COLUMNS, CodeTerms, expand_generated, parse_campaign_fields
from domain.codes import GENERATION_ALPHABET, CodeHasher
from domain.errors import ValidationError
from domain.model import CampaignStatus, PromoType, RedeemResult, TargetScope
from entrypoints.cli._ops import ReportFile
from entrypoints.cli.main import cli
from entrypoints.container import Container
from tests.conftest import PEPPER
from tests.unit.cli.conftest import ACTOR, Cli


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == REPORT_COLUMNS
        return list(reader)


def use_chunks(container: Container, size: int) -> None:
    container.batch_service.override(providers.Factory(
        BatchService, container.uow_factory, container.clock, container.hasher, chunk_size=size))


def terms(clock: ManualClock, **values: str) -> CodeTerms:
    parsed, errors = parse_campaign_fields(values, clock.now())
    assert parsed is not None, errors
    return parsed


DISCOUNT_ARGS = ["codes", "generate", "--campaign-name", "spring", "--type", "PERCENT_DISCOUNT",
                 "--discount-percent", "20"]


def test_generate_creates_the_campaign_and_reports_one_row_per_stored_code(run: Cli, container: Container,
                                                                          tmp_path: Path) -> None:
    use_chunks(container, 7)  # several chunks
    out = tmp_path / "report.csv"
    result = run(*DISCOUNT_ARGS, "--count", "50", "--prefix", "SPR-", "--length", "10", "--max-total-uses", "3",
                 "--campaign-max-total-uses", "120", "--per-user-limit", "2",
                 "--valid-until", "2026-12-31T23:59:59+01:00", "--applicable-products", "PREMIUM_7D,PREMIUM_30D",
                 "--target-scope", "first_purchase_only", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"inserted 50 codes into new campaign 1 'spring'; report: {out}\n"
    [campaign] = run.store.campaigns.values()
    assert (campaign.name, campaign.promo_type, campaign.discount_percent) == ("spring", PromoType.PERCENT_DISCOUNT, 20)
    assert (campaign.max_total_uses, campaign.per_user_limit) == (120, 2)
    assert campaign.applicable_products == ("PREMIUM_7D", "PREMIUM_30D")
    assert campaign.target_scope is TargetScope.FIRST_PURCHASE_ONLY
    assert campaign.valid_until == datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC)
    rows = read_report(out)
    assert len(rows) == 50 and len({r["code"] for r in rows}) == 50
    codes = run.store.codes
    assert sorted(int(r["promo_code_id"]) for r in rows) == sorted(codes)
    hasher = CodeHasher(PEPPER)
    for r in rows:
        code = r["code"]
        assert len(code) == 10 and code.startswith("SPR") and set(code[3:]) <= set(GENERATION_ALPHABET)
        assert r["normalized_code"] == code and r["code_prefix"] == code[:4]
        assert (r["campaign_id"], r["campaign_name"], r["max_total_uses"], r["per_user_limit"]) == ("1", "spring", "3",
                                                                                                     "2")
        assert r["valid_until"] == "2026-12-31T22:59:59Z" and r["applicable_products"] == "PREMIUM_7D,PREMIUM_30D"
        c = codes[int(r["promo_code_id"])]
        assert c.code_hash == hasher.hash(code) and c.code_prefix == code[:4] and c.campaign_id == 1
        assert c.max_total_uses == 3 and c.status is CampaignStatus.ACTIVE and c.campaign_name == "spring"
        assert code not in repr(c)  # the plaintext is nowhere in the stored row
    [entry] = run.audit()
    assert (entry.actor, entry.action, entry.target_id) == (ACTOR, "codes.generated", "1")
    assert entry.details["count"] == 50 and entry.details["campaign_created"] is True
    assert not any(r["code"] in repr(entry.details) for r in rows)


def test_generate_with_equal_terms_adds_codes_to_the_campaign_of_that_name(run: Cli, tmp_path: Path) -> None:
    first = run(*DISCOUNT_ARGS, "--count", "5", "--per-user-limit", "1", "--out", str(tmp_path / "a.csv"))
    assert first.exit_code == 0, first.stderr
    more = run(*DISCOUNT_ARGS, "--count", "7", "--max-total-uses", "1", "--out", str(tmp_path / "b.csv"))
    assert more.exit_code == 0, more.stderr
    assert more.stdout == f"inserted 7 codes into campaign 1 'spring'; report: {tmp_path / 'b.csv'}\n"
    assert len(run.store.campaigns) == 1 and len(run.store.codes) == 12
    assert {c.campaign_id for c in run.store.codes.values()} == {1}
    assert [e.details["campaign_created"] for e in run.audit()] == [True, False]


@pytest.mark.parametrize("flags, named", [
    (["--discount-percent", "25"], "--discount-percent"),
    (["--type", "STARS_DISCOUNT", "--discount-stars", "20"], "--type"),
    (["--target-scope", "FIRST_PURCHASE_ONLY"], "--target-scope"),
    (["--applicable-products", "PREMIUM_7D"], "--applicable-products"),
    (["--per-user-limit", "2"], "--per-user-limit"),
    (["--campaign-max-total-uses", "10"], "--campaign-max-total-uses"),
    (["--valid-until", "2027-01-01T00:00:00Z"], "--valid-until"),
])
def test_generate_into_a_campaign_with_other_terms_names_the_flag_and_inserts_nothing(
        run: Cli, tmp_path: Path, flags: list[str], named: str) -> None:
    assert run(*DISCOUNT_ARGS, "--count", "3", "--out", str(tmp_path / "a.csv")).exit_code == 0
    before = (dict(run.store.campaigns), dict(run.store.codes), len(run.audit()))
    args = [*DISCOUNT_ARGS, *flags] if "--type" not in flags else [
        "codes", "generate", "--campaign-name", "spring", *flags]
    out = tmp_path / "b.csv"
    result = run(*args, "--count", "4", "--out", str(out))
    assert result.exit_code != 0 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert all(" differs from campaign 1 ('spring'), which has " in line for line in lines)
    assert lines[0].startswith(f"error: {named}: ")
    assert (dict(run.store.campaigns), dict(run.store.codes), len(run.audit())) == before
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]


def test_generate_into_an_expired_campaign_is_refused(run: Cli, clock: ManualClock, tmp_path: Path) -> None:
    assert run(*DISCOUNT_ARGS, "--count", "1", "--valid-until", "2026-03-02T00:00:00Z",
               "--out", str(tmp_path / "a.csv")).exit_code == 0
    clock.advance(days=2)
    assert run("jobs", "run", "run_promo_campaign_status_rollover").exit_code == 0
    result = run(*DISCOUNT_ARGS, "--count", "1", "--out", str(tmp_path / "b.csv"))
    assert result.exit_code == 1
    assert result.stderr == "error: INVALID_TRANSITION: campaign 1 has expired; no codes can be added\n"
    assert len(run.store.codes) == 1 and not (tmp_path / "b.csv").exists()


def test_report_is_private_to_its_owner(run: Cli, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert run(*DISCOUNT_ARGS, "--count", "3", "--out", str(out)).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_every_generated_code_redeems_once_per_user(run: Cli, container: Container, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    result = run("codes", "generate", "--campaign-name", "gift", "--type", "premium_grant", "--grant-plan-code",
                 "PREMIUM", "--grant-days", "30", "--count", "30", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    service = container.redemption_service()
    for i, r in enumerate(read_report(out)):
        # the report's plaintext, typed the way a user might: lower case with a dash
        typed = r["code"][:4].lower() + "-" + r["code"][4:]
        outcome = service.redeem(1000 + i, typed, f"k{i}")
        assert outcome.result is RedeemResult.ACCEPTED
        assert outcome.code is not None and outcome.code.id == int(r["promo_code_id"])
        assert outcome.campaign is not None and outcome.campaign.id == 1


def test_collisions_with_stored_codes_are_retried_until_the_space_is_used(
    container: Container, clock: ManualClock
) -> None:
    # prefix AB + 2 random characters: 1024 possible codes; 1000 are taken already
    service = BatchService(container.uow_factory(), clock, container.hasher(), chunk_size=10)
    spec = terms(clock, campaign_name="tiny", promo_type="PERCENT_DISCOUNT", discount_percent="5")
    first = Sink()
    service.generate(spec, 1000, first, actor=ACTOR, length=4, prefix="AB")
    second = Sink()
    service.generate(spec, 24, second, actor=ACTOR, length=4, prefix="AB")
    codes = [r["code"] for r in first.rows + second.rows]
    assert len(codes) == len(set(codes)) == 1024
    with pytest.raises(ValidationError) as exc:
        service.generate(spec, 1, Sink(), actor=ACTOR, length=4, prefix="AB")
    assert exc.value.errors[0]["field"] == "length"
    assert len(container.memory_store().codes) == 1024


class Sink:
    def __init__(self, fail_after_chunks: int | None = None) -> None:
        self.rows: list[dict[str, str]] = []
        self.chunks = 0
        self.closed = False
        self.fail_after = fail_after_chunks

    def write(self, rows: Any) -> None:
        self.chunks += 1
        if self.fail_after is not None and self.chunks > self.fail_after:
            raise OSError("disk full")
        self.rows.extend(rows)

    def write_generated(self, shared: Any, rows: Any) -> None:
        self.write(expand_generated(shared, rows))

    def close(self) -> None:
        self.closed = True


def test_a_failure_in_a_later_chunk_inserts_nothing_not_even_the_campaign(container: Container,
                                                                          clock: ManualClock) -> None:
    service = BatchService(container.uow_factory(), clock, container.hasher(), chunk_size=10)
    sink = Sink(fail_after_chunks=2)
    spec = terms(clock, campaign_name="x", promo_type="PERCENT_DISCOUNT", discount_percent="5")
    with pytest.raises(OSError, match="disk full"):
        service.generate(spec, 35, sink, actor=ACTOR)
    assert sink.chunks == 3 and not sink.closed
    store = container.memory_store()
    assert store.codes == {} and store.campaigns == {} and store.audit == []


def test_bad_flags_are_all_named_on_stderr_and_nothing_is_written(run: Cli, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    result = run("codes", "generate", "--campaign-name", "x", "--type", "PERCENT_DISCOUNT", "--count", "0",
                 "--length", "40", "--discount-percent", "150", "--valid-from", "yesterday",
                 "--max-total-uses", "many", "--campaign-max-total-uses", "0", "--per-user-limit", "1001",
                 "--out", str(out))
    assert (result.exit_code, result.stdout) == (2, "")
    for flag in ("--count", "--length", "--discount-percent", "--valid-from", "--max-total-uses",
                 "--campaign-max-total-uses", "--per-user-limit"):
        assert f"error: {flag}:" in result.stderr, flag
    result = run("codes", "generate", "--campaign-name", "x", "--type", "PERCENT_DISCOUNT", "--count", "5",
                 "--discount-percent", "150", "--grant-days", "3", "--out", str(out))
    assert result.exit_code == 2
    assert "error: --discount-percent: required for PERCENT_DISCOUNT, 1..99" in result.stderr
    assert "error: --grant-days: only for PREMIUM_GRANT" in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert run.store.codes == {} and run.store.campaigns == {}


def test_a_prefix_as_long_as_the_code_is_refused(run: Cli, tmp_path: Path) -> None:
    result = run(*DISCOUNT_ARGS, "--count", "1", "--prefix", "ABCD", "--length", "4", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "error: --prefix:" in result.stderr
    result = run(*DISCOUNT_ARGS, "--count", "1", "--prefix", "AB_!", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "error: --prefix: must consist of A-Z and 0-9" in result.stderr


def test_more_codes_than_the_space_holds_is_refused_up_front(run: Cli, tmp_path: Path) -> None:
    result = run(*DISCOUNT_ARGS, "--count", "33", "--prefix", "ABC", "--length", "4", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert "error: --count: only 32 codes of length 4" in result.stderr


def test_an_existing_report_is_never_overwritten_silently(run: Cli, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    out.write_text("codes of an earlier run\n")
    result = run(*DISCOUNT_ARGS, "--count", "2", "--out", str(out))
    assert result.exit_code == 2 and "--out" in result.stderr and "--overwrite" in result.stderr
    assert out.read_text() == "codes of an earlier run\n" and run.store.codes == {}
    assert run(*DISCOUNT_ARGS, "--count", "2", "--out", str(out), "--overwrite").exit_code == 0
    assert len(read_report(out)) == 2


def test_missing_pepper_is_a_configuration_error_naming_the_variable(tmp_path: Path) -> None:
    result = CliRunner(env={"PROMO_SECRET_PEPPER": None, "DATABASE_URL": "memory://"}).invoke(
        cli, [*DISCOUNT_ARGS, "--count", "2", "--out", str(tmp_path / "r.csv")])
    assert result.exit_code == 2
    assert "PROMO_SECRET_PEPPER" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_no_progress_output_when_not_on_a_terminal(run: Cli, tmp_path: Path) -> None:
    result = run(*DISCOUNT_ARGS, "--count", "20", "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 0 and result.stderr == ""


def test_help_describes_every_flag_named_after_its_column() -> None:
    result = CliRunner().invoke(cli, ["codes", "generate", "--help"])
    assert result.exit_code == 0
    for flag in ("--campaign-name", "--count", "--prefix", "--length", "--type", "--discount-percent",
                 "--discount-stars", "--grant-plan-code", "--grant-days", "--target-scope", "--valid-from",
                 "--valid-until", "--max-total-uses", "--campaign-max-total-uses", "--per-user-limit",
                 "--applicable-products", "--out"):
        assert flag in result.stdout, flag


def test_unknown_products_of_the_catalog_are_refused(run: Cli, tmp_path: Path) -> None:
    result = run(*DISCOUNT_ARGS, "--count", "5", "--applicable-products", "PREMIUM_7D,GOLD_1Y",
                 "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 2
    assert result.stderr == "error: --applicable-products: unknown product(s): GOLD_1Y\n"
    assert list(tmp_path.iterdir()) == [] and run.store.codes == {}


def test_report_file_writes_generated_rows_exactly_as_the_csv_module_would(tmp_path: Path) -> None:
    shared = {c: "" for c in REPORT_COLUMNS} | {
        "campaign_name": 'Spring, "big" sale\nline two', "promo_type": "PERCENT_DISCOUNT", "discount_percent": "20",
        "applicable_products": "PREMIUM_30D,PREMIUM_90D", "valid_from": "2026-03-01T00:00:00Z", "grant_days": " ",
    }
    rows = [("1", "ABCD2345", "ABCD2345", "ABCD"), ("22", "X-Y,Z", "X-Y,Z", 'X"Y'), ("333", "", "", "")]
    fast, slow = tmp_path / "fast.csv", tmp_path / "slow.csv"
    for path, write in ((fast, "generated"), (slow, "dicts")):
        report = ReportFile(path, REPORT_COLUMNS)
        if write == "generated":
            report.write_generated(shared, rows)
        else:
            report.write(expand_generated(shared, rows))
        report.publish()
        assert report.rows == 3
    assert fast.read_bytes() == slow.read_bytes()
    with fast.open(newline="") as f:
        parsed = list(csv.DictReader(f))
    assert [r["campaign_name"] for r in parsed] == [shared["campaign_name"]] * 3
    assert [(r["promo_code_id"], r["code"], r["code_prefix"]) for r in parsed] == [
        ("1", "ABCD2345", "ABCD"), ("22", "X-Y,Z", 'X"Y'), ("333", "", "")]


def test_a_report_write_that_fails_in_the_background_fails_close_and_leaves_no_file(tmp_path: Path) -> None:
    class FullDisk:
        closed = False

        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            self.closed = True

    path = tmp_path / "report.csv"
    report = ReportFile(path, REPORT_COLUMNS)
    report._file = FullDisk()  # type: ignore[assignment]
    report.write_generated({c: "x" for c in REPORT_COLUMNS}, [("1", "ABCD2345", "ABCD2345", "ABCD")])
    with pytest.raises(OSError, match="No space left"):
        report.close()
    report.discard()
    assert list(tmp_path.iterdir()) == []
