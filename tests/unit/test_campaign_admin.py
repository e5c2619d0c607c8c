"""SPEC 3: campaign creation (validation, CODE_EXISTS) and admin status transitions."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs
import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.codes import CodeHasher
from domain.errors import CodeExists, InvalidTransition, NotFound, ValidationError
from domain.model import (
    CampaignFilter,
    CampaignStatus,
    PausedReason,
    PromoType,
    RedeemResult,
    TargetScope,
)
from domain.redemption import RedemptionService
from tests.conftest import PEPPER

DISCOUNT = CampaignSpec(campaign_name="spring", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=20)
GRANT = CampaignSpec(
    campaign_name="gift", promo_type=PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM", grant_days=30
)


def field_errors(exc: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {e["field"] for e in exc.value.errors}


# --- creation --------------------------------------------------------------------------------------


def test_created_campaign_is_active_with_hash_prefix_and_defaults(campaigns: CampaignService,
                                                                   clock: ManualClock) -> None:
    c = campaigns.create(DISCOUNT, " spring-sale 26 ")
    assert c.id is not None
    assert c.status is CampaignStatus.ACTIVE and c.paused_reason is None
    assert c.code_hash == CodeHasher(PEPPER).hash("SPRINGSALE26")
    assert c.code_prefix == "SPRI"
    assert c.used_total == 0
    assert c.valid_from == clock.now() and c.valid_until is None and c.max_total_uses is None
    assert c.created_at == c.updated_at == clock.now()
    assert c.target_scope is TargetScope.ALL and c.applicable_products == ()
    assert c.discount_percent == 20 and c.grant_plan_code is None and c.grant_days is None


def test_campaign_never_holds_the_plaintext_code(campaigns: CampaignService) -> None:
    c = campaigns.create(DISCOUNT, "PLAINTEXT99")
    assert "PLAINTEXT99" not in repr(attrs.asdict(c))


def test_created_campaign_can_be_read_back(campaigns: CampaignService) -> None:
    c = campaigns.create(GRANT, "GIFT30")
    assert c.id is not None
    assert campaigns.get(c.id) == c


def test_reading_a_missing_campaign_is_not_found(campaigns: CampaignService) -> None:
    with pytest.raises(NotFound):
        campaigns.get(999)


def test_second_campaign_with_the_same_normalized_code_is_code_exists(campaigns: CampaignService) -> None:
    campaigns.create(DISCOUNT, "SPRING26")
    with pytest.raises(CodeExists) as exc:
        campaigns.create(GRANT, "spring-26")
    assert exc.value.code == "CODE_EXISTS"


@pytest.mark.parametrize(
    ("spec", "code", "field"),
    [
        (DISCOUNT, "abc", "code"),
        (DISCOUNT, "ABC!D", "code"),
        (DISCOUNT, "A" * 300, "code"),
        (attrs.evolve(DISCOUNT, campaign_name=""), "GOOD1", "campaign_name"),
        (attrs.evolve(DISCOUNT, campaign_name="   "), "GOOD1", "campaign_name"),
        (attrs.evolve(DISCOUNT, campaign_name="x" * 201), "GOOD1", "campaign_name"),
        (attrs.evolve(DISCOUNT, discount_percent=None), "GOOD1", "discount_percent"),
        (attrs.evolve(DISCOUNT, discount_percent=0), "GOOD1", "discount_percent"),
        (attrs.evolve(DISCOUNT, discount_percent=100), "GOOD1", "discount_percent"),
        (attrs.evolve(DISCOUNT, grant_plan_code="PREMIUM"), "GOOD1", "grant_plan_code"),
        (attrs.evolve(DISCOUNT, grant_days=3), "GOOD1", "grant_days"),
        (attrs.evolve(GRANT, grant_plan_code=None), "GOOD1", "grant_plan_code"),
        (attrs.evolve(GRANT, grant_plan_code=""), "GOOD1", "grant_plan_code"),
        (attrs.evolve(GRANT, grant_plan_code="P" * 65), "GOOD1", "grant_plan_code"),
        (attrs.evolve(GRANT, grant_days=None), "GOOD1", "grant_days"),
        (attrs.evolve(GRANT, grant_days=0), "GOOD1", "grant_days"),
        (attrs.evolve(GRANT, grant_days=3651), "GOOD1", "grant_days"),
        (attrs.evolve(GRANT, discount_percent=10), "GOOD1", "discount_percent"),
        (attrs.evolve(DISCOUNT, applicable_products=("PREMIUM_7D", "PREMIUM_7D")), "GOOD1", "applicable_products"),
        (attrs.evolve(DISCOUNT, max_total_uses=0), "GOOD1", "max_total_uses"),
        (attrs.evolve(DISCOUNT, max_total_uses=-5), "GOOD1", "max_total_uses"),
        (attrs.evolve(DISCOUNT, valid_from=datetime(2026, 1, 1)), "GOOD1", "valid_from"),
        (attrs.evolve(DISCOUNT, valid_until=datetime(2026, 1, 1)), "GOOD1", "valid_until"),
    ],
)
def test_each_bad_field_is_reported_by_name(
    campaigns: CampaignService, spec: CampaignSpec, code: str, field: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        campaigns.create(spec, code)
    assert field_errors(exc) == {field}
    assert exc.value.code == "VALIDATION_ERROR"
    assert field in exc.value.message


def test_valid_until_must_be_after_valid_from(campaigns: CampaignService, clock: ManualClock) -> None:
    now = clock.now()
    for until in (now, now - timedelta(seconds=1)):
        with pytest.raises(ValidationError) as exc:
            campaigns.create(attrs.evolve(DISCOUNT, valid_from=now, valid_until=until), "GOOD1")
        assert field_errors(exc) == {"valid_until"}


def test_unknown_applicable_products_are_refused_when_the_catalog_is_known(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher
) -> None:
    service = CampaignService(uow_factory, clock, hasher, known_products={"PREMIUM_7D", "PREMIUM_30D"})
    with pytest.raises(ValidationError) as exc:
        service.create(attrs.evolve(DISCOUNT, applicable_products=("PREMIUM_7D", "GOLD_BAR")), "GOOD1")
    assert field_errors(exc) == {"applicable_products"}
    assert "GOLD_BAR" in exc.value.errors[0]["message"]
    ok = service.create(attrs.evolve(DISCOUNT, applicable_products=("PREMIUM_30D",)), "GOOD2")
    assert ok.applicable_products == ("PREMIUM_30D",)


def test_all_bad_fields_are_reported_at_once_and_nothing_is_stored(
    campaigns: CampaignService, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    spec = CampaignSpec(campaign_name="", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=150,
                        max_total_uses=0)
    with pytest.raises(ValidationError) as exc:
        campaigns.create(spec, "no")
    assert field_errors(exc) == {"code", "campaign_name", "discount_percent", "max_total_uses"}
    assert uow_factory.store.campaigns == {}


def test_campaign_list_filters_and_pages(campaigns: CampaignService) -> None:
    for i in range(5):
        campaigns.create(attrs.evolve(DISCOUNT, campaign_name=f"spring-{i}"), f"SPRING{i}X")
    campaigns.create(GRANT, "GIFT30")
    page = campaigns.list_campaigns(CampaignFilter(promo_type=PromoType.PERCENT_DISCOUNT), limit=3)
    assert [c.campaign_name for c in page.items] == ["spring-0", "spring-1", "spring-2"]
    assert page.next_cursor is not None
    rest = campaigns.list_campaigns(CampaignFilter(promo_type=PromoType.PERCENT_DISCOUNT), 3, page.next_cursor)
    assert [c.campaign_name for c in rest.items] == ["spring-3", "spring-4"] and rest.next_cursor is None
    assert [c.campaign_name for c in campaigns.list_campaigns(CampaignFilter(name_contains="GIF")).items] == ["gift"]
    with pytest.raises(ValidationError) as exc:
        campaigns.list_campaigns(CampaignFilter(), limit=201)
    assert field_errors(exc) == {"limit"}


# --- admin transitions -----------------------------------------------------------------------------


def test_pause_then_resume(campaigns: CampaignService, clock: ManualClock) -> None:
    c = campaigns.create(DISCOUNT, "TOGGLE1")
    assert c.id is not None
    clock.advance(minutes=1)
    paused = campaigns.set_status(c.id, CampaignStatus.PAUSED)
    assert paused.status is CampaignStatus.PAUSED
    assert paused.paused_reason is PausedReason.MANUAL
    assert paused.updated_at == clock.now()
    clock.advance(minutes=1)
    resumed = campaigns.set_status(c.id, CampaignStatus.ACTIVE)
    assert resumed.status is CampaignStatus.ACTIVE and resumed.paused_reason is None
    assert campaigns.get(c.id) == resumed


@pytest.mark.parametrize("status", [CampaignStatus.ACTIVE, CampaignStatus.PAUSED])
def test_same_state_request_is_an_idempotent_no_op(
    campaigns: CampaignService, clock: ManualClock, status: CampaignStatus
) -> None:
    c = campaigns.create(DISCOUNT, "SAME1")
    assert c.id is not None
    if status is CampaignStatus.PAUSED:
        c = campaigns.set_status(c.id, CampaignStatus.PAUSED)
    clock.advance(hours=1)
    again = campaigns.set_status(c.id, status)
    assert again == c  # unchanged, updated_at included


def test_auto_paused_campaign_keeps_its_reason_on_a_manual_pause_request(
    campaigns: CampaignService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock
) -> None:
    c = campaigns.create(DISCOUNT, "GUARD1")
    assert c.id is not None
    with uow_factory() as uow:
        uow.promo_codes.set_status(c.id, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED,
                                   PausedReason.AUTO_BRUTEFORCE, clock.now())
        uow.commit()
    assert campaigns.set_status(c.id, CampaignStatus.PAUSED).paused_reason is PausedReason.AUTO_BRUTEFORCE
    assert campaigns.set_status(c.id, CampaignStatus.ACTIVE).paused_reason is None


@pytest.mark.parametrize("frozen", [CampaignStatus.DEPLETED, CampaignStatus.EXPIRED])
@pytest.mark.parametrize("target", [CampaignStatus.ACTIVE, CampaignStatus.PAUSED])
def test_nothing_leaves_depleted_or_expired(
    campaigns: CampaignService,
    uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock,
    frozen: CampaignStatus,
    target: CampaignStatus,
) -> None:
    c = campaigns.create(DISCOUNT, "FROZEN1")
    assert c.id is not None
    with uow_factory() as uow:
        assert uow.promo_codes.set_status(c.id, [CampaignStatus.ACTIVE], frozen, None, clock.now())
        uow.commit()
    with pytest.raises(InvalidTransition) as exc:
        campaigns.set_status(c.id, target)
    assert exc.value.code == "INVALID_TRANSITION"
    assert campaigns.get(c.id).status is frozen


@pytest.mark.parametrize("frozen", [CampaignStatus.DEPLETED, CampaignStatus.EXPIRED])
def test_same_state_request_on_depleted_or_expired_is_a_no_op(
    campaigns: CampaignService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
    frozen: CampaignStatus,
) -> None:
    c = campaigns.create(DISCOUNT, "FROZEN2")
    assert c.id is not None
    with uow_factory() as uow:
        uow.promo_codes.set_status(c.id, [CampaignStatus.ACTIVE], frozen, None, clock.now())
        uow.commit()
    # Only ACTIVE and PAUSED are admin targets at all.
    with pytest.raises(ValidationError) as exc:
        campaigns.set_status(c.id, frozen)
    assert field_errors(exc) == {"status"}


def test_resume_is_refused_once_valid_until_has_passed(campaigns: CampaignService, clock: ManualClock) -> None:
    c = campaigns.create(attrs.evolve(DISCOUNT, valid_until=clock.now() + timedelta(hours=1)), "LATE1")
    assert c.id is not None
    campaigns.set_status(c.id, CampaignStatus.PAUSED)
    clock.advance(minutes=59)
    campaigns.set_status(c.id, CampaignStatus.ACTIVE)
    campaigns.set_status(c.id, CampaignStatus.PAUSED)
    clock.advance(minutes=1)  # now == valid_until: past
    with pytest.raises(InvalidTransition):
        campaigns.set_status(c.id, CampaignStatus.ACTIVE)
    assert campaigns.get(c.id).status is CampaignStatus.PAUSED


def test_resume_is_refused_when_capacity_is_used_up(
    campaigns: CampaignService, redemptions: RedemptionService
) -> None:
    c = campaigns.create(attrs.evolve(DISCOUNT, max_total_uses=2), "FULL1")
    assert c.id is not None
    assert redemptions.redeem(1, "FULL1", "a").accepted
    campaigns.set_status(c.id, CampaignStatus.PAUSED)
    campaigns.set_status(c.id, CampaignStatus.ACTIVE)  # 1 of 2 used: fine
    assert redemptions.redeem(2, "FULL1", "b").accepted
    campaigns.set_status(c.id, CampaignStatus.PAUSED)
    with pytest.raises(InvalidTransition):
        campaigns.set_status(c.id, CampaignStatus.ACTIVE)


def test_pausing_an_exhausted_active_campaign_is_allowed(
    campaigns: CampaignService, redemptions: RedemptionService
) -> None:
    c = campaigns.create(attrs.evolve(DISCOUNT, max_total_uses=1), "FULL2")
    assert c.id is not None
    assert redemptions.redeem(1, "FULL2", "a").accepted
    assert campaigns.set_status(c.id, CampaignStatus.PAUSED).status is CampaignStatus.PAUSED


def test_transition_of_a_missing_campaign_is_not_found(campaigns: CampaignService) -> None:
    with pytest.raises(NotFound):
        campaigns.set_status(42, CampaignStatus.PAUSED)


def test_paused_campaign_redeems_again_after_resume(
    campaigns: CampaignService, redemptions: RedemptionService
) -> None:
    c = campaigns.create(DISCOUNT, "AGAIN1")
    assert c.id is not None
    campaigns.set_status(c.id, CampaignStatus.PAUSED)
    assert redemptions.redeem(1, "AGAIN1", "a").result is RedeemResult.PAUSED
    campaigns.set_status(c.id, CampaignStatus.ACTIVE)
    assert redemptions.redeem(1, "AGAIN1", "b").result is RedeemResult.ACCEPTED
