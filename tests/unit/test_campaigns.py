"""SPEC 3 and 7 "Audit": campaigns — create (with or without a first code), read and list; every creation writes
one audit row per row created, a refused one none.

Changes of a campaign: test_campaign_changes.py. Admin transitions of a whole campaign:
test_campaign_transitions.py. Single codes (add, list, pause one, look one up): test_promo_codes.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs
import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain import audit
from domain.campaigns import CampaignService, CampaignSpec
from domain.codes import CodeHasher
from domain.errors import CampaignExists, CodeExists, NotFound, ValidationError
from domain.model import CampaignFilter, PromoType, TargetScope
from domain.promo_codes import CodeService
from tests.conftest import PEPPER
from tests.unit.promo_setup import (
    ACTIVE,
    ACTOR,
    DISCOUNT,
    GRANT,
    STARS,
    add_codes,
    campaign_tables,
    create,
    field_errors,
)


def test_created_campaign_is_active_with_the_spec_and_defaults(campaigns: CampaignService, clock: ManualClock
                                                                ) -> None:
    campaign, code = campaigns.create(DISCOUNT, actor=ACTOR)
    assert code is None
    assert campaign.id is not None and campaign.name == "spring"
    assert campaign.status is ACTIVE and campaign.paused_reason is None
    assert campaign.promo_type is PromoType.PERCENT_DISCOUNT and campaign.discount_percent == 20
    assert campaign.discount_stars is None and campaign.grant_plan_code is None and campaign.grant_days is None
    assert campaign.used_total == 0 and campaign.max_total_uses is None and campaign.per_user_limit == 1
    assert campaign.valid_from == clock.now() and campaign.valid_until is None
    assert campaign.created_at == campaign.updated_at == clock.now()
    assert campaign.target_scope is TargetScope.ALL and campaign.applicable_products == ()
    view = campaigns.get(campaign.id)
    assert view.campaign == campaign and view.codes_total == 0


def test_created_campaign_with_a_first_code_stores_both(
    campaigns: CampaignService, clock: ManualClock, store: MemoryStore
) -> None:
    until = clock.now() + timedelta(days=7)
    spec = attrs.evolve(STARS, max_total_uses=500, per_user_limit=3, valid_until=until,
                        target_scope=TargetScope.FIRST_PURCHASE_ONLY)
    campaign, code = campaigns.create(spec, actor=ACTOR, code=" stars-off 26 ", code_max_total_uses=50)
    assert code is not None and code.id is not None and campaign.id is not None
    assert (campaign.max_total_uses, campaign.per_user_limit, campaign.discount_stars) == (500, 3, 40)
    assert code.campaign_id == campaign.id and code.status is ACTIVE and code.paused_reason is None
    assert code.code_hash == CodeHasher(PEPPER).hash("STARSOFF26") and code.code_prefix == "STAR"
    assert (code.max_total_uses, code.used_total) == (50, 0)
    # The code row carries copies of its campaign's fields (the runbook queries read promo_codes alone).
    assert (code.campaign_name, code.promo_type, code.target_scope, code.valid_from, code.valid_until) == (
        "stars", PromoType.STARS_DISCOUNT, TargetScope.FIRST_PURCHASE_ONLY, clock.now(), until)
    assert store.codes == {code.id: code}
    view = campaigns.get(campaign.id)
    assert view.codes_total == 1 and view.codes_by_status[ACTIVE] == 1


def test_creation_writes_an_audit_row_for_the_campaign_and_one_for_its_code(
    campaigns: CampaignService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, code = campaigns.create(attrs.evolve(DISCOUNT, max_total_uses=9), actor=ACTOR, code="PLAINTEXT99")
    assert code is not None
    created, code_created = store.audit
    assert (created.actor, created.action, created.target_type, created.target_id, created.at) == (
        ACTOR, audit.CAMPAIGN_CREATED, audit.CAMPAIGN, str(campaign.id), clock.now())
    assert created.details["name"] == "spring" and created.details["max_total_uses"] == 9
    assert (code_created.actor, code_created.action, code_created.target_type, code_created.target_id) == (
        ACTOR, audit.CODE_CREATED, audit.PROMO_CODE, str(code.id))
    assert code_created.details["campaign_id"] == campaign.id
    assert "PLAINTEXT99" not in repr(store.audit)


def test_no_row_holds_the_plaintext_code(campaigns: CampaignService, store: MemoryStore) -> None:
    campaigns.create(DISCOUNT, actor=ACTOR, code="PLAINTEXT99")
    assert "PLAINTEXT99" not in repr((store.campaigns, store.codes, store.code_hashes, store.audit))


def test_reading_a_missing_campaign_is_not_found(campaigns: CampaignService) -> None:
    with pytest.raises(NotFound):
        campaigns.get(999)


def test_a_taken_name_is_campaign_exists_and_leaves_nothing_behind(
    campaigns: CampaignService, store: MemoryStore
) -> None:
    campaigns.create(DISCOUNT, actor=ACTOR, code="SPRING26")
    before = campaign_tables(store)
    with pytest.raises(CampaignExists) as exc:
        campaigns.create(attrs.evolve(GRANT, name="spring"), actor=ACTOR, code="FRESH26")
    assert exc.value.code == "CAMPAIGN_EXISTS" and exc.value.details == {"field": "name"}
    assert campaign_tables(store) == before
    # The code it would have had is still free.
    _, code = campaigns.create(attrs.evolve(GRANT, name="autumn"), actor=ACTOR, code="FRESH26")
    assert code is not None


def test_a_taken_code_is_code_exists_and_the_campaign_is_not_created_either(
    campaigns: CampaignService, store: MemoryStore
) -> None:
    campaigns.create(DISCOUNT, actor=ACTOR, code="SPRING26")
    before = campaign_tables(store)
    with pytest.raises(CodeExists) as exc:
        campaigns.create(attrs.evolve(GRANT, name="gift"), actor=ACTOR, code="spring-26")
    assert exc.value.code == "CODE_EXISTS"
    assert campaign_tables(store) == before
    # The name it would have had is still free.
    assert campaigns.create(attrs.evolve(GRANT, name="gift"), actor=ACTOR)[0].name == "gift"


@pytest.mark.parametrize(
    ("spec", "code", "field"),
    [
        (DISCOUNT, "abc", "code"),
        (DISCOUNT, "ABC!D", "code"),
        (DISCOUNT, "A" * 300, "code"),
        (attrs.evolve(DISCOUNT, name=""), "GOOD1", "name"),
        (attrs.evolve(DISCOUNT, name="   "), "GOOD1", "name"),
        (attrs.evolve(DISCOUNT, name="x" * 201), "GOOD1", "name"),
        (attrs.evolve(DISCOUNT, name="tab\there"), "GOOD1", "name"),
        (attrs.evolve(DISCOUNT, discount_percent=None), "GOOD1", "discount_percent"),
        (attrs.evolve(DISCOUNT, discount_percent=0), "GOOD1", "discount_percent"),
        (attrs.evolve(DISCOUNT, discount_percent=100), "GOOD1", "discount_percent"),
        (attrs.evolve(DISCOUNT, discount_stars=10), "GOOD1", "discount_stars"),
        (attrs.evolve(DISCOUNT, grant_plan_code="PREMIUM"), "GOOD1", "grant_plan_code"),
        (attrs.evolve(DISCOUNT, grant_days=3), "GOOD1", "grant_days"),
        (attrs.evolve(GRANT, grant_plan_code=None), "GOOD1", "grant_plan_code"),
        (attrs.evolve(GRANT, grant_plan_code=""), "GOOD1", "grant_plan_code"),
        (attrs.evolve(GRANT, grant_plan_code="P" * 65), "GOOD1", "grant_plan_code"),
        (attrs.evolve(GRANT, grant_days=None), "GOOD1", "grant_days"),
        (attrs.evolve(GRANT, grant_days=0), "GOOD1", "grant_days"),
        (attrs.evolve(GRANT, grant_days=3651), "GOOD1", "grant_days"),
        (attrs.evolve(GRANT, discount_percent=10), "GOOD1", "discount_percent"),
        (attrs.evolve(STARS, discount_stars=None), "GOOD1", "discount_stars"),
        (attrs.evolve(STARS, discount_stars=0), "GOOD1", "discount_stars"),
        (attrs.evolve(STARS, discount_stars=1_000_001), "GOOD1", "discount_stars"),
        (attrs.evolve(STARS, discount_percent=10), "GOOD1", "discount_percent"),
        (attrs.evolve(DISCOUNT, applicable_products=("PREMIUM_7D", "PREMIUM_7D")), "GOOD1", "applicable_products"),
        (attrs.evolve(DISCOUNT, max_total_uses=0), "GOOD1", "max_total_uses"),
        (attrs.evolve(DISCOUNT, max_total_uses=-5), "GOOD1", "max_total_uses"),
        (attrs.evolve(DISCOUNT, per_user_limit=0), "GOOD1", "per_user_limit"),
        (attrs.evolve(DISCOUNT, per_user_limit=1001), "GOOD1", "per_user_limit"),
        (attrs.evolve(DISCOUNT, valid_from=datetime(2026, 1, 1)), "GOOD1", "valid_from"),
        (attrs.evolve(DISCOUNT, valid_until=datetime(2026, 1, 1)), "GOOD1", "valid_until"),
    ],
)
def test_each_bad_field_is_reported_by_name_and_nothing_is_stored(
    campaigns: CampaignService, store: MemoryStore, spec: CampaignSpec, code: str, field: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        campaigns.create(spec, actor=ACTOR, code=code)
    assert field_errors(exc) == {field}
    assert exc.value.code == "VALIDATION_ERROR"
    assert field in exc.value.message
    assert campaign_tables(store) == ({}, {}, {}, {}, [])


@pytest.mark.parametrize("cap", [0, -1, 2**31])
def test_a_bad_cap_of_the_first_code_is_reported_by_name(campaigns: CampaignService, cap: int) -> None:
    with pytest.raises(ValidationError) as exc:
        campaigns.create(DISCOUNT, actor=ACTOR, code="GOOD1", code_max_total_uses=cap)
    assert field_errors(exc) == {"code_max_total_uses"}


def test_per_user_limit_bounds_are_inclusive(campaigns: CampaignService) -> None:
    for limit in (1, 1000):
        campaign, _ = campaigns.create(attrs.evolve(DISCOUNT, name=f"limit {limit}", per_user_limit=limit),
                                       actor=ACTOR)
        assert campaign.per_user_limit == limit


def test_valid_until_must_be_after_valid_from(campaigns: CampaignService, clock: ManualClock) -> None:
    now = clock.now()
    for until in (now, now - timedelta(seconds=1)):
        with pytest.raises(ValidationError) as exc:
            campaigns.create(attrs.evolve(DISCOUNT, valid_from=now, valid_until=until), actor=ACTOR)
        assert field_errors(exc) == {"valid_until"}


def test_unknown_applicable_products_are_refused_when_the_catalog_is_known(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher
) -> None:
    service = CampaignService(uow_factory, clock, hasher, known_products={"PREMIUM_7D", "PREMIUM_30D"})
    with pytest.raises(ValidationError) as exc:
        service.create(attrs.evolve(DISCOUNT, applicable_products=("PREMIUM_7D", "GOLD_BAR")), actor=ACTOR)
    assert field_errors(exc) == {"applicable_products"}
    assert "GOLD_BAR" in exc.value.errors[0]["message"]
    ok, _ = service.create(attrs.evolve(DISCOUNT, applicable_products=("PREMIUM_30D",)), actor=ACTOR)
    assert ok.applicable_products == ("PREMIUM_30D",)


def test_all_bad_fields_are_reported_at_once(campaigns: CampaignService, store: MemoryStore) -> None:
    spec = CampaignSpec(name="", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=150, max_total_uses=0,
                        per_user_limit=0)
    with pytest.raises(ValidationError) as exc:
        campaigns.create(spec, actor=ACTOR, code="no")
    assert field_errors(exc) == {"code", "name", "discount_percent", "max_total_uses", "per_user_limit"}
    assert store.campaigns == {} and store.audit == []


def test_campaign_list_filters_and_pages_newest_first(
    campaigns: CampaignService, codes: CodeService
) -> None:
    for i in range(5):
        create(campaigns, f"SPRING{i}X", name=f"spring-{i}")
    gift, _ = create(campaigns, "GIFT30", GRANT, name="gift")
    add_codes(codes, gift, "GIFT31", "GIFT32")
    page = campaigns.list_campaigns(CampaignFilter(promo_type=PromoType.PERCENT_DISCOUNT), limit=3)
    assert [v.campaign.name for v in page.items] == ["spring-4", "spring-3", "spring-2"]
    assert page.next_cursor is not None
    rest = campaigns.list_campaigns(CampaignFilter(promo_type=PromoType.PERCENT_DISCOUNT), 3, page.next_cursor)
    assert [v.campaign.name for v in rest.items] == ["spring-1", "spring-0"] and rest.next_cursor is None
    [found] = campaigns.list_campaigns(CampaignFilter(name_contains="GIF")).items
    assert found.campaign.name == "gift" and found.codes_total == 3
    with pytest.raises(ValidationError) as exc:
        campaigns.list_campaigns(CampaignFilter(), limit=201)
    assert field_errors(exc) == {"limit"}
