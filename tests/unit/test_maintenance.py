"""SPEC 3 and 6: reservation expiry, campaign status rollover, stale-invoice expiry; admin transitions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.checkout import CheckoutService
from domain.errors import InvalidTransition
from domain.maintenance import MaintenanceService
from domain.model import Campaign, CampaignStatus, PromoType, PurchaseStatus, RedemptionStatus
from domain.policy import PromoPolicy
from domain.redemption import RedemptionService
from tests.conftest import T0


@pytest.fixture
def jobs(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, policy: PromoPolicy) -> MaintenanceService:
    return MaintenanceService(uow_factory, clock, policy)


@pytest.fixture
def checkout(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> CheckoutService:
    return CheckoutService(uow_factory, clock)


def discount(campaigns: CampaignService, code: str = "SPRING20", max_uses: int | None = None,
             valid_minutes: int | None = None) -> Campaign:
    valid_until = None if valid_minutes is None else T0 + timedelta(minutes=valid_minutes)
    return campaigns.create(CampaignSpec(campaign_name="spring", promo_type=PromoType.PERCENT_DISCOUNT,
                                         discount_percent=20, max_total_uses=max_uses, valid_until=valid_until),
                            code)


def state(uow_factory: InMemoryUnitOfWorkFactory, campaign: Campaign) -> Campaign:
    assert campaign.id is not None
    return uow_factory.store.campaigns[campaign.id]


def statuses(uow_factory: InMemoryUnitOfWorkFactory) -> list[RedemptionStatus]:
    return [r.status for r in sorted(uow_factory.store.redemptions.values(), key=lambda r: r.id or 0)]


# --- run_promo_reservation_expiry -------------------------------------------------------------------------


def test_reservation_past_reserved_until_expires_and_gives_its_unit_back_once(
    jobs: MaintenanceService, campaigns: CampaignService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    c = discount(campaigns, max_uses=3)
    redemptions.redeem(1, "SPRING20", "a")
    redemptions.redeem(2, "SPRING20", "b")
    assert state(uow_factory, c).used_total == 2
    clock.advance(minutes=14, seconds=59)
    assert jobs.expire_reservations().expired == 0
    clock.advance(seconds=1)
    summary = jobs.expire_reservations()
    assert summary.as_dict() == {"scanned": 2, "expired": 2, "batches": 1}
    assert statuses(uow_factory) == [RedemptionStatus.EXPIRED, RedemptionStatus.EXPIRED]
    assert state(uow_factory, c).used_total == 0
    assert jobs.expire_reservations().expired == 0  # a second run changes nothing
    assert state(uow_factory, c).used_total == 0


def test_an_expired_reservation_lets_the_user_redeem_again(
    jobs: MaintenanceService, campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock,
) -> None:
    discount(campaigns, max_uses=1)
    assert redemptions.redeem(1, "SPRING20", "a").accepted
    assert not redemptions.redeem(2, "SPRING20", "b").accepted  # DEPLETED while reserved
    clock.advance(minutes=15)
    jobs.expire_reservations()
    assert redemptions.redeem(1, "SPRING20", "c").accepted


def test_a_reservation_bound_to_an_open_purchase_never_expires(
    jobs: MaintenanceService, checkout: CheckoutService, campaigns: CampaignService,
    redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    c = discount(campaigns)
    r = redemptions.redeem(1, "SPRING20", "a").redemption
    assert r is not None
    checkout.init(1, "PREMIUM_30D", r.id)
    clock.advance(minutes=29)
    assert jobs.expire_reservations().expired == 0
    assert statuses(uow_factory) == [RedemptionStatus.RESERVED]
    clock.advance(minutes=2)  # the invoice is now stale: unbound first, then free to expire
    assert jobs.expire_stale_invoices().unbound == 1
    assert jobs.expire_reservations().expired == 1
    assert statuses(uow_factory) == [RedemptionStatus.EXPIRED]
    assert state(uow_factory, c).used_total == 0


def test_applied_and_granted_redemptions_are_never_expired(
    jobs: MaintenanceService, campaigns: CampaignService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    campaigns.create(CampaignSpec(campaign_name="gift", promo_type=PromoType.PREMIUM_GRANT,
                                  grant_plan_code="PREMIUM", grant_days=7), "GIFT7DAYS")
    redemptions.redeem(1, "GIFT7DAYS", "g")
    clock.advance(days=2)
    assert jobs.expire_reservations().expired == 0
    assert statuses(uow_factory) == [RedemptionStatus.APPLIED]


def test_expiry_works_in_bounded_batches(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, campaigns: CampaignService,
    redemptions: RedemptionService,
) -> None:
    c = discount(campaigns)
    for user in range(1, 6):
        redemptions.redeem(user, "SPRING20", f"k{user}")
    clock.advance(minutes=16)
    small = MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=2))
    assert small.expire_reservations().as_dict() == {"scanned": 5, "expired": 5, "batches": 3}
    assert state(uow_factory, c).used_total == 0
    capped = MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=2), max_batches=1)
    for user in range(6, 11):
        redemptions.redeem(user, "SPRING20", f"k{user}")
    clock.advance(minutes=16)
    assert capped.expire_reservations().expired == 2  # the rest waits for the next run
    assert small.expire_reservations().expired == 3


# --- run_promo_campaign_status_rollover -------------------------------------------------------------------


def test_rollover_expires_active_and_paused_campaigns_past_valid_until(
    jobs: MaintenanceService, campaigns: CampaignService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock,
) -> None:
    active = discount(campaigns, "ACTIVE01", valid_minutes=60)
    paused = discount(campaigns, "PAUSED01", valid_minutes=60)
    later = discount(campaigns, "LATER001", valid_minutes=61)
    forever = discount(campaigns, "FOREVER1")
    assert paused.id is not None
    campaigns.set_status(paused.id, CampaignStatus.PAUSED)
    clock.advance(minutes=59, seconds=59)
    assert jobs.rollover_campaign_statuses().expired == 0
    clock.advance(seconds=1)  # now >= valid_until
    assert jobs.rollover_campaign_statuses().as_dict() == {"expired": 2, "depleted": 0, "batches": 2}
    assert [state(uow_factory, c).status for c in (active, paused, later, forever)] == [
        CampaignStatus.EXPIRED, CampaignStatus.EXPIRED, CampaignStatus.ACTIVE, CampaignStatus.ACTIVE]
    assert state(uow_factory, paused).paused_reason is None
    assert jobs.rollover_campaign_statuses().expired == 0


def test_rollover_depletes_only_when_used_up_and_nothing_is_reserved(
    jobs: MaintenanceService, campaigns: CampaignService, redemptions: RedemptionService,
    checkout: CheckoutService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    c = discount(campaigns, max_uses=2)
    first = redemptions.redeem(1, "SPRING20", "a").redemption
    redemptions.redeem(2, "SPRING20", "b")
    assert first is not None and first.id is not None
    assert jobs.rollover_campaign_statuses().depleted == 0  # two reservations may still expire
    p = checkout.init(1, "PREMIUM_30D", first.id)
    assert p.id is not None
    checkout.successful_payment(p.id, "ch", 120)
    assert jobs.rollover_campaign_statuses().depleted == 0  # user 2 still holds a reservation
    clock.advance(minutes=15)
    jobs.expire_reservations()  # user 2's unit comes back: not used up any more
    assert jobs.rollover_campaign_statuses().depleted == 0
    assert redemptions.redeem(3, "SPRING20", "c").redemption is not None
    with uow_factory() as uow:
        r3 = uow.redemptions.get_by_idempotency_key("c")
        assert r3 is not None and r3.id is not None
        uow.redemptions.revoke(r3.id, clock.now())  # REVOKED keeps its unit (audit-conservative)
        uow.commit()
    assert jobs.rollover_campaign_statuses().as_dict() == {"expired": 0, "depleted": 1, "batches": 2}
    assert state(uow_factory, c).status is CampaignStatus.DEPLETED
    assert jobs.rollover_campaign_statuses().depleted == 0


def test_a_paused_used_up_campaign_is_not_depleted(
    jobs: MaintenanceService, campaigns: CampaignService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    c = campaigns.create(CampaignSpec(campaign_name="gift", promo_type=PromoType.PREMIUM_GRANT,
                                      grant_plan_code="PREMIUM", grant_days=7, max_total_uses=1), "GIFT7DAYS")
    assert c.id is not None
    redemptions.redeem(1, "GIFT7DAYS", "g")
    campaigns.set_status(c.id, CampaignStatus.PAUSED)
    assert jobs.rollover_campaign_statuses().depleted == 0
    assert state(uow_factory, c).status is CampaignStatus.PAUSED


# --- admin transitions around the jobs ------------------------------------------------------------------------


def test_same_state_admin_request_is_a_no_op(campaigns: CampaignService, clock: ManualClock) -> None:
    c = discount(campaigns)
    assert c.id is not None
    clock.advance(minutes=5)
    assert campaigns.set_status(c.id, CampaignStatus.ACTIVE) == c
    paused = campaigns.set_status(c.id, CampaignStatus.PAUSED)
    clock.advance(minutes=5)
    assert campaigns.set_status(c.id, CampaignStatus.PAUSED) == paused


def test_depleted_and_expired_campaigns_cannot_be_reactivated_or_paused(
    jobs: MaintenanceService, campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock,
) -> None:
    gift = campaigns.create(CampaignSpec(campaign_name="gift", promo_type=PromoType.PREMIUM_GRANT,
                                         grant_plan_code="PREMIUM", grant_days=7, max_total_uses=1), "GIFT7DAYS")
    old = discount(campaigns, valid_minutes=10)
    redemptions.redeem(1, "GIFT7DAYS", "g")
    clock.advance(minutes=10)
    jobs.rollover_campaign_statuses()
    for c, status in ((gift, "DEPLETED"), (old, "EXPIRED")):
        assert c.id is not None
        for target in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
            with pytest.raises(InvalidTransition) as err:
                campaigns.set_status(c.id, target)
            assert err.value.code == "INVALID_TRANSITION" and err.value.details["from"] == status


# --- run_payment_invoice_expiry -----------------------------------------------------------------------------


def test_stale_invoices_fail_and_release_their_reservation(
    jobs: MaintenanceService, checkout: CheckoutService, campaigns: CampaignService,
    redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    discount(campaigns)
    r = redemptions.redeem(1, "SPRING20", "a").redemption
    assert r is not None and r.id is not None
    stale_created = checkout.init(1, "PREMIUM_30D", r.id)
    stale_sent = checkout.init(2, "PREMIUM_7D")
    paid = checkout.init(3, "PREMIUM_7D")
    assert stale_sent.id is not None and paid.id is not None and stale_created.id is not None
    checkout.mark_invoice_sent(stale_sent.id)
    checkout.successful_payment(paid.id, "ch", 50)
    clock.advance(minutes=20)
    fresh = checkout.init(4, "PREMIUM_7D")
    clock.advance(minutes=10)  # exactly 30 minutes old is not older than the TTL yet
    assert jobs.expire_stale_invoices().failed == 0
    clock.advance(seconds=1)
    assert jobs.expire_stale_invoices().as_dict() == {"scanned": 2, "failed": 2, "unbound": 1, "batches": 1}
    got = {p.id: p.status for p in uow_factory.store.purchases.values()}
    assert got == {stale_created.id: PurchaseStatus.FAILED, stale_sent.id: PurchaseStatus.FAILED,
                   paid.id: PurchaseStatus.PAID, fresh.id: PurchaseStatus.CREATED}
    assert uow_factory.store.redemptions[r.id].purchase_id is None
    assert jobs.expire_stale_invoices().failed == 0
    assert checkout.precheckout(stale_sent.id, 50).error_code == "PURCHASE_NOT_PAYABLE"
