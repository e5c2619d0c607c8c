"""SPEC 4 checks 7-8, about the user: ALREADY_USED (a live redemption of the code; again once it expired) and
NOT_APPLICABLE for a FIRST_PURCHASE_ONLY code after a paid purchase."""

from __future__ import annotations

import attrs
import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain.campaigns import CampaignService
from domain.codes import CodeHasher
from domain.model import PurchaseStatus, RedeemResult, RedeemSnapshot, RedemptionStatus, TargetScope
from domain.redemption import RedemptionService
from tests.unit.promo_setup import create
from tests.unit.redeem_setup import add_purchase, attempts, stale_reads


def test_second_redemption_by_the_same_user_with_a_new_key_is_already_used(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "SPRING26", per_user_limit=5)
    assert redemptions.redeem(1, "SPRING26", "k1").accepted
    # One live redemption per code and user, even where the campaign would allow the user more.
    assert redemptions.redeem(1, "spring-26", "k2").result is RedeemResult.ALREADY_USED
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]
    assert (attempts(store)[-1].result, attempts(store)[-1].campaign_id) == (RedeemResult.ALREADY_USED, campaign.id)


@pytest.mark.parametrize("status", [RedemptionStatus.APPLIED, RedemptionStatus.REVOKED])
def test_applied_or_revoked_redemption_still_counts_as_used(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore, status: RedemptionStatus
) -> None:
    create(campaigns, "SPRING26")
    r = redemptions.redeem(1, "SPRING26", "k1").redemption
    assert r is not None and r.id is not None
    store.redemptions[r.id] = attrs.evolve(r, status=status)
    assert redemptions.redeem(1, "SPRING26", "k2").result is RedeemResult.ALREADY_USED


def test_user_may_redeem_again_once_the_reservation_expired(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock,
    uow_factory: InMemoryUnitOfWorkFactory, store: MemoryStore,
) -> None:
    campaign, code = create(campaigns, "SPRING26", max_total_uses=1, code_cap=1)
    first = redemptions.redeem(1, "SPRING26", "k1").redemption
    assert first is not None and first.id is not None
    clock.advance(minutes=15)
    with uow_factory() as uow:  # what the expiry job does
        assert uow.redemptions.expire(first.id, clock.now()) is not None
        uow.promo_codes.release_capacity_many({first.promo_code_id: 1}, clock.now())
        uow.campaigns.release_capacity_many({first.campaign_id: 1}, clock.now())
        uow.commit()
    second = redemptions.redeem(1, "SPRING26", "k2")
    assert second.accepted and second.redemption is not None and second.redemption.id != first.id
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]


def test_already_used_beats_first_purchase_only(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    create(campaigns, "WELCOME1", target_scope=TargetScope.FIRST_PURCHASE_ONLY)
    assert redemptions.redeem(1, "WELCOME1", "k1").accepted
    add_purchase(store, 1, PurchaseStatus.PAID, clock.now())
    assert redemptions.redeem(1, "WELCOME1", "k2").result is RedeemResult.ALREADY_USED


def test_lost_race_for_the_live_redemption_is_already_used_and_the_claim_is_undone(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, hasher: CodeHasher,
    store: MemoryStore,
) -> None:
    campaign, code = create(campaigns, "SPRING26", max_total_uses=5, per_user_limit=5)
    assert redemptions.redeem(1, "SPRING26", "k1").accepted

    def before_the_other_request_committed(snap: RedeemSnapshot) -> RedeemSnapshot:
        return attrs.evolve(snap, live=None, held_slots=())

    out = RedemptionService(stale_reads(store, before_the_other_request_committed), clock, hasher).redeem(
        1, "SPRING26", "k2")
    assert out.result is RedeemResult.ALREADY_USED
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]
    assert len(store.redemptions) == 1
    # The failed attempt survives the rolled-back redemption transaction.
    assert attempts(store)[-1].result is RedeemResult.ALREADY_USED


# --- NOT_APPLICABLE by target scope (check 8) ---------------------------------------------------------------


@pytest.mark.parametrize("status", [PurchaseStatus.PAID, PurchaseStatus.REFUNDED])
def test_first_purchase_only_code_is_not_applicable_after_a_purchase(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore,
    status: PurchaseStatus,
) -> None:
    campaign, code = create(campaigns, "WELCOME1", target_scope=TargetScope.FIRST_PURCHASE_ONLY)
    add_purchase(store, 1, status, clock.now())
    assert redemptions.redeem(1, "WELCOME1", "k").result is RedeemResult.NOT_APPLICABLE
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 0  # type: ignore[index]
    assert attempts(store)[-1].result is RedeemResult.NOT_APPLICABLE


@pytest.mark.parametrize("status", [PurchaseStatus.CREATED, PurchaseStatus.INVOICE_SENT, PurchaseStatus.FAILED])
def test_first_purchase_only_code_is_fine_without_a_paid_purchase(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore,
    status: PurchaseStatus,
) -> None:
    create(campaigns, "WELCOME1", target_scope=TargetScope.FIRST_PURCHASE_ONLY)
    add_purchase(store, 1, status, clock.now())
    assert redemptions.redeem(1, "WELCOME1", "k").accepted


def test_another_users_purchase_does_not_matter_and_scope_all_ignores_purchases(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    create(campaigns, "WELCOME1", target_scope=TargetScope.FIRST_PURCHASE_ONLY)
    create(campaigns, "EVERYONE1")
    add_purchase(store, 2, PurchaseStatus.PAID, clock.now())
    assert redemptions.redeem(1, "WELCOME1", "k1").accepted
    assert redemptions.redeem(2, "EVERYONE1", "k2").accepted
