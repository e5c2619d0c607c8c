"""SPEC 10 `starpromo codes generate`: secure unique codes, all-or-nothing, report with ids."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from dependency_injector import providers

from adapters.memory import ManualClock
from domain.batch import REPORT_COLUMNS, BatchService, expand_generated
from domain.campaigns import CampaignSpec
from domain.codes import GENERATION_ALPHABET, CodeHasher
from domain.errors import ValidationError
from domain.model import CampaignStatus, PromoType, RedeemResult, TargetScope
from entrypoints.cli._ops import ReportFile
from entrypoints.cli.main import cli
from entrypoints.container import Container
from tests.conftest import PEPPER
from tests.unit.cli.conftest import Cli


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == REPORT_COLUMNS
        return list(reader)


def stored(container: Container) -> dict[int, object]:
    store = container.uow_factory().store
    return dict(store.campaigns)


def use_chunks(container: Container, size: int) -> None:
    container.batch_service.override(providers.Factory(
        BatchService, container.uow_factory, container.clock, container.hasher, chunk_size=size))


DISCOUNT_ARGS = ["codes", "generate", "--campaign-name", "spring", "--type", "PERCENT_DISCOUNT",
                 "--discount-percent", "20"]


def test_generate_writes_one_report_row_per_stored_code_with_its_id(run: Cli, container: Container,
                                                                     tmp_path: Path) -> None:
    use_chunks(container, 7)  # several chunks
    out = tmp_path / "report.csv"
    result = run(*DISCOUNT_ARGS, "--count", "50", "--prefix", "SPR-", "--length", "10", "--max-total-uses", "3",
                 "--valid-until", "2026-12-31T23:59:59+01:00", "--applicable-products", "PREMIUM_7D,PREMIUM_30D",
                 "--target-scope", "first_purchase_only", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert "inserted 50 codes" in result.stdout
    rows = read_report(out)
    assert len(rows) == 50
    assert len({r["code"] for r in rows}) == 50
    campaigns = stored(container)
    assert sorted(int(r["promo_code_id"]) for r in rows) == sorted(campaigns)
    hasher = CodeHasher(PEPPER)
    for r in rows:
        code = r["code"]
        assert len(code) == 10 and code.startswith("SPR") and set(code[3:]) <= set(GENERATION_ALPHABET)
        assert r["normalized_code"] == code and r["code_prefix"] == code[:4]
        c = campaigns[int(r["promo_code_id"])]
        assert c.code_hash == hasher.hash(code) and c.code_prefix == code[:4]
        assert c.campaign_name == "spring" and c.promo_type is PromoType.PERCENT_DISCOUNT
        assert c.discount_percent == 20 and c.max_total_uses == 3 and c.status is CampaignStatus.ACTIVE
        assert c.applicable_products == ("PREMIUM_7D", "PREMIUM_30D")
        assert c.target_scope is TargetScope.FIRST_PURCHASE_ONLY
        assert r["valid_until"] == "2026-12-31T22:59:59Z"
        assert r["applicable_products"] == "PREMIUM_7D,PREMIUM_30D" and r["max_total_uses"] == "3"
        assert code not in repr(c)  # the plaintext is nowhere in the stored row


def test_report_is_private_to_its_owner(run: Cli, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert run(*DISCOUNT_ARGS, "--count", "3", "--out", str(out)).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_every_generated_code_redeems(run: Cli, container: Container, tmp_path: Path) -> None:
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
        assert outcome.campaign is not None and outcome.campaign.id == int(r["promo_code_id"])


def test_collisions_with_stored_codes_are_retried_until_the_space_is_used(
    container: Container, clock: ManualClock
) -> None:
    # prefix AB + 2 random characters: 1024 possible codes; 1000 are taken already
    service = BatchService(container.uow_factory(), clock, container.hasher(), chunk_size=10)
    spec = CampaignSpec("tiny", PromoType.PERCENT_DISCOUNT, discount_percent=5)
    first = Sink()
    service.generate(spec, 1000, first, length=4, prefix="AB")
    second = Sink()
    service.generate(spec, 24, second, length=4, prefix="AB")
    codes = [r["code"] for r in first.rows + second.rows]
    assert len(codes) == len(set(codes)) == 1024
    with pytest.raises(ValidationError) as exc:
        service.generate(spec, 1, Sink(), length=4, prefix="AB")
    assert exc.value.errors[0]["field"] == "length"
    assert len(container.uow_factory().store.campaigns) == 1024


class Sink:
    def __init__(self, fail_after_chunks: int | None = None) -> None:
        self.rows: list[dict[str, str]] = []
        self.chunks = 0
        self.closed = False
        self.fail_after = fail_after_chunks

    def write(self, rows):  # type: ignore[no-untyped-def]
        self.chunks += 1
        if self.fail_after is not None and self.chunks > self.fail_after:
            raise OSError("disk full")
        self.rows.extend(rows)

    def write_generated(self, shared, rows):  # type: ignore[no-untyped-def]
        self.write(expand_generated(shared, rows))

    def close(self) -> None:
        self.closed = True


def test_a_failure_in_a_later_chunk_inserts_nothing(container: Container, clock: ManualClock) -> None:
    service = BatchService(container.uow_factory(), clock, container.hasher(), chunk_size=10)
    sink = Sink(fail_after_chunks=2)
    with pytest.raises(OSError, match="disk full"):
        service.generate(CampaignSpec("x", PromoType.PERCENT_DISCOUNT, discount_percent=5), 35, sink)
    assert sink.chunks == 3 and not sink.closed
    assert container.uow_factory().store.campaigns == {}


def test_bad_flags_are_all_named_on_stderr_and_nothing_is_written(run: Cli, container: Container,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    result = run("codes", "generate", "--campaign-name", "x", "--type", "PERCENT_DISCOUNT", "--count", "0",
                 "--length", "40", "--discount-percent", "150", "--valid-from", "yesterday",
                 "--max-total-uses", "many", "--out", str(out))
    assert result.exit_code == 2
    assert result.stdout == ""
    for flag in ("--count", "--length", "--valid-from", "--max-total-uses"):
        assert f"error: {flag}:" in result.stderr
    result = run("codes", "generate", "--campaign-name", "x", "--type", "PERCENT_DISCOUNT", "--count", "5",
                 "--discount-percent", "150", "--grant-days", "3", "--out", str(out))
    assert result.exit_code == 2
    assert "error: --discount-percent: required for PERCENT_DISCOUNT, 1..99" in result.stderr
    assert "error: --grant-days: only for PREMIUM_GRANT" in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert stored(container) == {}


def test_a_prefix_as_long_as_the_code_is_refused(run: Cli, tmp_path: Path) -> None:
    result = run(*DISCOUNT_ARGS, "--count", "1", "--prefix", "ABCD", "--length", "4", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "error: --prefix:" in result.stderr
    result = run(*DISCOUNT_ARGS, "--count", "1", "--prefix", "AB_!", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "error: --prefix: must consist of A-Z and 0-9" in result.stderr


def test_more_codes_than_the_space_holds_is_refused_up_front(run: Cli, tmp_path: Path) -> None:
    result = run(*DISCOUNT_ARGS, "--count", "33", "--prefix", "ABC", "--length", "4", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert "error: --count: only 32 codes of length 4" in result.stderr


def test_an_existing_report_is_never_overwritten_silently(run: Cli, container: Container, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    out.write_text("codes of an earlier run\n")
    result = run(*DISCOUNT_ARGS, "--count", "2", "--out", str(out))
    assert result.exit_code == 2 and "--out" in result.stderr and "--overwrite" in result.stderr
    assert out.read_text() == "codes of an earlier run\n" and stored(container) == {}
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


def test_help_describes_every_campaign_flag() -> None:
    result = CliRunner().invoke(cli, ["codes", "generate", "--help"])
    assert result.exit_code == 0
    for flag in ("--campaign-name", "--count", "--prefix", "--length", "--type", "--discount-percent",
                 "--grant-plan-code", "--grant-days", "--target-scope", "--valid-from", "--valid-until",
                 "--max-total-uses", "--applicable-products", "--out"):
        assert flag in result.stdout


def test_unknown_products_of_the_catalog_are_refused(run: Cli, container: Container, tmp_path: Path) -> None:
    result = run(*DISCOUNT_ARGS, "--count", "5", "--applicable-products", "PREMIUM_7D,GOLD_1Y",
                 "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 2
    assert result.stderr == "error: --applicable-products: unknown product(s): GOLD_1Y\n"
    assert list(tmp_path.iterdir()) == [] and stored(container) == {}


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
