"""SPEC 5: refunds — marking a purchase refunded once (and taking the days back once), and the ops refund through
the payment gateway with its one audit entry."""

from __future__ import annotations

import pytest

from adapters.memory import InMemoryPaymentGateway, InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService
from domain.checkout import CheckoutService
from domain.errors import InvalidPurchaseState, NotFound, PaymentRefundError
from domain.model import AuditEntry, LedgerSource, PurchaseStatus
from domain.redemption import RedemptionService
from tests.unit.checkout_setup import ACTOR, REFUNDED, USER, reserve_stars


def _paid(checkout: CheckoutService, product: str = "PREMIUM_7D", amount: int = 50, charge: str = "ch") -> int:
    p = checkout.init(USER, product)
    assert p.id is not None
    checkout.successful_payment(p.id, charge, amount)
    return p.id


def test_mark_refunded_is_idempotent_and_takes_back_the_days_once(
    checkout: CheckoutService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    pid = _paid(checkout)
    refunded = checkout.mark_refunded(pid)
    assert refunded.status is PurchaseStatus.REFUNDED and refunded.refunded_at == clock.now()
    assert checkout.mark_refunded(pid) == refunded
    assert [(e.source, e.days) for e in uow_factory.store.ledger] == [
        (LedgerSource.PURCHASE, 7), (LedgerSource.REFUND_REVOKE, -7)]
    assert uow_factory.store.entitlements[USER].expires_at == clock.now()


def test_only_paid_purchases_can_be_marked_refunded(checkout: CheckoutService) -> None:
    p = checkout.init(USER, "PREMIUM_7D")
    assert p.id is not None
    with pytest.raises(InvalidPurchaseState):
        checkout.mark_refunded(p.id)
    with pytest.raises(NotFound):
        checkout.mark_refunded(404)


def refund_entries(uow_factory: InMemoryUnitOfWorkFactory) -> list[AuditEntry]:
    return [e for e in uow_factory.store.audit if e.action == REFUNDED]


def test_ops_refund_goes_through_the_gateway_once_with_one_audit_entry(
    checkout: CheckoutService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    gateway = InMemoryPaymentGateway()
    pid = _paid(checkout, charge="tg-charge-9")
    refunded = checkout.refund(pid, gateway, actor=ACTOR)
    assert refunded.status is PurchaseStatus.REFUNDED
    [entry] = refund_entries(uow_factory)
    assert (entry.actor, entry.target_type, entry.target_id, entry.at) == (ACTOR, "purchase", str(pid), clock.now())
    assert entry.details == {"final_stars_amount": 50, "promo_redemption_id": None}
    assert checkout.refund(pid, gateway, actor="bob") == refunded  # a replay: no second refund, no second entry
    assert gateway.refunds == [(USER, "tg-charge-9")]
    assert refund_entries(uow_factory) == [entry]


def test_a_refund_marked_without_a_person_writes_no_audit_entry(
    checkout: CheckoutService, uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    """Telegram's ``refunded_payment`` and reconciliation mark refunds made elsewhere: nobody here made them."""
    pid = _paid(checkout)
    checkout.mark_refunded(pid)
    assert refund_entries(uow_factory) == []
    other = _paid(checkout, "PREMIUM_30D", 150, "ch-2")
    checkout.mark_refunded(other, actor=ACTOR)
    checkout.mark_refunded(other, actor=ACTOR)
    assert [e.target_id for e in refund_entries(uow_factory)] == [str(other)]


def test_ops_refund_marks_a_charge_telegram_already_refunded(
    checkout: CheckoutService, uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    gateway = InMemoryPaymentGateway()
    pid = _paid(checkout, charge="c2")
    gateway.refund_star_payment(USER, "c2")  # refunded earlier, but never marked
    assert checkout.refund(pid, gateway, actor=ACTOR).status is PurchaseStatus.REFUNDED
    assert len(refund_entries(uow_factory)) == 1


def test_ops_refund_refused_by_telegram_changes_nothing(
    checkout: CheckoutService, uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    gateway = InMemoryPaymentGateway()
    gateway.refuse_refunds = True
    pid = _paid(checkout)
    with pytest.raises(PaymentRefundError):
        checkout.refund(pid, gateway, actor=ACTOR)
    assert checkout.get(pid).status is PurchaseStatus.PAID
    assert refund_entries(uow_factory) == []


def test_ops_refund_of_an_unpaid_purchase_is_an_invalid_state(
    checkout: CheckoutService, uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    p = checkout.init(USER, "PREMIUM_7D")
    assert p.id is not None
    with pytest.raises(InvalidPurchaseState) as err:
        checkout.refund(p.id, InMemoryPaymentGateway(), actor=ACTOR)
    assert err.value.code == "INVALID_PURCHASE_STATE"
    with pytest.raises(NotFound):
        checkout.refund(31337, InMemoryPaymentGateway(), actor=ACTOR)
    assert refund_entries(uow_factory) == []


def test_refunding_a_stars_discount_purchase_records_the_promo_and_the_price_paid(
    checkout: CheckoutService, campaigns: CampaignService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    r = reserve_stars(campaigns, redemptions, 100)
    p = checkout.init(USER, "PREMIUM_30D", r.id)
    assert p.id is not None
    checkout.successful_payment(p.id, "stars", 50)
    checkout.refund(p.id, InMemoryPaymentGateway(), actor=ACTOR)
    [entry] = refund_entries(uow_factory)
    assert entry.details == {"final_stars_amount": 50, "promo_redemption_id": r.id}
