"""SPEC 5: product catalog, purchase lifecycle, discount binding, pre-checkout, idempotent payment, refunds."""

from __future__ import annotations

import json
from datetime import timedelta
from itertools import count
from pathlib import Path

import pytest

from adapters.memory import InMemoryPaymentGateway, InMemoryUnitOfWork, InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.checkout import REVIEW_PROMO_NOT_RESERVED, CheckoutService, discounted_price
from domain.errors import (
    CheckoutError,
    ConfigurationError,
    InvalidPurchaseState,
    NotFound,
    PaymentRefundError,
    ValidationError,
)
from domain.model import AuditEntry, LedgerSource, PromoType, PurchaseStatus, Redemption, RedemptionStatus
from domain.products import DEFAULT_PRODUCTS, ProductCatalog, parse_products
from domain.redemption import RedemptionService

USER = 4242
OTHER = 777
ACTOR = "alice"
REFUNDED = "purchase.refunded"
_keys = count(1)


@pytest.fixture
def checkout(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> CheckoutService:
    return CheckoutService(uow_factory, clock)


def reserve(campaigns: CampaignService, redemptions: RedemptionService, percent: int = 20,
            products: tuple[str, ...] = (), user_id: int = USER, code: str | None = None) -> Redemption:
    """A reservation of a fresh ``percent`` % campaign's code."""
    code = code or f"SAVE{percent}X{next(_keys)}"
    campaigns.create(CampaignSpec(name=f"discount {code}", promo_type=PromoType.PERCENT_DISCOUNT,
                                  discount_percent=percent, applicable_products=products), actor=ACTOR, code=code)
    outcome = redemptions.redeem(user_id, code, f"key-{next(_keys)}")
    assert outcome.accepted and outcome.redemption is not None
    return outcome.redemption


def reserve_stars(campaigns: CampaignService, redemptions: RedemptionService, stars: int,
                  user_id: int = USER) -> Redemption:
    """A reservation of a fresh campaign taking ``stars`` Stars off the base price."""
    code = f"STARS{stars}X{next(_keys)}"
    campaigns.create(CampaignSpec(name=f"stars {code}", promo_type=PromoType.STARS_DISCOUNT, discount_stars=stars),
                     actor=ACTOR, code=code)
    outcome = redemptions.redeem(user_id, code, f"key-{next(_keys)}")
    assert outcome.accepted and outcome.redemption is not None
    return outcome.redemption


def redemption(uow_factory: InMemoryUnitOfWorkFactory, redemption_id: int | None) -> Redemption:
    assert redemption_id is not None
    r = uow_factory.store.redemptions[redemption_id]
    return r


# --- catalog ---------------------------------------------------------------------------------------------


def test_default_catalog_is_the_four_premium_plans_of_the_spec() -> None:
    catalog = ProductCatalog()
    assert [(p.code, p.stars, p.days, p.plan_code) for p in catalog] == [
        ("PREMIUM_7D", 50, 7, "PREMIUM"), ("PREMIUM_30D", 150, 30, "PREMIUM"),
        ("PREMIUM_90D", 350, 90, "PREMIUM"), ("PREMIUM_365D", 1000, 365, "PREMIUM"),
    ]
    assert tuple(DEFAULT_PRODUCTS) == tuple(catalog)


def test_products_file_replaces_the_catalog() -> None:
    text = json.dumps({"products": [{"code": "GOLD_14D", "stars": 99, "days": 14, "title": "Gold",
                                     "plan_code": "GOLD"}, {"code": "PREMIUM_7D", "stars": 40, "days": 7}]})
    catalog = parse_products(text, "/etc/products.json")
    assert catalog.codes == ("GOLD_14D", "PREMIUM_7D")
    gold = catalog.require("GOLD_14D")
    assert (gold.stars, gold.days, gold.plan_code, gold.title) == (99, 14, "GOLD", "Gold")
    assert catalog.require("PREMIUM_7D").plan_code == "PREMIUM"
    assert parse_products(json.dumps([{"code": "X1", "stars": 1, "days": 1}])).codes == ("X1",)


@pytest.mark.parametrize(("text", "fragment"), [
    ("{not json", "/p.json: invalid JSON"),
    ("[]", "/p.json: products: must be a non-empty list"),
    ('{"items": []}', "/p.json: unknown key(s) items"),
    ('[{"code": "bad code", "stars": 5, "days": 1}]', "/p.json: products[0].code"),
    ('[{"code": "A", "stars": 0, "days": 1}]', "/p.json: products[0].stars"),
    ('[{"code": "A", "stars": true, "days": 1}]', "/p.json: products[0].stars"),
    ('[{"code": "A", "stars": 5, "days": "7"}]', "/p.json: products[0].days"),
    ('[{"code": "A", "stars": 5, "days": 7, "price": 3}]', "/p.json: products[0]: unknown field(s) price"),
    ('[{"code": "A", "stars": 5, "days": 7}, {"code": "A", "stars": 6, "days": 7}]',
     "/p.json: products[1].code: duplicate"),
    ('[{"code": "A", "stars": 5, "days": 7, "title": ""}]', "/p.json: products[0].title"),
])
def test_bad_products_file_names_the_file_and_the_field(text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        parse_products(text, "/p.json")
    assert fragment in err.value.message


def test_unknown_product_is_a_validation_error_naming_product_code(checkout: CheckoutService) -> None:
    with pytest.raises(ValidationError) as err:
        checkout.init(USER, "PREMIUM_2D")
    assert err.value.errors[0]["field"] == "product_code"


# --- pricing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("base", "percent", "discount", "final"), [
    (150, 20, 30, 120), (50, 33, 16, 34), (1000, 99, 990, 10), (1, 99, 0, 1), (3, 50, 1, 2), (350, 1, 3, 347),
])
def test_discount_is_floored_and_the_final_price_is_at_least_one_star(
    base: int, percent: int, discount: int, final: int
) -> None:
    assert discounted_price(base, percent) == (discount, final)


@pytest.mark.parametrize(("base", "stars", "discount", "final"), [
    (150, 40, 40, 110),  # base - discount_stars
    (50, 49, 49, 1),
    (50, 50, 49, 1),  # at most base - 1 off: the final price is at least 1 Star
    (50, 100, 49, 1),  # a 100-Star discount on a 50-Star plan
    (1000, 1_000_000, 999, 1),
    (1, 5, 0, 1),
])
def test_a_stars_discount_takes_that_many_stars_off_but_leaves_at_least_one(
    base: int, stars: int, discount: int, final: int
) -> None:
    assert discounted_price(base, stars=stars) == (discount, final)
    assert discount + final == base


def test_without_a_discount_the_base_price_is_the_final_price() -> None:
    assert discounted_price(350) == (0, 350)


def test_twenty_percent_off_premium_30d_costs_120_stars_and_binds_the_reservation(
    checkout: CheckoutService, campaigns: CampaignService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    r = reserve(campaigns, redemptions, 20)
    p = checkout.init(USER, "PREMIUM_30D", r.id)
    assert (p.base_stars_amount, p.discount_stars_amount, p.final_stars_amount) == (150, 30, 120)
    assert p.status is PurchaseStatus.CREATED and p.promo_redemption_id == r.id
    assert redemption(uow_factory, r.id).purchase_id == p.id


def test_minimum_price_is_one_star(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
                                   campaigns: CampaignService, redemptions: RedemptionService) -> None:
    tiny = CheckoutService(uow_factory, clock, parse_products('[{"code": "TINY", "stars": 1, "days": 1}]'))
    r = reserve(campaigns, redemptions, 99)
    p = tiny.init(USER, "TINY", r.id)
    assert (p.discount_stars_amount, p.final_stars_amount) == (0, 1)


@pytest.mark.parametrize(("product", "base", "discount", "final"), [
    ("PREMIUM_7D", 50, 49, 1), ("PREMIUM_30D", 150, 100, 50), ("PREMIUM_365D", 1000, 100, 900),
])
def test_a_100_star_discount_prices_each_plan_at_base_minus_the_discount_and_never_below_one_star(
    checkout: CheckoutService, campaigns: CampaignService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, product: str, base: int, discount: int, final: int,
) -> None:
    r = reserve_stars(campaigns, redemptions, 100)
    assert (r.discount_stars, r.discount_percent) == (100, None)  # the campaign's terms, snapshotted
    p = checkout.init(USER, product, r.id)
    assert (p.base_stars_amount, p.discount_stars_amount, p.final_stars_amount) == (base, discount, final)
    assert p.promo_redemption_id == r.id and redemption(uow_factory, r.id).purchase_id == p.id


def test_a_stars_discount_purchase_is_settled_at_its_final_price(
    checkout: CheckoutService, campaigns: CampaignService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    r = reserve_stars(campaigns, redemptions, 100)
    p = checkout.init(USER, "PREMIUM_7D", r.id)
    assert p.id is not None
    checkout.mark_invoice_sent(p.id)
    assert checkout.precheckout(p.id, 50).error_code == "AMOUNT_MISMATCH"  # the base price is not the price
    assert checkout.precheckout(p.id, 1).ok
    with pytest.raises(CheckoutError) as err:
        checkout.successful_payment(p.id, "stars-charge", 50)
    assert err.value.code == "AMOUNT_MISMATCH" and err.value.details == {"expected": 1, "got": 50}
    settled = checkout.successful_payment(p.id, "stars-charge", 1)
    assert not settled.replayed and settled.purchase.status is PurchaseStatus.PAID
    assert (settled.purchase.final_stars_amount, settled.purchase.discount_stars_amount) == (1, 49)
    applied = redemption(uow_factory, r.id)
    assert applied.status is RedemptionStatus.APPLIED and applied.applied_purchase_id == p.id
    assert uow_factory.store.entitlements[USER].expires_at == clock.now() + timedelta(days=7)
    assert checkout.successful_payment(p.id, "stars-charge", 1).replayed
    assert len(uow_factory.store.ledger) == 1


def test_without_a_reservation_the_full_price_applies(checkout: CheckoutService) -> None:
    p = checkout.init(USER, "PREMIUM_90D")
    assert (p.base_stars_amount, p.discount_stars_amount, p.final_stars_amount) == (350, 0, 350)
    assert p.promo_redemption_id is None


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


# --- refunds ----------------------------------------------------------------------------------------------


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


# --- composition root ---------------------------------------------------------------------------------------


def test_container_builds_the_catalog_from_the_products_file(tmp_path: Path) -> None:
    from entrypoints.container import build_container
    from entrypoints.settings import Settings

    path = tmp_path / "products.json"
    path.write_text('[{"code": "GOLD_14D", "stars": 99, "days": 14}]', encoding="utf-8")
    container = build_container(Settings(database_url="memory://", products_file=str(path)))
    assert container.products().codes == ("GOLD_14D",)
    assert container.checkout_service().catalog.codes == ("GOLD_14D",)
    assert build_container(Settings(database_url="memory://")).products().codes == tuple(
        p.code for p in DEFAULT_PRODUCTS)
    path.write_text('[{"code": "GOLD_14D", "stars": -1, "days": 14}]', encoding="utf-8")
    with pytest.raises(ConfigurationError) as err:
        build_container(Settings(database_url="memory://", products_file=str(path))).products()
    assert err.value.message.startswith(f"STARPROMO_PRODUCTS_FILE {path}: products[0].stars")
    with pytest.raises(ConfigurationError, match="STARPROMO_PRODUCTS_FILE: cannot read"):
        build_container(Settings(database_url="memory://", products_file=str(path) + ".missing")).products()
