"""SPEC 5: the purchase flow — one open purchase per user and product, the reservation checks of ``init``, the
invoice and pre-checkout, and the payment settled once by its charge id. Pricing is in test_checkout_pricing.py,
refunds in test_checkout_refunds.py, the catalog in test_products.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.memory import InMemoryUnitOfWork, InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.checkout import REVIEW_PROMO_NOT_RESERVED, CheckoutService
from domain.errors import CheckoutError, InvalidPurchaseState, NotFound, ValidationError
from domain.model import LedgerSource, PromoType, PurchaseStatus, RedemptionStatus
from domain.redemption import RedemptionService
from tests.unit.checkout_setup import ACTOR, OTHER, USER, redemption, reserve

# --- one open purchase -------------------------------------------------------------------------------------


def test_repeated_init_returns_the_open_purchase(checkout: CheckoutService, campaigns: CampaignService,
                                                 redemptions: RedemptionService) -> None:
    r = reserve(campaigns, redemptions)
    first = checkout.init(USER, "PREMIUM_30D", r.id)
    assert checkout.init(USER, "PREMIUM_30D", r.id) == first
    assert checkout.init(USER, "PREMIUM_30D") == first
    assert checkout.init(OTHER, "PREMIUM_30D").id != first.id
    assert checkout.init(USER, "PREMIUM_7D").id != first.id


class _Blind:
    """A purchases repository that misses the open purchase once: the state of a racing init."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def get_open(self, user_id: int, product_code: str) -> None:
        return None

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_init_racing_itself_returns_the_winner(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> None:
    winner = CheckoutService(uow_factory, clock).init(USER, "PREMIUM_7D")
    blind_rounds = [1]

    def racing_factory() -> InMemoryUnitOfWork:
        uow = uow_factory()
        if blind_rounds:
            blind_rounds.pop()
            uow.purchases = _Blind(uow.purchases)  # type: ignore[assignment]
        return uow

    assert CheckoutService(racing_factory, clock).init(USER, "PREMIUM_7D") == winner
    assert not blind_rounds and len(uow_factory.store.purchases) == 1


def test_a_new_reservation_supersedes_the_open_full_price_purchase(
    checkout: CheckoutService, campaigns: CampaignService, redemptions: RedemptionService,
) -> None:
    full = checkout.init(USER, "PREMIUM_30D")
    r = reserve(campaigns, redemptions, 20)
    discounted = checkout.init(USER, "PREMIUM_30D", r.id)
    assert discounted.id != full.id and discounted.final_stars_amount == 120
    assert checkout.get(full.id or 0).status is PurchaseStatus.FAILED


def test_a_reservation_moves_to_the_product_the_user_picks_last(
    checkout: CheckoutService, campaigns: CampaignService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    r = reserve(campaigns, redemptions, 50)
    week = checkout.init(USER, "PREMIUM_7D", r.id)
    month = checkout.init(USER, "PREMIUM_30D", r.id)
    assert month.final_stars_amount == 75
    assert checkout.get(week.id or 0).status is PurchaseStatus.FAILED
    assert redemption(uow_factory, r.id).purchase_id == month.id


# --- reservation checks -----------------------------------------------------------------------------------


def test_someone_elses_reservation_is_not_found(checkout: CheckoutService, campaigns: CampaignService,
                                                redemptions: RedemptionService) -> None:
    r = reserve(campaigns, redemptions, user_id=OTHER)
    with pytest.raises(CheckoutError) as err:
        checkout.init(USER, "PREMIUM_30D", r.id)
    assert err.value.code == "PROMO_NOT_FOUND"
    with pytest.raises(CheckoutError) as err:
        checkout.init(USER, "PREMIUM_30D", 999)
    assert err.value.code == "PROMO_NOT_FOUND"


def test_reservation_past_reserved_until_is_refused(checkout: CheckoutService, campaigns: CampaignService,
                                                    redemptions: RedemptionService, clock: ManualClock) -> None:
    r = reserve(campaigns, redemptions)
    clock.advance(minutes=15)
    with pytest.raises(CheckoutError) as err:
        checkout.init(USER, "PREMIUM_30D", r.id)
    assert err.value.code == "PROMO_RESERVATION_EXPIRED"


def test_reservation_for_other_products_is_not_applicable(checkout: CheckoutService, campaigns: CampaignService,
                                                          redemptions: RedemptionService) -> None:
    r = reserve(campaigns, redemptions, products=("PREMIUM_365D",))
    with pytest.raises(CheckoutError) as err:
        checkout.init(USER, "PREMIUM_30D", r.id)
    assert err.value.code == "PROMO_NOT_APPLICABLE"
    assert checkout.init(USER, "PREMIUM_365D", r.id).final_stars_amount == 800


def test_a_grant_redemption_is_not_a_reservation(checkout: CheckoutService, campaigns: CampaignService,
                                                 redemptions: RedemptionService) -> None:
    campaigns.create(CampaignSpec(name="gift", promo_type=PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM",
                                  grant_days=7), actor=ACTOR, code="GIFT7DAYS")
    grant = redemptions.redeem(USER, "GIFT7DAYS", "g1").redemption
    assert grant is not None
    with pytest.raises(CheckoutError) as err:
        checkout.init(USER, "PREMIUM_30D", grant.id)
    assert err.value.code == "PROMO_NOT_RESERVED"


@pytest.mark.parametrize(("user_id", "product", "rid", "field"), [
    (0, "PREMIUM_7D", None, "user_id"), (True, "PREMIUM_7D", None, "user_id"), (1, "premium_7d", None, "product_code"),
    (1, "PREMIUM_7D", 0, "redemption_id"), (1, "PREMIUM_7D", "3", "redemption_id"),
])
def test_bad_init_input_names_the_field(checkout: CheckoutService, user_id: object, product: object, rid: object,
                                        field: str) -> None:
    with pytest.raises(ValidationError) as err:
        checkout.init(user_id, product, rid)  # type: ignore[arg-type]
    assert err.value.errors[0]["field"] == field


# --- invoice, pre-checkout ---------------------------------------------------------------------------------


def test_precheckout_answers_ok_only_for_a_sent_invoice_at_its_final_price(
    checkout: CheckoutService, campaigns: CampaignService, redemptions: RedemptionService,
) -> None:
    r = reserve(campaigns, redemptions)
    p = checkout.init(USER, "PREMIUM_30D", r.id)
    assert p.id is not None
    assert checkout.precheckout(p.id, 120).error_code == "PURCHASE_NOT_PAYABLE"
    sent = checkout.mark_invoice_sent(p.id)
    assert sent.status is PurchaseStatus.INVOICE_SENT
    assert checkout.mark_invoice_sent(p.id) == sent  # idempotent
    assert checkout.precheckout(p.id, 150).error_code == "AMOUNT_MISMATCH"
    assert checkout.precheckout(999, 120).error_code == "PURCHASE_NOT_FOUND"
    answer = checkout.precheckout(p.id, 120)
    assert answer.ok and answer.error_code is None


def test_precheckout_refuses_when_the_bound_reservation_is_no_longer_reserved(
    checkout: CheckoutService, campaigns: CampaignService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    r = reserve(campaigns, redemptions)
    p = checkout.init(USER, "PREMIUM_30D", r.id)
    assert p.id is not None and r.id is not None
    checkout.mark_invoice_sent(p.id)
    with uow_factory() as uow:
        uow.redemptions.revoke(r.id, clock.now())
        uow.commit()
    assert checkout.precheckout(p.id, 120).error_code == "PROMO_NO_LONGER_RESERVED"


def test_invoice_cannot_be_sent_for_a_paid_purchase(checkout: CheckoutService) -> None:
    p = checkout.init(USER, "PREMIUM_7D")
    assert p.id is not None
    checkout.mark_invoice_sent(p.id)
    checkout.successful_payment(p.id, "ch-1", 50)
    with pytest.raises(InvalidPurchaseState):
        checkout.mark_invoice_sent(p.id)
    with pytest.raises(NotFound):
        checkout.mark_invoice_sent(12345)


# --- payment ------------------------------------------------------------------------------------------------


def test_successful_payment_settles_purchase_redemption_and_entitlement(
    checkout: CheckoutService, campaigns: CampaignService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    r = reserve(campaigns, redemptions)
    p = checkout.init(USER, "PREMIUM_30D", r.id)
    assert p.id is not None
    checkout.mark_invoice_sent(p.id)
    settled = checkout.successful_payment(p.id, "charge-1", 120)
    assert not settled.replayed
    assert settled.purchase.status is PurchaseStatus.PAID and settled.purchase.paid_at == clock.now()
    assert settled.purchase.telegram_payment_charge_id == "charge-1"
    applied = redemption(uow_factory, r.id)
    assert applied.status is RedemptionStatus.APPLIED and applied.applied_purchase_id == p.id
    store = uow_factory.store
    assert store.entitlements[USER].expires_at == clock.now() + timedelta(days=30)
    assert [(e.source, e.days, e.purchase_id, e.promo_redemption_id) for e in store.ledger] == [
        (LedgerSource.PURCHASE, 30, p.id, r.id)]


def test_paying_twice_with_the_same_charge_id_credits_once(
    checkout: CheckoutService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    p = checkout.init(USER, "PREMIUM_7D")
    assert p.id is not None
    checkout.mark_invoice_sent(p.id)
    first = checkout.successful_payment(p.id, "charge-x", 50)
    clock.advance(minutes=3)
    again = checkout.successful_payment(p.id, "charge-x", 50)
    assert again.replayed and again.purchase == first.purchase
    assert len(uow_factory.store.ledger) == 1
    assert uow_factory.store.entitlements[USER].expires_at == first.purchase.paid_at + timedelta(days=7)  # type: ignore[operator]


def test_payment_with_the_wrong_amount_is_a_clear_error_and_changes_nothing(
    checkout: CheckoutService, uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    p = checkout.init(USER, "PREMIUM_7D")
    assert p.id is not None
    with pytest.raises(CheckoutError) as err:
        checkout.successful_payment(p.id, "c", 49)
    assert err.value.code == "AMOUNT_MISMATCH" and err.value.details == {"expected": 50, "got": 49}
    assert checkout.get(p.id).status is PurchaseStatus.CREATED and not uow_factory.store.ledger


def test_a_charge_id_settles_only_one_purchase(checkout: CheckoutService) -> None:
    a = checkout.init(USER, "PREMIUM_7D")
    b = checkout.init(USER, "PREMIUM_30D")
    assert a.id is not None and b.id is not None
    checkout.successful_payment(a.id, "same", 50)
    with pytest.raises(CheckoutError) as err:
        checkout.successful_payment(b.id, "same", 150)
    assert err.value.code == "CHARGE_ID_REUSED"
    with pytest.raises(CheckoutError) as err:
        checkout.successful_payment(a.id, "another", 50)
    assert err.value.code == "ALREADY_PAID"
    with pytest.raises(NotFound):
        checkout.successful_payment(999, "nope", 1)
    with pytest.raises(ValidationError):
        checkout.successful_payment(a.id, "", 50)


def test_payment_after_the_invoice_expired_is_settled_and_flagged_when_the_promo_is_gone(
    checkout: CheckoutService, campaigns: CampaignService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    r = reserve(campaigns, redemptions)
    p = checkout.init(USER, "PREMIUM_30D", r.id)
    assert p.id is not None and r.id is not None
    with uow_factory() as uow:  # the invoice expired and the reservation with it
        uow.purchases.set_status(p.id, [PurchaseStatus.CREATED], PurchaseStatus.FAILED, clock.now())
        uow.redemptions.unbind_purchase(r.id, p.id, clock.now())
        clock.advance(minutes=20)
        uow.redemptions.expire(r.id, clock.now())
        uow.commit()
    settled = checkout.successful_payment(p.id, "late", 120)
    assert settled.purchase.status is PurchaseStatus.PAID
    assert settled.purchase.review_reason == REVIEW_PROMO_NOT_RESERVED
    assert redemption(uow_factory, r.id).status is RedemptionStatus.EXPIRED
    assert USER in uow_factory.store.entitlements
