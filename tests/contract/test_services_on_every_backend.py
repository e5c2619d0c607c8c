"""The domain's main flows on every backend: what works on memory works the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from adapters.memory import InMemoryPaymentGateway, ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.checkout import CheckoutService
from domain.codes import CodeHasher
from domain.dashboard import DashboardService
from domain.maintenance import MaintenanceService
from domain.model import (
    AuditFilter,
    CampaignStatus,
    PausedReason,
    PromoType,
    PurchaseStatus,
    RedeemResult,
    RedemptionStatus,
)
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService
from ports.repositories import UnitOfWork

Factory = Callable[[], UnitOfWork]


def test_a_grant_code_redeems_once_per_user_extends_the_entitlement_and_is_replayed_by_key(
    uow_factory: Factory, campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock,
) -> None:
    _, c = campaigns.create(CampaignSpec("gift", PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM", grant_days=30,
                                         max_total_uses=2), actor="test", code="GIFT-2026")
    assert c is not None
    first = redemptions.redeem(1, "gift 2026", "k1")
    assert first.result is RedeemResult.ACCEPTED and first.redemption is not None
    assert first.redemption.status is RedemptionStatus.APPLIED
    assert redemptions.redeem(1, "GIFT2026", "k1").replayed
    assert redemptions.redeem(2, "GIFT2026", "k1").result is RedeemResult.IDEMPOTENCY_KEY_REUSED
    assert redemptions.redeem(1, "GIFT2026", "k2").result is RedeemResult.ALREADY_USED
    assert redemptions.redeem(2, "GIFT2026", "k3").accepted
    assert redemptions.redeem(3, "GIFT2026", "k4").result is RedeemResult.DEPLETED
    with uow_factory() as uow:
        ent = uow.entitlements.get(1)
        assert ent is not None and ent.expires_at == clock.now() + timedelta(days=30)
        assert [e.days for e in uow.ledger.for_user(1)] == [30]
        assert (uow.promo_codes.get(c.id or 0) or c).used_total == 2
        campaign = uow.campaigns.get(c.campaign_id)
        assert campaign is not None and campaign.used_total == 2


def test_throttling_blocks_after_five_failures_and_says_until_when(
    redemptions: RedemptionService, clock: ManualClock,
) -> None:
    for i in range(5):
        assert redemptions.redeem(8, f"NOPE{i}XYZ", f"bad-{i}").result is RedeemResult.INVALID
    blocked = redemptions.redeem(8, "NOPE9XYZ", "bad-9")
    assert blocked.result is RedeemResult.RATE_LIMITED
    assert blocked.retry_after == clock.now() + timedelta(minutes=60)
    clock.advance(minutes=60)
    assert redemptions.redeem(8, "NOPE9XYZ", "bad-10").result is RedeemResult.INVALID


def test_a_discount_is_reserved_bought_paid_refunded_and_revoked(
    uow_factory: Factory, campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock,
) -> None:
    campaigns.create(CampaignSpec("spring", PromoType.PERCENT_DISCOUNT, discount_percent=20, max_total_uses=5),
                     actor="test", code="SPRING20")
    out = redemptions.redeem(4, "SPRING20", "s1")
    assert out.redemption is not None and out.redemption.status is RedemptionStatus.RESERVED
    checkout = CheckoutService(uow_factory, clock)
    purchase = checkout.init(4, "PREMIUM_30D", out.redemption.id)
    assert (purchase.base_stars_amount, purchase.discount_stars_amount, purchase.final_stars_amount) == (150, 30, 120)
    assert checkout.init(4, "PREMIUM_30D", out.redemption.id).id == purchase.id
    assert purchase.id is not None
    checkout.mark_invoice_sent(purchase.id)
    assert not checkout.precheckout(purchase.id, 150).ok
    assert checkout.precheckout(purchase.id, 120).ok
    jobs = MaintenanceService(uow_factory, clock, PromoPolicy())
    clock.advance(minutes=20)
    assert jobs.expire_reservations().expired == 0  # bound to an open purchase
    checkout.successful_payment(purchase.id, "charge-abc", 120)
    checkout.successful_payment(purchase.id, "charge-abc", 120)  # a replay changes nothing
    with uow_factory() as uow:
        r = uow.redemptions.get(out.redemption.id or 0)
        assert r is not None and r.status is RedemptionStatus.APPLIED and r.applied_purchase_id == purchase.id
        assert [e.days for e in uow.ledger.for_user(4)] == [30]
    refunded = checkout.refund(purchase.id, InMemoryPaymentGateway(), actor="test")
    assert refunded.status is PurchaseStatus.REFUNDED
    assert jobs.rollback_refunded_promos().revoked == 1
    assert jobs.rollback_refunded_promos().revoked == 0
    with uow_factory() as uow:
        r = uow.redemptions.get(out.redemption.id or 0)
        assert r is not None and r.status is RedemptionStatus.REVOKED
        c = uow.promo_codes.get(r.promo_code_id)
        assert c is not None and c.used_total == 1  # refund rollback never gives the unit back
        campaign = uow.campaigns.get(r.campaign_id)
        assert campaign is not None and campaign.used_total == 1


def test_expiry_rollover_and_guard_jobs(
    uow_factory: Factory, campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock,
) -> None:
    short, short_code = campaigns.create(CampaignSpec("short", PromoType.PERCENT_DISCOUNT, discount_percent=10,
                                                      valid_until=clock.now() + timedelta(hours=1)),
                                         actor="test", code="SHORT10")
    _, capped = campaigns.create(CampaignSpec("capped", PromoType.PERCENT_DISCOUNT, discount_percent=10),
                                 actor="test", code="CAPPED10", code_max_total_uses=1)
    _, abused = campaigns.create(CampaignSpec("abused", PromoType.PERCENT_DISCOUNT, discount_percent=10),
                                 actor="test", code="ABUSED10", code_max_total_uses=1)
    assert short_code is not None and capped is not None and abused is not None
    assert redemptions.redeem(1, "CAPPED10", "c1").accepted
    assert redemptions.redeem(2, "ABUSED10", "a0").accepted
    jobs = MaintenanceService(uow_factory, clock, PromoPolicy(guard_min_failures=6, guard_min_users=3,
                                                              fail_limit=100))
    for user in range(10, 16):
        assert redemptions.redeem(user, "ABUSED10", f"a{user}").result is RedeemResult.DEPLETED
    guard = jobs.run_bruteforce_guard()
    assert guard.paused == [abused.id]
    clock.advance(minutes=16)
    assert jobs.expire_reservations().expired == 2
    clock.advance(hours=1)
    rollover = jobs.rollover_campaign_statuses()
    assert (rollover.expired, rollover.depleted) == (1, 0)
    with uow_factory() as uow:
        assert (uow.campaigns.get(short.id or 0) or short).status is CampaignStatus.EXPIRED
        assert (uow.promo_codes.get(short_code.id or 0) or short_code).status is CampaignStatus.EXPIRED
        paused = uow.promo_codes.get(abused.id or 0)
        assert paused is not None and paused.paused_reason is PausedReason.AUTO_BRUTEFORCE
        assert (uow.promo_codes.get(capped.id or 0) or capped).used_total == 0
    dashboard = DashboardService(uow_factory, clock, PromoPolicy()).metrics(24)
    assert dashboard["conversion"]["attempts_total"] == 8
    assert dashboard["conversion"]["attempts_accepted"] == 2
    assert dashboard["failures"]["by_result"]["DEPLETED"] == 6
    assert dashboard["guard"]["paused_codes_total"] == 1
    assert dashboard["guard"]["paused_campaigns_total"] == 0


def test_a_giveaway_shares_its_budget_and_limits_each_user_across_its_codes(
    uow_factory: Factory, campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock,
    hasher: CodeHasher,
) -> None:
    giveaway, _ = campaigns.create(CampaignSpec("giveaway", PromoType.STARS_DISCOUNT, discount_stars=40,
                                                max_total_uses=3, per_user_limit=1), actor="test")
    assert giveaway.id is not None
    codes = [f"GIVE{i}ABCD" for i in range(5)]
    for code in codes:
        CodeService(uow_factory, clock, hasher).add(giveaway.id, code, 1, actor="test")
    assert redemptions.redeem(1, codes[0], "g1").accepted
    assert redemptions.redeem(1, codes[1], "g2").result is RedeemResult.ALREADY_USED
    assert redemptions.redeem(2, codes[1], "g3").accepted
    stars = redemptions.redeem(3, codes[2], "g4")
    assert stars.accepted and stars.redemption is not None and stars.redemption.discount_stars == 40
    assert redemptions.redeem(4, codes[3], "g5").result is RedeemResult.DEPLETED
    campaigns.set_status(giveaway.id, CampaignStatus.PAUSED, actor="test")
    assert redemptions.redeem(5, codes[4], "g6").result is RedeemResult.PAUSED
    with uow_factory() as uow:
        stored = uow.campaigns.get(giveaway.id)
        assert stored is not None and stored.used_total == 3
        actions = [e.action for e in uow.audit.search(AuditFilter(), 50, None)]
        assert actions.count("code.created") == 5 and actions.count("campaign.paused") == 1
