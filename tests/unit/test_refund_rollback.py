"""SPEC 6 and 7: refunded purchases revoke their promo redemption (job and manual), used_total untouched."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest

from adapters.memory import InMemoryPaymentGateway, InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.checkout import CheckoutService
from domain.errors import CodeExists, InvalidTransition, NoPromoRedemption, NotFound, PurchaseNotRefunded
from domain.maintenance import MaintenanceService
from domain.model import LedgerSource, PromoType, PurchaseStatus, RedemptionStatus
from domain.policy import PromoPolicy
from domain.redemption import RedemptionService

USER = 51


@pytest.fixture
def checkout(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> CheckoutService:
    return CheckoutService(uow_factory, clock)


@pytest.fixture
def jobs(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> MaintenanceService:
    return MaintenanceService(uow_factory, clock, PromoPolicy())


def paid_with_promo(campaigns: CampaignService, redemptions: RedemptionService, checkout: CheckoutService,
                    user: int = USER, code: str = "REFUND30") -> tuple[int, int]:
    with contextlib.suppress(CodeExists):  # the second user finds the campaign there
        campaigns.create(CampaignSpec(campaign_name="r", promo_type=PromoType.PERCENT_DISCOUNT,
                                      discount_percent=30, max_total_uses=10), code)
    r = redemptions.redeem(user, code, f"key-{user}").redemption
    assert r is not None and r.id is not None
    p = checkout.init(user, "PREMIUM_30D", r.id)
    assert p.id is not None
    checkout.mark_invoice_sent(p.id)
    checkout.successful_payment(p.id, f"charge-{user}", 105)
    return p.id, r.id


def used_total(uow_factory: InMemoryUnitOfWorkFactory) -> int:
    [c] = uow_factory.store.campaigns.values()
    return c.used_total


def test_job_revokes_the_redemption_of_a_refunded_purchase_and_keeps_used_total(
    jobs: MaintenanceService, checkout: CheckoutService, campaigns: CampaignService,
    redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    pid, rid = paid_with_promo(campaigns, redemptions, checkout)
    assert used_total(uow_factory) == 1
    clock.advance(days=1)
    checkout.refund(pid, InMemoryPaymentGateway())
    clock.advance(minutes=5)
    summary = jobs.rollback_refunded_promos()
    assert summary.as_dict() == {"scanned": 1, "revoked": 1, "entitlements_revoked": 0, "batches": 1}
    r = uow_factory.store.redemptions[rid]
    assert r.status is RedemptionStatus.REVOKED and r.revoked_at == clock.now()
    assert used_total(uow_factory) == 1  # audit-conservative: a revoked unit is not given back
    assert jobs.rollback_refunded_promos().revoked == 0  # replay
    # the days were taken back once, when the refund was marked
    assert [(e.source, e.days) for e in uow_factory.store.ledger] == [
        (LedgerSource.PURCHASE, 30), (LedgerSource.REFUND_REVOKE, -30)]


def test_job_takes_back_the_days_when_the_refund_was_recorded_elsewhere(
    jobs: MaintenanceService, checkout: CheckoutService, campaigns: CampaignService,
    redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    pid, rid = paid_with_promo(campaigns, redemptions, checkout)
    paid_until = uow_factory.store.entitlements[USER].expires_at
    with uow_factory() as uow:  # e.g. a host writing the purchase row itself
        uow.purchases.set_status(pid, [PurchaseStatus.PAID], PurchaseStatus.REFUNDED, clock.now())
        uow.commit()
    clock.advance(days=3)
    summary = jobs.rollback_refunded_promos()
    assert (summary.revoked, summary.entitlements_revoked) == (1, 1)
    revoke = uow_factory.store.ledger[-1]
    assert (revoke.source, revoke.days, revoke.purchase_id, revoke.promo_redemption_id) == (
        LedgerSource.REFUND_REVOKE, -30, pid, rid)
    assert uow_factory.store.entitlements[USER].expires_at == paid_until - timedelta(days=30) + timedelta(days=3)
    assert jobs.rollback_refunded_promos().as_dict()["entitlements_revoked"] == 0


def test_paid_and_promo_free_refunds_are_not_touched(
    jobs: MaintenanceService, checkout: CheckoutService, campaigns: CampaignService,
    redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    _, rid = paid_with_promo(campaigns, redemptions, checkout)
    plain = checkout.init(USER, "PREMIUM_7D")
    assert plain.id is not None
    checkout.successful_payment(plain.id, "plain", 50)
    checkout.mark_refunded(plain.id)
    assert jobs.rollback_refunded_promos().as_dict() == {"scanned": 0, "revoked": 0, "entitlements_revoked": 0,
                                                         "batches": 1}
    assert uow_factory.store.redemptions[rid].status is RedemptionStatus.APPLIED


def test_job_works_in_bounded_batches(
    checkout: CheckoutService, campaigns: CampaignService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    pids = [paid_with_promo(campaigns, redemptions, checkout, user=u)[0] for u in range(1, 6)]
    for pid in pids:
        checkout.mark_refunded(pid)
    small = MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=2))
    assert small.rollback_refunded_promos().as_dict() == {"scanned": 5, "revoked": 5, "entitlements_revoked": 0,
                                                          "batches": 3}
    assert {r.status for r in uow_factory.store.redemptions.values()} == {RedemptionStatus.REVOKED}


# --- manual rollback (POST /internal/promo/refund-rollback) --------------------------------------------------


def test_manual_rollback_revokes_then_replays(
    jobs: MaintenanceService, checkout: CheckoutService, campaigns: CampaignService,
    redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    pid, rid = paid_with_promo(campaigns, redemptions, checkout)
    checkout.mark_refunded(pid)
    first = jobs.rollback_refund(pid)
    assert first.as_dict() == {"purchase_id": pid, "redemption_id": rid, "status": "REVOKED", "replayed": False}
    assert jobs.rollback_refund(pid).as_dict() == {"purchase_id": pid, "redemption_id": rid, "status": "REVOKED",
                                                   "replayed": True}
    assert jobs.rollback_refunded_promos().revoked == 0
    assert used_total(uow_factory) == 1
    assert sum(1 for e in uow_factory.store.ledger if e.source is LedgerSource.REFUND_REVOKE) == 1


def test_manual_rollback_after_the_job_is_a_replay(
    jobs: MaintenanceService, checkout: CheckoutService, campaigns: CampaignService,
    redemptions: RedemptionService,
) -> None:
    pid, _ = paid_with_promo(campaigns, redemptions, checkout)
    checkout.mark_refunded(pid)
    jobs.rollback_refunded_promos()
    assert jobs.rollback_refund(pid).replayed


def test_manual_rollback_errors(
    jobs: MaintenanceService, checkout: CheckoutService, campaigns: CampaignService,
    redemptions: RedemptionService,
) -> None:
    with pytest.raises(NotFound):
        jobs.rollback_refund(404)
    pid, _ = paid_with_promo(campaigns, redemptions, checkout)
    with pytest.raises(PurchaseNotRefunded) as not_refunded:
        jobs.rollback_refund(pid)
    assert not_refunded.value.code == "PURCHASE_NOT_REFUNDED"
    plain = checkout.init(USER, "PREMIUM_7D")
    assert plain.id is not None
    checkout.successful_payment(plain.id, "plain", 50)
    checkout.mark_refunded(plain.id)
    with pytest.raises(NoPromoRedemption) as no_promo:
        jobs.rollback_refund(plain.id)
    assert no_promo.value.code == "NO_PROMO_REDEMPTION"


def test_a_refunded_payment_whose_reservation_had_expired_revokes_nothing(
    jobs: MaintenanceService, checkout: CheckoutService, campaigns: CampaignService,
    redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    """The invoice expired, the reservation with it, then the user paid: flagged for review, and its refund
    must not touch a redemption this purchase never applied."""
    campaigns.create(CampaignSpec(campaign_name="r", promo_type=PromoType.PERCENT_DISCOUNT,
                                  discount_percent=30), "LATEPAY1")
    r = redemptions.redeem(USER, "LATEPAY1", "late").redemption
    assert r is not None and r.id is not None
    p = checkout.init(USER, "PREMIUM_30D", r.id)
    assert p.id is not None
    clock.advance(minutes=31)
    jobs.expire_stale_invoices()
    jobs.expire_reservations()
    assert checkout.successful_payment(p.id, "late-charge", 105).purchase.review_reason is not None
    checkout.mark_refunded(p.id)
    assert jobs.rollback_refunded_promos().revoked == 0
    with pytest.raises(InvalidTransition):
        jobs.rollback_refund(p.id)
    assert uow_factory.store.redemptions[r.id].status is RedemptionStatus.EXPIRED
