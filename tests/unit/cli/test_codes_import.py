"""SPEC 10 `starpromo codes import`: rows grouped into campaigns by campaign_name; the whole file is validated first;
any problem inserts nothing."""

from __future__ import annotations

import csv
from pathlib import Path

from dependency_injector import providers

from domain.batch import BatchService
from domain.campaigns import CampaignService, CampaignSpec
from domain.code_files import REPORT_COLUMNS
from domain.codes import CodeHasher
from domain.model import PromoType, RedeemResult, TargetScope
from entrypoints.container import Container
from tests.conftest import PEPPER
from tests.unit.cli.conftest import ACTOR, Cli

HEADER = ("code,campaign_name,promo_type,discount_percent,discount_stars,grant_plan_code,grant_days,target_scope,"
          "valid_from,valid_until,max_total_uses,applicable_products,per_user_limit")
GOOD = [
    "SPRING-0001,spring,PERCENT_DISCOUNT,20,,,,ALL,,2026-12-31T23:59:59Z,100,\"PREMIUM_7D,PREMIUM_30D\",2",
    "spring 0002,spring,percent_discount,20,,,,,,2026-12-31T23:59:59Z,,\"PREMIUM_7D PREMIUM_30D\",2",
    "GIFT30DAYS,gift,PREMIUM_GRANT,,,PREMIUM,30,FIRST_PURCHASE_ONLY,2026-03-01T00:00:00+02:00,,1,,",
    "STARS-0001,stars,STARS_DISCOUNT,,40,,,,,,,,",
]
# A file made for an earlier version: no discount_stars, no per_user_limit.
OLD_HEADER = ("code,campaign_name,promo_type,discount_percent,grant_plan_code,grant_days,target_scope,"
              "valid_from,valid_until,max_total_uses,applicable_products")


def write(tmp_path: Path, *lines: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_clean_file_fills_one_campaign_per_name_and_reports_every_id(run: Cli, container: Container,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    result = run("codes", "import", "--csv", str(write(tmp_path, HEADER, *GOOD)), "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert "inserted 4 codes" in result.stdout
    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == REPORT_COLUMNS
        rows = list(reader)
    store = run.store
    assert [r["code"] for r in rows] == ["SPRING-0001", "spring 0002", "GIFT30DAYS", "STARS-0001"]
    assert [r["normalized_code"] for r in rows] == ["SPRING0001", "SPRING0002", "GIFT30DAYS", "STARS0001"]
    assert sorted(int(r["promo_code_id"]) for r in rows) == sorted(store.codes)
    campaigns = {c.name: c for c in store.campaigns.values()}
    assert sorted(campaigns) == ["gift", "spring", "stars"]
    spring, gift, stars = campaigns["spring"], campaigns["gift"], campaigns["stars"]
    assert (spring.discount_percent, spring.per_user_limit, spring.max_total_uses) == (20, 2, None)
    assert spring.applicable_products == ("PREMIUM_7D", "PREMIUM_30D")
    assert spring.valid_until is not None and spring.valid_until.isoformat() == "2026-12-31T23:59:59+00:00"
    assert gift.promo_type is PromoType.PREMIUM_GRANT and (gift.grant_plan_code, gift.grant_days) == ("PREMIUM", 30)
    assert gift.target_scope is TargetScope.FIRST_PURCHASE_ONLY
    assert gift.valid_from.isoformat() == "2026-02-28T22:00:00+00:00"
    assert stars.promo_type is PromoType.STARS_DISCOUNT and stars.discount_stars == 40
    first, second, grant, _ = (store.codes[int(r["promo_code_id"])] for r in rows)
    hasher = CodeHasher(PEPPER)
    assert first.code_hash == hasher.hash("SPRING0001") and first.code_prefix == "SPRI"
    assert (first.campaign_id, first.max_total_uses) == (spring.id, 100)
    assert (second.campaign_id, second.max_total_uses) == (spring.id, None)
    assert (grant.campaign_id, grant.max_total_uses) == (gift.id, 1)
    assert [r["campaign_id"] for r in rows] == [str(spring.id), str(spring.id), str(gift.id), str(stars.id)]
    assert rows[2]["grant_days"] == "30" and rows[2]["max_total_uses"] == "1" and rows[0]["per_user_limit"] == "2"
    assert container.redemption_service().redeem(7, "gift-30-days", "k1").result is RedeemResult.ACCEPTED
    audit = run.audit()
    assert sorted((e.actor, e.action, e.details["campaign_name"], e.details["count"]) for e in audit) == [
        (ACTOR, "codes.imported", "gift", 1), (ACTOR, "codes.imported", "spring", 2),
        (ACTOR, "codes.imported", "stars", 1)]


def test_a_file_of_an_earlier_version_still_imports(run: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, OLD_HEADER, "OLDCODE-1,old,PERCENT_DISCOUNT,10,,,,,,5,")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 0, result.stderr
    [campaign] = run.store.campaigns.values()
    assert (campaign.name, campaign.per_user_limit, campaign.max_total_uses) == ("old", 1, None)


def test_rows_into_an_existing_campaign_must_carry_its_terms(run: Cli, container: Container, tmp_path: Path) -> None:
    container.campaign_service().create(CampaignSpec("spring", PromoType.PERCENT_DISCOUNT, discount_percent=20),
                                        actor="test:seed")
    path = write(tmp_path, "code,campaign_name,promo_type,discount_percent,per_user_limit",
                 "ADDED-0001,spring,PERCENT_DISCOUNT,20,", "ADDED-0002,spring,PERCENT_DISCOUNT,25,",
                 "ADDED-0003,spring,PERCENT_DISCOUNT,20,3")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1
    assert f"{path}:line 3: discount_percent: differs from campaign 1 ('spring'), which has 20" in result.stderr
    assert f"{path}:line 4: per_user_limit: differs from campaign 1 ('spring'), which has 1" in result.stderr
    assert run.store.codes == {}
    fixed = write(tmp_path, "code,campaign_name,promo_type,discount_percent", "ADDED-0001,spring,PERCENT_DISCOUNT,20",
                  name="fixed.csv")
    result = run("codes", "import", "--csv", str(fixed), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 0, result.stderr
    assert len(run.store.campaigns) == 1 and [c.campaign_id for c in run.store.codes.values()] == [1]


def test_rows_of_one_new_campaign_that_disagree_are_refused(run: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, "code,campaign_name,promo_type,discount_percent,target_scope",
                 "NEWCODE-1,new,PERCENT_DISCOUNT,20,ALL", "NEWCODE-2,new,PERCENT_DISCOUNT,20,FIRST_PURCHASE_ONLY")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1
    assert f"{path}:line 3: target_scope: differs from line 2 of the same campaign_name" in result.stderr
    assert run.store.campaigns == {} and run.store.codes == {}


def test_one_bad_row_among_good_ones_inserts_nothing_and_names_line_and_field(run: Cli, tmp_path: Path) -> None:
    bad = "BADROW01,other,PERCENT_DISCOUNT,120,,,,ALL,,,,,"
    path = write(tmp_path, HEADER, GOOD[0], GOOD[1], bad, GOOD[2])
    out = tmp_path / "report.csv"
    result = run("codes", "import", "--csv", str(path), "--out", str(out))
    assert result.exit_code == 1
    assert f"{path}:line 4: discount_percent: required for PERCENT_DISCOUNT, 1..99" in result.stderr
    assert "import rejected: 1 problem(s); nothing was inserted" in result.stderr
    assert result.stdout == ""
    assert run.store.codes == {} and run.store.campaigns == {} and run.audit() == []
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_every_bad_row_is_reported_with_its_line_and_field(run: Cli, tmp_path: Path) -> None:
    path = write(
        tmp_path, OLD_HEADER,
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
        "line 4: promo_type: must be PREMIUM_GRANT or PERCENT_DISCOUNT or STARS_DISCOUNT, got 'VOUCHER'",
        "line 5: grant_plan_code: required for PREMIUM_GRANT, 1..64 characters",
        "line 5: max_total_uses: must be 1..2147483647 or null (unlimited)",
        "line 6: target_scope: must be ALL or FIRST_PURCHASE_ONLY, got 'EVERYONE'",
        "line 6: valid_from: must carry a timezone, e.g. 2026-12-31T23:59:59Z",
        "line 7: code: must normalize to 4..32 characters A-Z 0-9",
        "line 9: row: expected 11 fields, got 4",
        "line 10: valid_until: must be after valid_from",
    ):
        assert expected in lines
    assert "import rejected: 10 problem(s); nothing was inserted" in result.stderr
    assert run.store.codes == {}


def test_duplicates_inside_the_file_are_found_after_normalization(run: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, "code,campaign_name,promo_type,discount_percent",
                 "ABCD-1234,a,PERCENT_DISCOUNT,10", "OTHER123,a,PERCENT_DISCOUNT,10", "abcd 1234,a,PERCENT_DISCOUNT,10")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1
    assert "line 4: code: duplicate of line 2 (same normalized code)" in result.stderr
    assert run.store.codes == {}


def test_codes_already_stored_are_refused_also_under_a_previous_pepper(container: Container, tmp_path: Path) -> None:
    container.campaign_service.override(providers.Factory(
        CampaignService, container.uow_factory, container.clock, providers.Object(CodeHasher("old-pepper"))))
    container.campaign_service().create(CampaignSpec("old", PromoType.PERCENT_DISCOUNT, discount_percent=5),
                                        actor="test:seed", code="LEGACY-CODE")
    container.campaign_service.reset_override()
    container.hasher.override(providers.Object(CodeHasher(PEPPER, ("old-pepper",))))
    container.campaign_service().create(CampaignSpec("current", PromoType.PERCENT_DISCOUNT, discount_percent=5),
                                        actor="test:seed", code="CURRENT-CODE")
    run = Cli(container)
    path = write(tmp_path, "code,campaign_name,promo_type,discount_percent",
                 "NEWCODE1,a,PERCENT_DISCOUNT,10", "legacy code,a,PERCENT_DISCOUNT,10",
                 "CURRENTCODE,a,PERCENT_DISCOUNT,10")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1
    assert "line 3: code: already stored" in result.stderr
    assert "line 4: code: already stored" in result.stderr
    assert "import rejected: 2 problem(s)" in result.stderr
    assert len(run.store.codes) == 2


def test_the_printed_list_is_capped_but_the_total_is_given(run: Cli, tmp_path: Path) -> None:
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


def test_a_file_that_is_not_utf8_is_refused_with_its_line(run: Cli, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"code,campaign_name,promo_type,discount_percent\nABCD1234,caf\xe9,PERCENT_DISCOUNT,10\n")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1
    assert "not valid UTF-8" in result.stderr
    assert run.store.codes == {}


def test_a_byte_order_mark_and_crlf_line_ends_are_accepted(run: Cli, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfcode,campaign_name,promo_type,discount_percent\r\nABCD1234,a,PERCENT_DISCOUNT,10\r\n")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 0, result.stderr
    assert len(run.store.codes) == 1


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
    assert len(ids) == 100 and sorted(ids) == sorted(run.store.codes)
    assert len(run.store.campaigns) == 1 and len(run.audit()) == 1


def test_unknown_products_name_their_line(run: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, "code,campaign_name,promo_type,discount_percent,applicable_products",
                 "ABCD1234,a,PERCENT_DISCOUNT,10,PREMIUM_30D", "ABCD1235,b,PERCENT_DISCOUNT,10,PREMUIM_30D")
    result = run("codes", "import", "--csv", str(path), "--out", str(tmp_path / "r.csv"))
    assert result.exit_code == 1
    assert "line 3: applicable_products: unknown product(s): PREMUIM_30D" in result.stderr
    assert run.store.codes == {}
