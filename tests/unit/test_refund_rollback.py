"""SPEC 6 and 7: refunded purchases revoke their promo redemption (job and manual); the code's and the campaign's
``used_total`` stay (audit-conservative). A person's rollback is one audit entry; the job's and a replay are none."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.memory import InMemoryPaymentGateway, InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.checkout import CheckoutService
from domain.codes import CodeHasher
from domain.errors import InvalidTransition, NoPromoRedemption, NotFound, PurchaseNotRefunded
from domain.maintenance import MaintenanceService
from domain.model import AuditEntry, Campaign, LedgerSource, PromoCode, PromoType, PurchaseStatus, RedemptionStatus
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService

USER = 51
PERSON = "alice"
ROLLED_BACK = "purchase.refund_rolled_back"
CODES = ("REFUND30", "REFUND31")


@pytest.fixture
def jobs(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> MaintenanceService:
    return MaintenanceService(uow_factory, clock, PromoPolicy())


@pytest.fixture
def promo(campaigns: CampaignService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
          hasher: CodeHasher) -> tuple[Campaign, list[PromoCode]]:
    """A 30 % campaign with a budget of 10 and two codes."""
    c, first = campaigns.create(CampaignSpec(name="refunds", promo_type=PromoType.PERCENT_DISCOUNT,
                                             discount_percent=30, max_total_uses=10), actor=PERSON, code=CODES[0])
    assert c.id is not None and first is not None
    second = CodeService(uow_factory, clock, hasher).add(c.id, CODES[1], actor=PERSON)
    return c, [first, second]


def paid_with_promo(redemptions: RedemptionService, checkout: CheckoutService, user: int = USER,
                    code: str = CODES[0]) -> tuple[int, int]:
    """The user's PREMIUM_30D bought with a reservation of ``code`` (105 Stars): (purchase id, redemption id)."""
    r = redemptions.redeem(user, code, f"key-{user}").redemption
    assert r is not None and r.id is not None
    p = checkout.init(user, "PREMIUM_30D", r.id)
    assert p.id is not None
    checkout.mark_invoice_sent(p.id)
    checkout.successful_payment(p.id, f"charge-{user}", 105)
    return p.id, r.id


def used(uow_factory: InMemoryUnitOfWorkFactory, promo: tuple[Campaign, list[PromoCode]]) -> tuple[int, ...]:
    """The campaign's ``used_total``, then each code's."""
    c, codes = promo
    assert c.id is not None
    return (uow_factory.store.campaigns[c.id].used_total,
            *(uow_factory.store.codes[code.id].used_total for code in codes if code.id is not None))


def rollbacks(uow_factory: InMemoryUnitOfWorkFactory) -> list[AuditEntry]:
    return [e for e in uow_factory.store.audit if e.action == ROLLED_BACK]


# --- run_refund_promo_rollback ------------------------------------------------------------------------------


def test_job_revokes_the_redemption_of_a_refunded_purchase_and_keeps_used_total_at_both_levels(
    jobs: MaintenanceService, checkout: CheckoutService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, promo: tuple[Campaign, list[PromoCode]],
) -> None:
    pid, rid = paid_with_promo(redemptions, checkout)
    paid_with_promo(redemptions, checkout, user=USER + 1, code=CODES[1])
    assert used(uow_factory, promo) == (2, 1, 1)
    clock.advance(days=1)
    checkout.refund(pid, InMemoryPaymentGateway(), actor=PERSON)
    clock.advance(minutes=5)
    summary = jobs.rollback_refunded_promos()
    assert summary.as_dict() == {"scanned": 1, "revoked": 1, "entitlements_revoked": 0, "batches": 1}
    r = uow_factory.store.redemptions[rid]
    assert r.status is RedemptionStatus.REVOKED and r.revoked_at == clock.now()
    assert used(uow_factory, promo) == (2, 1, 1)  # audit-conservative: a revoked unit is not given back
    assert jobs.rollback_refunded_promos().revoked == 0  # replay
    # the days were taken back once, when the refund was marked
    assert [(e.source, e.days) for e in uow_factory.store.ledger if e.user_id == USER] == [
        (LedgerSource.PURCHASE, 30), (LedgerSource.REFUND_REVOKE, -30)]
    assert rollbacks(uow_factory) == []  # the job is no person: its rollbacks are no audit entries


def test_job_takes_back_the_days_when_the_refund_was_recorded_elsewhere(
    jobs: MaintenanceService, checkout: CheckoutService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, promo: tuple[Campaign, list[PromoCode]],
) -> None:
    pid, rid = paid_with_promo(redemptions, checkout)
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
    assert used(uow_factory, promo) == (1, 1, 0)


def test_paid_and_promo_free_refunds_are_not_touched(
    jobs: MaintenanceService, checkout: CheckoutService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, promo: tuple[Campaign, list[PromoCode]],
) -> None:
    _, rid = paid_with_promo(redemptions, checkout)
    plain = checkout.init(USER, "PREMIUM_7D")
    assert plain.id is not None
    checkout.successful_payment(plain.id, "plain", 50)
    checkout.mark_refunded(plain.id)
    assert jobs.rollback_refunded_promos().as_dict() == {"scanned": 0, "revoked": 0, "entitlements_revoked": 0,
                                                         "batches": 1}
    assert uow_factory.store.redemptions[rid].status is RedemptionStatus.APPLIED


def test_job_works_in_bounded_batches(
    checkout: CheckoutService, redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, promo: tuple[Campaign, list[PromoCode]],
) -> None:
    pids = [paid_with_promo(redemptions, checkout, user=u, code=CODES[u % 2])[0] for u in range(1, 6)]
    for pid in pids:
        checkout.mark_refunded(pid)
    small = MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=2))
    assert small.rollback_refunded_promos().as_dict() == {"scanned": 5, "revoked": 5, "entitlements_revoked": 0,
                                                          "batches": 3}
    assert {r.status for r in uow_factory.store.redemptions.values()} == {RedemptionStatus.REVOKED}
    assert used(uow_factory, promo) == (5, 2, 3)


# --- manual rollback (POST /internal/promo/refund-rollback) --------------------------------------------------


def test_manual_rollback_revokes_with_one_audit_entry_then_replays_without_one(
    jobs: MaintenanceService, checkout: CheckoutService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, promo: tuple[Campaign, list[PromoCode]],
) -> None:
    pid, rid = paid_with_promo(redemptions, checkout, code=CODES[1])
    checkout.mark_refunded(pid)
    first = jobs.rollback_refund(pid, actor=PERSON)
    assert first.as_dict() == {"purchase_id": pid, "redemption_id": rid, "status": "REVOKED", "replayed": False}
    [entry] = rollbacks(uow_factory)
    assert (entry.actor, entry.target_type, entry.target_id, entry.at) == (PERSON, "purchase", str(pid), clock.now())
    assert entry.details == {"redemption_id": rid, "campaign_id": promo[0].id}
    assert jobs.rollback_refund(pid, actor="bob").as_dict() == {"purchase_id": pid, "redemption_id": rid,
                                                                "status": "REVOKED", "replayed": True}
    assert jobs.rollback_refunded_promos().revoked == 0
    assert rollbacks(uow_factory) == [entry]
    assert used(uow_factory, promo) == (1, 0, 1)
    assert sum(1 for e in uow_factory.store.ledger if e.source is LedgerSource.REFUND_REVOKE) == 1


def test_manual_rollback_after_the_job_is_a_replay_without_an_audit_entry(
    jobs: MaintenanceService, checkout: CheckoutService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, promo: tuple[Campaign, list[PromoCode]],
) -> None:
    pid, _ = paid_with_promo(redemptions, checkout)
    checkout.mark_refunded(pid)
    jobs.rollback_refunded_promos()
    assert jobs.rollback_refund(pid, actor=PERSON).replayed
    assert rollbacks(uow_factory) == []


def test_manual_rollback_errors_write_no_audit_entry(
    jobs: MaintenanceService, checkout: CheckoutService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, promo: tuple[Campaign, list[PromoCode]],
) -> None:
    with pytest.raises(NotFound):
        jobs.rollback_refund(404, actor=PERSON)
    pid, _ = paid_with_promo(redemptions, checkout)
    with pytest.raises(PurchaseNotRefunded) as not_refunded:
        jobs.rollback_refund(pid, actor=PERSON)
    assert not_refunded.value.code == "PURCHASE_NOT_REFUNDED"
    plain = checkout.init(USER, "PREMIUM_7D")
    assert plain.id is not None
    checkout.successful_payment(plain.id, "plain", 50)
    checkout.mark_refunded(plain.id)
    with pytest.raises(NoPromoRedemption) as no_promo:
        jobs.rollback_refund(plain.id, actor=PERSON)
    assert no_promo.value.code == "NO_PROMO_REDEMPTION"
    assert rollbacks(uow_factory) == []


def test_a_refunded_payment_whose_reservation_had_expired_revokes_nothing(
    jobs: MaintenanceService, checkout: CheckoutService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, promo: tuple[Campaign, list[PromoCode]],
) -> None:
    """The invoice expired, the reservation with it, then the user paid: flagged for review, and its refund
    must not touch a redemption this purchase never applied."""
    r = redemptions.redeem(USER, CODES[0], "late").redemption
    assert r is not None and r.id is not None
    p = checkout.init(USER, "PREMIUM_30D", r.id)
    assert p.id is not None
    clock.advance(minutes=31)
    jobs.expire_stale_invoices()
    jobs.expire_reservations()
    assert used(uow_factory, promo) == (0, 0, 0)
    assert checkout.successful_payment(p.id, "late-charge", 105).purchase.review_reason is not None
    checkout.mark_refunded(p.id)
    assert jobs.rollback_refunded_promos().revoked == 0
    with pytest.raises(InvalidTransition):
        jobs.rollback_refund(p.id, actor=PERSON)
    assert uow_factory.store.redemptions[r.id].status is RedemptionStatus.EXPIRED
    assert rollbacks(uow_factory) == [] and used(uow_factory, promo) == (0, 0, 0)


def test_refunds_flagged_for_review_never_hold_back_the_rollback_of_later_refunds(
    checkout: CheckoutService, redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, promo: tuple[Campaign, list[PromoCode]],
) -> None:
    jobs = MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=2))
    late = []
    for user in (1, 2):  # paid after the invoice and the reservation expired, then refunded
        r = redemptions.redeem(user, CODES[0], f"late-{user}").redemption
        assert r is not None and r.id is not None
        late.append(checkout.init(user, "PREMIUM_30D", r.id))
    clock.advance(minutes=31)
    jobs.expire_stale_invoices()
    jobs.expire_reservations()
    for p in late:
        assert p.id is not None
        assert checkout.successful_payment(p.id, f"late-{p.id}", 105).purchase.review_reason is not None
        checkout.mark_refunded(p.id)
    pid, rid = paid_with_promo(redemptions, checkout, user=3)
    checkout.mark_refunded(pid)
    jobs.rollback_refunded_promos()
    assert uow_factory.store.redemptions[rid].status is RedemptionStatus.REVOKED
