"""Campaign fields from text (CSV cells, CLI flags: ``domain.code_files``) and the code generator (``domain.batch``)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from domain.batch import random_codes, validate_generation
from domain.code_files import parse_campaign_fields, parse_products
from domain.codes import GENERATION_ALPHABET
from domain.model import PromoType, TargetScope
from tests.conftest import T0


def fields(errors: list[dict[str, str]]) -> list[str]:
    return [e["field"] for e in errors]


def test_text_fields_become_a_validated_spec_with_the_code_cap_apart_from_the_budget() -> None:
    terms, errors = parse_campaign_fields({
        "campaign_name": " summer ", "promo_type": "percent_discount", "discount_percent": " 15 ",
        "target_scope": "first_purchase_only", "valid_from": "2026-06-01T00:00:00+02:00",
        "valid_until": "2026-09-01T00:00:00Z", "max_total_uses": "1", "campaign_max_total_uses": "500",
        "per_user_limit": "3", "applicable_products": "A; B C,D", "grant_plan_code": "", "grant_days": "  ",
    }, T0)
    assert errors == [] and terms is not None
    spec = terms.spec
    assert spec.name == "summer" and spec.promo_type is PromoType.PERCENT_DISCOUNT
    assert spec.discount_percent == 15 and spec.max_total_uses == 500 and spec.per_user_limit == 3
    assert terms.code_max_total_uses == 1
    assert spec.target_scope is TargetScope.FIRST_PURCHASE_ONLY
    assert spec.valid_from == datetime(2026, 5, 31, 22, tzinfo=UTC)
    assert spec.applicable_products == ("A", "B", "C", "D")
    assert spec.grant_plan_code is None and spec.grant_days is None
    # blank values were not given: an existing campaign's other fields are not compared with them
    assert "grant_days" not in terms.given and {"max_total_uses", "code_max_total_uses"} <= terms.given


def test_every_problem_is_reported_once_per_field() -> None:
    terms, errors = parse_campaign_fields({
        "campaign_name": "", "promo_type": "PREMIUM_GRANT", "grant_days": "3.5", "discount_percent": "5",
        "valid_until": "2026-13-01T00:00:00Z", "campaign_max_total_uses": "0",
    }, T0)
    assert terms is None
    assert sorted(fields(errors)) == ["campaign_max_total_uses", "campaign_name", "discount_percent", "grant_days",
                                      "grant_plan_code", "valid_until"]


def test_unknown_products_are_refused_when_the_catalog_is_known() -> None:
    _, errors = parse_campaign_fields({"campaign_name": "x", "promo_type": "PERCENT_DISCOUNT",
                                       "discount_percent": "5", "applicable_products": "PREMIUM_7D,GOLD"},
                                      T0, known_products={"PREMIUM_7D"})
    assert errors == [{"field": "applicable_products", "message": "unknown product(s): GOLD"}]


def test_products_list_may_be_empty() -> None:
    assert parse_products("") == () and parse_products(" , ") == ()


def test_random_codes_use_the_alphabet_with_the_prefix_uniformly() -> None:
    codes = random_codes(4000, 10, "AB")
    assert all(len(c) == 10 and c.startswith("AB") and set(c[2:]) <= set(GENERATION_ALPHABET) for c in codes)
    counts = Counter("".join(c[2:] for c in codes))
    # 32,000 characters over 32 symbols: 1,000 each expected; a biased mapping would be far off
    assert set(counts) == set(GENERATION_ALPHABET)
    assert all(800 < n < 1200 for n in counts.values())
    assert len(set(codes)) == len(codes)


def test_generation_parameters_are_checked_together() -> None:
    prefix, errors = validate_generation(0, 3, "ab-")
    assert prefix == "AB" and fields(errors) == ["count", "length"]
    assert validate_generation(10, 12, "SPR 1") == ("SPR1", [])
