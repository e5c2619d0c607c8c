"""SPEC 4: redeem — ACCEPTED: PERCENT_DISCOUNT and STARS_DISCOUNT reservations, PREMIUM_GRANT applied in one unit of
work with its entitlement and ledger entry, and a crash at any point leaving nothing behind.

The other checks of SPEC 4: test_redeem_idempotency.py (check 1), test_redeem_input.py (input validation, checks 2-3
and the attempts written), test_redeem_states.py (checks 4-6 at both levels), test_redeem_user_checks.py (checks
7-8). The campaign's budget and per-user limit across its codes: test_campaign_limits.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from adapters.memory import InMemoryUnitOfWork, InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain.campaigns import CampaignService
from domain.codes import CodeHasher
from domain.model import Entitlement, LedgerSource, RedeemResult, RedemptionStatus
from domain.policy import PromoPolicy
from domain.redemption import RedemptionService
from tests.unit.promo_setup import ACTIVE, GRANT, STARS, create, force_campaign
from tests.unit.redeem_setup import Override, patched_factory

# --- ACCEPTED ----------------------------------------------------------------------------------------


def test_discount_code_is_accepted_as_a_reservation_for_fifteen_minutes(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "SPRING26", max_total_uses=10, code_cap=5)
    out = redemptions.redeem(42, " spring-26 ", "key-1")
    assert out.result is RedeemResult.ACCEPTED and out.accepted and not out.replayed
    r = out.redemption
    assert r is not None and r.id is not None
    assert (r.promo_code_id, r.campaign_id, r.user_id, r.idempotency_key) == (code.id, campaign.id, 42, "key-1")
    assert r.status is RedemptionStatus.RESERVED and r.user_slot == 1
    assert r.discount_percent == 20 and r.discount_stars is None
    assert r.reserved_until == clock.now() + timedelta(minutes=15)
    assert r.purchase_id is None and r.applied_purchase_id is None
    assert r.created_at == r.updated_at == clock.now()
    # The outcome carries the code and the campaign as the claim left them: one unit taken from each.
    assert out.code is not None and out.code.id == code.id and out.code.used_total == 1
    assert out.campaign is not None and out.campaign.id == campaign.id and out.campaign.used_total == 1
    assert store.codes[code.id].used_total == 1  # type: ignore[index]
    assert store.campaigns[campaign.id].used_total == 1  # type: ignore[index]
    assert store.redemptions[r.id] == r
    # A discount grants nothing by itself.
    assert store.entitlements == {} and store.ledger == []


def test_stars_discount_code_is_a_reservation_carrying_the_stars_off(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "STARS40", STARS, discount_stars=40)
    out = redemptions.redeem(5, "stars40", "k")
    r = out.redemption
    assert out.accepted and r is not None and r.id is not None
    assert r.status is RedemptionStatus.RESERVED and r.is_reservation
    assert (r.discount_stars, r.discount_percent) == (40, None)
    assert r.reserved_until == clock.now() + timedelta(minutes=15)
    # A snapshot: the reservation keeps its Stars whatever the campaign row says later.
    force_campaign(store, campaign, ACTIVE, discount_stars=99)
    assert store.redemptions[r.id].discount_stars == 40
    assert store.entitlements == {} and store.ledger == []


def test_reservation_ttl_is_configurable(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher, campaigns: CampaignService
) -> None:
    create(campaigns, "SHORT1")
    service = RedemptionService(uow_factory, clock, hasher, PromoPolicy(reservation_ttl_minutes=3))
    r = service.redeem(1, "SHORT1", "k").redemption
    assert r is not None and r.reserved_until == clock.now() + timedelta(minutes=3)


def test_discount_percent_is_a_snapshot_of_the_campaign(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "SNAP1", discount_percent=35)
    r = redemptions.redeem(1, "SNAP1", "k").redemption
    assert r is not None and r.id is not None and r.discount_percent == 35
    force_campaign(store, campaign, ACTIVE, discount_percent=50)
    assert store.redemptions[r.id].discount_percent == 35


def test_grant_code_is_applied_with_entitlement_and_ledger_entry(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "GIFT30", GRANT)
    out = redemptions.redeem(7, "gift30", "grant-1")
    assert out.result is RedeemResult.ACCEPTED
    r = out.redemption
    assert r is not None
    assert r.status is RedemptionStatus.APPLIED and (r.promo_code_id, r.campaign_id) == (code.id, campaign.id)
    assert r.discount_percent is None and r.discount_stars is None and r.reserved_until is None
    assert store.entitlements[7] == Entitlement(7, "PREMIUM", clock.now() + timedelta(days=30), clock.now())
    [entry] = store.ledger
    assert (entry.user_id, entry.plan_code, entry.days, entry.source) == (7, "PREMIUM", 30, LedgerSource.PROMO_GRANT)
    assert entry.promo_redemption_id == r.id and entry.purchase_id is None
    assert entry.expires_at_after == clock.now() + timedelta(days=30)
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]


def test_grant_extends_an_active_entitlement_from_its_end(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    ends = clock.now() + timedelta(days=10)
    store.entitlements[7] = Entitlement(7, "PREMIUM", ends, clock.now())
    create(campaigns, "GIFT30", GRANT)
    assert redemptions.redeem(7, "GIFT30", "k").accepted
    assert store.entitlements[7].expires_at == ends + timedelta(days=30)
    assert store.ledger[0].expires_at_after == ends + timedelta(days=30)


def test_grant_starts_from_now_when_the_old_entitlement_has_ended(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    store.entitlements[7] = Entitlement(7, "PREMIUM", clock.now() - timedelta(days=3), clock.now())
    create(campaigns, "GIFT30", GRANT)
    assert redemptions.redeem(7, "GIFT30", "k").accepted
    assert store.entitlements[7].expires_at == clock.now() + timedelta(days=30)


def test_crash_after_the_capacity_claim_leaves_nothing_behind(
    campaigns: CampaignService, clock: ManualClock, hasher: CodeHasher, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "GIFT30", GRANT, max_total_uses=5, code_cap=5)

    def claim_then_fail(uow: InMemoryUnitOfWork) -> None:
        real = uow.promo_codes

        def claim_capacity(*args: Any) -> Any:
            real.claim_capacity(*args)
            raise RuntimeError("database went away")

        uow.promo_codes = Override(real, claim_capacity=claim_capacity)

    crashing = RedemptionService(patched_factory(store, claim_then_fail), clock, hasher)
    with pytest.raises(RuntimeError, match="went away"):
        crashing.redeem(7, "GIFT30", "k1")
    # The claim on both levels, the redemption, the entitlement and the ledger entry were rolled back together.
    assert store.codes[code.id].used_total == 0  # type: ignore[index]
    assert store.campaigns[campaign.id].used_total == 0  # type: ignore[index]
    assert store.redemptions == {}
    assert store.entitlements == {} and store.ledger == []
    assert not store.lock._is_owned()  # type: ignore[attr-defined]
    # The same request succeeds once the fault is gone.
    healthy = RedemptionService(InMemoryUnitOfWorkFactory(store), clock, hasher)
    out = healthy.redeem(7, "GIFT30", "k1")
    assert out.accepted and not out.replayed
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]
    assert len(store.ledger) == 1


def test_crash_while_granting_the_entitlement_rolls_back_redemption_and_claim(
    campaigns: CampaignService, clock: ManualClock, hasher: CodeHasher, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "GIFT30", GRANT)

    def entitlements_fail(uow: InMemoryUnitOfWork) -> None:
        def put(ent: Entitlement) -> None:
            raise ConnectionError("lost")

        uow.entitlements = Override(uow.entitlements, put=put)

    with pytest.raises(ConnectionError):
        RedemptionService(patched_factory(store, entitlements_fail), clock, hasher).redeem(7, "GIFT30", "k1")
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 0  # type: ignore[index]
    assert store.redemptions == {} and store.entitlements == {} and store.ledger == [] and store.attempts == []
