"""SPEC 3 and 7 "Audit": campaigns — create (with or without a first code), read, list, change what may change,
and the admin transitions of a whole campaign; every change writes one audit row, a refused one none.

Single codes (add, list, pause one, look one up): test_promo_codes.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain import audit
from domain.campaigns import CampaignService, CampaignSpec
from domain.codes import CodeHasher
from domain.errors import CampaignExists, CodeExists, InvalidChange, InvalidTransition, NotFound, ValidationError
from domain.model import (
    UNCHANGED,
    CampaignChanges,
    CampaignFilter,
    CampaignStatus,
    PausedReason,
    PromoType,
    RedeemResult,
    TargetScope,
)
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService
from tests.conftest import PEPPER
from tests.unit.promo_setup import (
    ACTOR,
    DISCOUNT,
    GRANT,
    STARS,
    add_codes,
    audit_since,
    create,
    force_campaign,
)

ACTIVE, PAUSED, EXPIRED, DEPLETED = (CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.EXPIRED,
                                     CampaignStatus.DEPLETED)


def field_errors(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {e["field"] for e in exc.value.errors}


def tables(store: MemoryStore) -> tuple[object, ...]:
    """Everything a refused change must leave as it was."""
    return (dict(store.campaigns), dict(store.campaign_names), dict(store.codes), dict(store.code_hashes),
            list(store.audit))


# --- creation --------------------------------------------------------------------------------------


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
    before = tables(store)
    with pytest.raises(CampaignExists) as exc:
        campaigns.create(attrs.evolve(GRANT, name="spring"), actor=ACTOR, code="FRESH26")
    assert exc.value.code == "CAMPAIGN_EXISTS" and exc.value.details == {"field": "name"}
    assert tables(store) == before
    # The code it would have had is still free.
    _, code = campaigns.create(attrs.evolve(GRANT, name="autumn"), actor=ACTOR, code="FRESH26")
    assert code is not None


def test_a_taken_code_is_code_exists_and_the_campaign_is_not_created_either(
    campaigns: CampaignService, store: MemoryStore
) -> None:
    campaigns.create(DISCOUNT, actor=ACTOR, code="SPRING26")
    before = tables(store)
    with pytest.raises(CodeExists) as exc:
        campaigns.create(attrs.evolve(GRANT, name="gift"), actor=ACTOR, code="spring-26")
    assert exc.value.code == "CODE_EXISTS"
    assert tables(store) == before
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
    assert tables(store) == ({}, {}, {}, {}, [])


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


# --- change -----------------------------------------------------------------------------------------


def test_a_name_and_valid_until_change_is_copied_onto_every_code_of_the_campaign(
    campaigns: CampaignService, codes: CodeService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "COPY1", name="before", valid_until=clock.now() + timedelta(days=1))
    add_codes(codes, campaign, "COPY2", "COPY3")
    other, other_code = create(campaigns, "ELSE1", name="untouched")
    assert campaign.id is not None
    clock.advance(hours=1)
    until = clock.now() + timedelta(days=30)
    changed = campaigns.change(campaign.id, CampaignChanges(name="after", valid_until=until), actor=ACTOR)
    assert (changed.name, changed.valid_until, changed.updated_at) == ("after", until, clock.now())
    mine = [c for c in store.codes.values() if c.campaign_id == campaign.id]
    assert len(mine) == 3
    assert {(c.campaign_name, c.valid_until, c.updated_at) for c in mine} == {("after", until, clock.now())}
    assert store.codes[other_code.id] == other_code  # type: ignore[index]
    assert store.campaigns[other.id] == other  # type: ignore[index]
    # The old name is free again, the new one taken.
    with pytest.raises(CampaignExists):
        campaigns.create(attrs.evolve(DISCOUNT, name="after"), actor=ACTOR)
    assert campaigns.create(attrs.evolve(DISCOUNT, name="before"), actor=ACTOR)[0].name == "before"


def test_valid_until_may_be_removed_and_the_codes_follow(
    campaigns: CampaignService, codes: CodeService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "OPEN1", valid_until=clock.now() + timedelta(days=1))
    add_codes(codes, campaign, "OPEN2")
    assert campaign.id is not None
    assert campaigns.change(campaign.id, CampaignChanges(valid_until=None), actor=ACTOR).valid_until is None
    assert {c.valid_until for c in store.codes.values()} == {None}


def test_a_change_writes_one_audit_row_with_what_changed(
    campaigns: CampaignService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "AUDIT1", name="old name", max_total_uses=10)
    assert campaign.id is not None
    before = len(store.audit)
    campaigns.change(campaign.id, CampaignChanges(name="new name", max_total_uses=None, per_user_limit=4),
                     actor="cli:bob")
    [entry] = audit_since(store, before)
    assert (entry.actor, entry.action, entry.target_type, entry.target_id, entry.at) == (
        "cli:bob", audit.CAMPAIGN_CHANGED, audit.CAMPAIGN, str(campaign.id), clock.now())
    assert entry.details == {"changes": {"name": {"from": "old name", "to": "new name"},
                                         "max_total_uses": {"from": 10, "to": None},
                                         "per_user_limit": {"from": 1, "to": 4}}}
    assert "AUDIT1" not in repr(entry)


def test_a_change_of_nothing_changes_nothing_and_writes_no_audit_row(
    campaigns: CampaignService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "NONE1")
    assert campaign.id is not None
    before = tables(store)
    assert campaigns.change(campaign.id, CampaignChanges(), actor=ACTOR) == campaign
    assert tables(store) == before


def test_the_budget_may_be_lowered_to_the_units_used_but_not_below(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "BUDGET1", max_total_uses=10, per_user_limit=1)
    assert campaign.id is not None
    for user in (1, 2, 3):
        assert redemptions.redeem(user, "BUDGET1", f"k{user}").accepted
    before = tables(store)
    with pytest.raises(InvalidChange) as exc:
        campaigns.change(campaign.id, CampaignChanges(max_total_uses=2), actor=ACTOR)
    assert exc.value.code == "INVALID_CHANGE"
    assert exc.value.details["field"] == "max_total_uses" and exc.value.details["used_total"] == 3
    assert tables(store) == before
    assert campaigns.change(campaign.id, CampaignChanges(max_total_uses=3), actor=ACTOR).max_total_uses == 3
    assert redemptions.redeem(4, "BUDGET1", "k4").result is RedeemResult.DEPLETED


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        (CampaignChanges(name="taken"), InvalidChange, "name"),
        (CampaignChanges(name=""), ValidationError, "name"),
        (CampaignChanges(name="x" * 201), ValidationError, "name"),
        (CampaignChanges(max_total_uses=1), InvalidChange, "max_total_uses"),  # below the 2 used
        (CampaignChanges(max_total_uses=0), ValidationError, "max_total_uses"),
        (CampaignChanges(valid_until=datetime(2026, 3, 1, 11, 0, tzinfo=UTC)), InvalidChange, "valid_until"),
        (CampaignChanges(valid_until=datetime(2026, 3, 1, 12, 0, tzinfo=UTC)), InvalidChange, "valid_until"),
        (CampaignChanges(valid_until=datetime(2026, 6, 1)), ValidationError, "valid_until"),
        (CampaignChanges(per_user_limit=0), ValidationError, "per_user_limit"),
        (CampaignChanges(per_user_limit=1001), ValidationError, "per_user_limit"),
        (CampaignChanges(name="fine", per_user_limit=0), ValidationError, "per_user_limit"),
        (CampaignChanges(name="taken", per_user_limit=5), InvalidChange, "name"),
    ],
    ids=["name-clash", "empty-name", "long-name", "budget-below-used", "zero-budget", "valid-until-in-the-past",
         "valid-until-now", "naive-valid-until", "limit-0", "limit-1001", "good-name-bad-limit",
         "name-clash-with-good-limit"],
)
def test_a_refused_change_names_the_field_changes_nothing_and_writes_no_audit_row(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore,
    changes: CampaignChanges, error: type[Exception], field: str,
) -> None:
    campaigns.create(attrs.evolve(DISCOUNT, name="taken"), actor=ACTOR)
    campaign, _ = create(campaigns, "REFUSE1", name="mine", per_user_limit=2,
                         valid_until=datetime(2026, 4, 1, tzinfo=UTC))
    add_codes(codes, campaign, "REFUSE2")
    assert redemptions.redeem(1, "REFUSE1", "k1").accepted
    assert redemptions.redeem(2, "REFUSE2", "k2").accepted
    assert campaign.id is not None
    before = tables(store)
    with pytest.raises(error) as exc:
        campaigns.change(campaign.id, changes, actor=ACTOR)
    if isinstance(exc.value, ValidationError):
        assert {e["field"] for e in exc.value.errors} == {field}
    else:
        assert isinstance(exc.value, InvalidChange) and exc.value.details["field"] == field
    assert tables(store) == before


def test_valid_until_of_an_expired_campaign_cannot_change(
    campaigns: CampaignService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "GONE1", valid_until=clock.now() + timedelta(hours=1))
    assert campaign.id is not None
    force_campaign(store, campaign, EXPIRED)
    before = tables(store)
    with pytest.raises(InvalidChange) as exc:
        campaigns.change(campaign.id, CampaignChanges(valid_until=clock.now() + timedelta(days=9)), actor=ACTOR)
    assert exc.value.details["field"] == "valid_until"
    assert tables(store) == before


def test_changing_a_missing_campaign_is_not_found(campaigns: CampaignService) -> None:
    with pytest.raises(NotFound):
        campaigns.change(42, CampaignChanges(name="x"), actor=ACTOR)


def test_unchanged_is_not_none() -> None:
    # ``None`` is a real new value of valid_until and max_total_uses (no end, no budget).
    assert CampaignChanges().changed() == {}
    assert CampaignChanges(valid_until=None).changed() == {"valid_until": None}
    assert CampaignChanges(max_total_uses=UNCHANGED, per_user_limit=3).changed() == {"per_user_limit": 3}


# --- admin transitions of a whole campaign ---------------------------------------------------------------


def test_pause_then_resume_each_write_one_audit_row_by_the_actor(
    campaigns: CampaignService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "TOGGLE1")
    assert campaign.id is not None
    before = len(store.audit)
    clock.advance(minutes=1)
    paused = campaigns.set_status(campaign.id, PAUSED, actor="ops:carol", reason="spam wave")
    assert paused.status is PAUSED and paused.paused_reason is PausedReason.MANUAL
    assert paused.updated_at == clock.now()
    [entry] = audit_since(store, before)
    assert (entry.actor, entry.action, entry.target_type, entry.target_id, entry.at) == (
        "ops:carol", audit.CAMPAIGN_PAUSED, audit.CAMPAIGN, str(campaign.id), clock.now())
    assert entry.details == {"reason": "spam wave"}
    clock.advance(minutes=1)
    resumed = campaigns.set_status(campaign.id, ACTIVE, actor="api")
    assert resumed.status is ACTIVE and resumed.paused_reason is None
    [entry] = audit_since(store, before + 1)
    assert (entry.actor, entry.action) == ("api", audit.CAMPAIGN_RESUMED)
    assert entry.details == {"previous_paused_reason": "MANUAL"}
    assert campaigns.get(campaign.id).campaign == resumed
    # Its codes keep their own status: the campaign's decides for all of them.
    assert store.codes[code.id] == code  # type: ignore[index]
    assert "TOGGLE1" not in repr(store.audit)


@pytest.mark.parametrize("status", [ACTIVE, PAUSED])
def test_same_state_request_is_an_idempotent_no_op_without_an_audit_row(
    campaigns: CampaignService, clock: ManualClock, store: MemoryStore, status: CampaignStatus
) -> None:
    campaign, _ = create(campaigns, "SAME1")
    assert campaign.id is not None
    if status is PAUSED:
        campaign = campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    assert campaign.id is not None
    clock.advance(hours=1)
    before = tables(store)
    assert campaigns.set_status(campaign.id, status, actor=ACTOR) == campaign  # unchanged, updated_at included
    assert tables(store) == before


def test_auto_paused_campaign_keeps_its_reason_on_a_manual_pause_request(
    campaigns: CampaignService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "GUARD1")
    assert campaign.id is not None
    force_campaign(store, campaign, PAUSED)  # what the brute-force guard does
    before = len(store.audit)
    assert campaigns.set_status(campaign.id, PAUSED, actor=ACTOR).paused_reason is PausedReason.AUTO_BRUTEFORCE
    assert len(store.audit) == before
    assert campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR).paused_reason is None
    [entry] = audit_since(store, before)
    assert entry.details == {"previous_paused_reason": "AUTO_BRUTEFORCE"}


@pytest.mark.parametrize("frozen", [DEPLETED, EXPIRED])
@pytest.mark.parametrize("target", [ACTIVE, PAUSED])
def test_nothing_leaves_depleted_or_expired(
    campaigns: CampaignService, store: MemoryStore, frozen: CampaignStatus, target: CampaignStatus
) -> None:
    campaign, _ = create(campaigns, "FROZEN1")
    assert campaign.id is not None
    force_campaign(store, campaign, frozen)
    before = tables(store)
    with pytest.raises(InvalidTransition) as exc:
        campaigns.set_status(campaign.id, target, actor=ACTOR)
    assert exc.value.code == "INVALID_TRANSITION"
    assert exc.value.details == {"from": frozen.value, "to": target.value}
    assert tables(store) == before


@pytest.mark.parametrize("frozen", [DEPLETED, EXPIRED])
def test_depleted_and_expired_are_no_admin_targets(
    campaigns: CampaignService, store: MemoryStore, frozen: CampaignStatus
) -> None:
    campaign, _ = create(campaigns, "FROZEN2")
    assert campaign.id is not None
    for status in (ACTIVE, frozen):
        force_campaign(store, campaign, status)
        with pytest.raises(ValidationError) as exc:
            campaigns.set_status(campaign.id, frozen, actor=ACTOR)
        assert field_errors(exc) == {"status"}


def test_resume_is_refused_once_valid_until_has_passed(
    campaigns: CampaignService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "LATE1", valid_until=clock.now() + timedelta(hours=1))
    assert campaign.id is not None
    campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    clock.advance(minutes=59)
    campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR)
    campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    clock.advance(minutes=1)  # now == valid_until: past
    before = tables(store)
    with pytest.raises(InvalidTransition) as exc:
        campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR)
    assert "valid_until" in exc.value.message
    assert tables(store) == before


def test_resume_is_refused_when_the_budget_is_used_up(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "FULL1", max_total_uses=2)
    add_codes(codes, campaign, "FULL2")
    assert campaign.id is not None
    assert redemptions.redeem(1, "FULL1", "a").accepted
    campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR)  # 1 of 2 used: fine
    assert redemptions.redeem(2, "FULL2", "b").accepted  # the other code takes the last unit
    campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    before = tables(store)
    with pytest.raises(InvalidTransition) as exc:
        campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR)
    assert "capacity" in exc.value.message
    assert tables(store) == before
    # A larger budget makes room, and the resume goes through.
    campaigns.change(campaign.id, CampaignChanges(max_total_uses=3), actor=ACTOR)
    assert campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR).status is ACTIVE


def test_pausing_a_used_up_active_campaign_is_allowed(
    campaigns: CampaignService, redemptions: RedemptionService
) -> None:
    campaign, _ = create(campaigns, "FULL2", max_total_uses=1)
    assert campaign.id is not None
    assert redemptions.redeem(1, "FULL2", "a").accepted
    assert campaigns.set_status(campaign.id, PAUSED, actor=ACTOR).status is PAUSED


def test_a_reason_is_at_most_500_printable_characters(campaigns: CampaignService, store: MemoryStore) -> None:
    campaign, _ = create(campaigns, "WHY1")
    assert campaign.id is not None
    before = tables(store)
    for reason in ("x" * 501, "line\nbreak"):
        with pytest.raises(ValidationError) as exc:
            campaigns.set_status(campaign.id, PAUSED, actor=ACTOR, reason=reason)
        assert field_errors(exc) == {"reason"}
    assert tables(store) == before


def test_transition_of_a_missing_campaign_is_not_found(campaigns: CampaignService) -> None:
    with pytest.raises(NotFound):
        campaigns.set_status(42, PAUSED, actor=ACTOR)


def test_paused_campaign_redeems_again_after_resume(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService
) -> None:
    campaign, _ = create(campaigns, "AGAIN1")
    add_codes(codes, campaign, "AGAIN2")
    assert campaign.id is not None
    campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    assert redemptions.redeem(1, "AGAIN1", "a").result is RedeemResult.PAUSED
    assert redemptions.redeem(2, "AGAIN2", "b").result is RedeemResult.PAUSED
    campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR)
    assert redemptions.redeem(1, "AGAIN1", "c").accepted
    assert redemptions.redeem(2, "AGAIN2", "d").accepted
