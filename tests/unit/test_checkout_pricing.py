"""SPEC 5: pricing — a percent discount floored, a Stars discount taken off, never below one Star — and the price a
purchase is fixed at when a reservation is bound to it (or none is)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService
from domain.checkout import CheckoutService, discounted_price
from domain.errors import CheckoutError
from domain.model import PurchaseStatus, RedemptionStatus
from domain.products import parse_products
from domain.redemption import RedemptionService
from tests.unit.checkout_setup import USER, redemption, reserve, reserve_stars


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
