"""SPEC 10 `starpromo codes import`: the whole file is validated first; any problem inserts nothing."""

from __future__ import annotations

import csv
from pathlib import Path

from dependency_injector import providers

from domain.batch import REPORT_COLUMNS, BatchService
from domain.campaigns import CampaignSpec
from domain.codes import CodeHasher
from domain.model import PromoType, RedeemResult, TargetScope
from entrypoints.container import Container
from tests.conftest import PEPPER
from tests.unit.cli.conftest import Cli

HEADER = ("code,campaign_name,promo_type,discount_percent,grant_plan_code,grant_days,target_scope,"
          "valid_from,valid_until,max_total_uses,applicable_products")
GOOD = [
    "SPRING-0001,spring,PERCENT_DISCOUNT,20,,,ALL,,2026-12-31T23:59:59Z,100,\"PREMIUM_7D,PREMIUM_30D\"",
    "spring 0002,spring,percent_discount,15,,,FIRST_PURCHASE_ONLY,2026-03-01T00:00:00+02:00,,,",
    "GIFT30DAYS,gift,PREMIUM_GRANT,,PREMIUM,30,,,,1,",
]


def write(tmp_path: Path, *lines: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored(container: Container) -> dict[int, object]:
    return dict(container.uow_factory().store.campaigns)


def test_a_clean_file_inserts_every_row_and_reports_their_ids(run: Cli, container: Container,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    result = run("codes", "import", "--csv", str(write(tmp_path, HEADER, *GOOD)), "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert "inserted 3 codes" in result.stdout
    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == REPORT_COLUMNS
        rows = list(reader)
    campaigns = stored(container)
    assert [r["code"] for r in rows] == ["SPRING-0001", "spring 0002", "GIFT30DAYS"]
    assert [r["normalized_code"] for r in rows] == ["SPRING0001", "SPRING0002", "GIFT30DAYS"]
    assert sorted(int(r["promo_code_id"]) for r in rows) == sorted(campaigns)
    hasher = CodeHasher(PEPPER)
    first, second, grant = (campaigns[int(r["promo_code_id"])] for r in rows)
    assert first.code_hash == hasher.hash("SPRING0001") and first.code_prefix == "SPRI"
    assert first.discount_percent == 20 and first.max_total_uses == 100
    assert first.applicable_products == ("PREMIUM_7D", "PREMIUM_30D")
    assert first.valid_until is not None and first.valid_until.isoformat() == "2026-12-31T23:59:59+00:00"
    assert second.target_scope is TargetScope.FIRST_PURCHASE_ONLY
    assert second.valid_from.isoformat() == "2026-02-28T22:00:00+00:00"
    assert grant.promo_type is PromoType.PREMIUM_GRANT and grant.grant_days == 30 and grant.grant_plan_code == "PREMIUM"
    assert rows[2]["grant_days"] == "30" and rows[2]["max_total_uses"] == "1"
    outcome = container.redemption_service().redeem(7, "gift-30-days", "k1")
    assert outcome.result is RedeemResult.ACCEPTED


def test_one_bad_row_among_good_ones_inserts_nothing_and_names_line_and_field(
    run: Cli, container: Container, tmp_path: Path
) -> None:
    bad = "BADROW01,spring,PERCENT_DISCOUNT,120,,,ALL,,,,"
    path = write(tmp_path, HEADER, GOOD[0], GOOD[1], bad, GOOD[2])
    out = tmp_path / "report.csv"
    result = run("codes", "import", "--csv", str(path), "--out", str(out))
    assert result.exit_code == 1
    assert f"{path}:line 4: discount_percent: required for PERCENT_DISCOUNT, 1..99" in result.stderr
    assert "import rejected: 1 problem(s); nothing was inserted" in result.stderr
    assert result.stdout == ""
    assert stored(container) == {}
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_every_bad_row_is_reported_with_its_line_and_field(run: Cli, container: Container, tmp_path: Path) -> None:
    path = write(
        tmp_path, HEADER,
        "AB,spring,PERCENT_DISCOUNT,20,,,,,,,",                      # 2: code too short
        "GOODCODE1,,PERCENT_DISCOUNT,20,,,,,,,",                     # 3: name missing
        "GOODCODE2,spring,VOUCHER,,,,,,,,",                          # 4: unknown type
        "GOODCODE3,gift,PREMIUM_GRANT,,,30,,,,0,",                   # 5: plan missing, max_total_uses 0
        "GOODCODE4,spring,PERCENT_DISCOUNT,20,,,EVERYONE,2026-01-01,,,",  # 6: scope, valid_from w/o timezone
        "\"multi\nline!\",spring,PERCENT_DISCOUNT,20,,,,,,,",         # 7-8: code with a newline
        "GOODCODE5,spring,PERCENT_DISCOUNT,20",                      # 9: too few fields
        "GOODCODE6,spring,PERCENT_DISCOUNT,20,,,,2026-06-01T00:00:00Z,2026-05-01T00:00:00Z,,",  # 10: until<from
    )
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1
    lines = [line.removeprefix(f"{path}:") for line in result.stderr.splitlines()]
    for expected in (
        "line 2: code: must normalize to 4..32 characters A-Z 0-9",
        "line 3: campaign_name: required",
        "line 4: promo_type: must be PREMIUM_GRANT or PERCENT_DISCOUNT, got 'VOUCHER'",
        "line 5: grant_plan_code: required for PREMIUM_GRANT, 1..64 characters",
        "line 5: max_total_uses: must be >= 1 or null",
        "line 6: target_scope: must be ALL or FIRST_PURCHASE_ONLY, got 'EVERYONE'",
        "line 6: valid_from: must carry a timezone, e.g. 2026-12-31T23:59:59Z",
        "line 7: code: must normalize to 4..32 characters A-Z 0-9",
        "line 9: row: expected 11 fields, got 4",
        "line 10: valid_until: must be after valid_from",
    ):
        assert expected in lines
    assert "import rejected: 10 problem(s); nothing was inserted" in result.stderr
    assert stored(container) == {}


def test_duplicates_inside_the_file_are_found_after_normalization(run: Cli, container: Container,
                                                                  tmp_path: Path) -> None:
    path = write(tmp_path, "code,campaign_name,promo_type,discount_percent",
                 "ABCD-1234,a,PERCENT_DISCOUNT,10", "OTHER123,a,PERCENT_DISCOUNT,10", "abcd 1234,a,PERCENT_DISCOUNT,10")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1
    assert "line 4: code: duplicate of line 2 (same normalized code)" in result.stderr
    assert stored(container) == {}


def test_codes_already_stored_are_refused_also_under_a_previous_pepper(
    container: Container, tmp_path: Path
) -> None:
    old = CodeHasher("old-pepper")
    container.campaign_service.override(providers.Factory(
        type(container.campaign_service()), container.uow_factory, container.clock, providers.Object(old)))
    container.campaign_service().create(CampaignSpec("old", PromoType.PERCENT_DISCOUNT, discount_percent=5),
                                        "LEGACY-CODE")
    container.hasher.override(providers.Object(CodeHasher(PEPPER, ("old-pepper",))))
    container.campaign_service().create(CampaignSpec("old", PromoType.PERCENT_DISCOUNT, discount_percent=5),
                                        "CURRENT-CODE")
    run = Cli(container)
    path = write(tmp_path, "code,campaign_name,promo_type,discount_percent",
                 "NEWCODE1,a,PERCENT_DISCOUNT,10", "legacy code,a,PERCENT_DISCOUNT,10",
                 "CURRENTCODE,a,PERCENT_DISCOUNT,10")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1
    assert "line 3: code: already stored" in result.stderr
    assert "line 4: code: already stored" in result.stderr
    assert "import rejected: 2 problem(s)" in result.stderr
    assert len(stored(container)) == 2


def test_the_printed_list_is_capped_but_the_total_is_given(run: Cli, container: Container, tmp_path: Path) -> None:
    rows = [f"C{i:05d},spring,PERCENT_DISCOUNT,0" for i in range(120)]
    path = write(tmp_path, "code,campaign_name,promo_type,discount_percent", *rows)
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"), "--max-errors", "5")
    assert result.exit_code == 1
    problem_lines = [line for line in result.stderr.splitlines() if ":line " in line]
    assert len(problem_lines) == 5 and problem_lines[0].endswith("line 2: discount_percent: required for "
                                                                  "PERCENT_DISCOUNT, 1..99")
    assert "import rejected: 120 problem(s) (first 5 shown); nothing was inserted" in result.stderr


def test_header_problems_name_the_columns(run: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, "code,campaign,promo_type,discount_pct", "ABCD1234,a,PERCENT_DISCOUNT,10")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1
    assert "line 1: header: unknown column(s): campaign, discount_pct; missing column(s): campaign_name" \
        in result.stderr
    empty = write(tmp_path, "", name="empty.csv")
    result = run("codes", "import", "--csv", str(empty), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1 and "line 1: header: the file is empty" in result.stderr
    only_header = write(tmp_path, HEADER, name="header.csv")
    result = run("codes", "import", "--csv", str(only_header), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1 and "line 1: file: no data rows after the header" in result.stderr


def test_a_file_that_is_not_utf8_is_refused_with_its_line(run: Cli, container: Container, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"code,campaign_name,promo_type,discount_percent\nABCD1234,caf\xe9,PERCENT_DISCOUNT,10\n")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1
    assert "not valid UTF-8" in result.stderr
    assert stored(container) == {}


def test_a_byte_order_mark_and_crlf_line_ends_are_accepted(run: Cli, container: Container, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfcode,campaign_name,promo_type,discount_percent\r\nABCD1234,a,PERCENT_DISCOUNT,10\r\n")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 0, result.stderr
    assert len(stored(container)) == 1


def test_large_imports_are_inserted_in_chunks_in_one_transaction(run: Cli, container: Container,
                                                                 tmp_path: Path) -> None:
    container.batch_service.override(providers.Factory(
        BatchService, container.uow_factory, container.clock, container.hasher, chunk_size=16))
    rows = [f"BULK{i:06d},bulk,PERCENT_DISCOUNT,10" for i in range(100)]
    path = write(tmp_path, "code,campaign_name,promo_type,discount_percent", *rows)
    out = tmp_path / "r.csv"
    result = run("codes", "import", "--csv", str(path), "--out", str(out))
    assert result.exit_code == 0, result.stderr
    with out.open(newline="") as f:
        ids = [int(r["promo_code_id"]) for r in csv.DictReader(f)]
    assert len(ids) == 100 and sorted(ids) == sorted(stored(container))


def test_unknown_products_name_their_line(run: Cli, container: Container, tmp_path: Path) -> None:
    path = write(tmp_path, "code,campaign_name,promo_type,discount_percent,applicable_products",
                 "ABCD1234,a,PERCENT_DISCOUNT,10,PREMIUM_30D", "ABCD1235,a,PERCENT_DISCOUNT,10,PREMUIM_30D")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1
    assert "line 3: applicable_products: unknown product(s): PREMUIM_30D" in result.stderr
    assert stored(container) == {}
