"""Star transactions read right (issue 17): over a page holding every TransactionPartner type (Fragment withdrawals,
Telegram Ads, paid broadcasts, gifts, Premium gifts, affiliate commissions, paid media, subscriptions, business
transfers, and a type Telegram adds later) reconciliation and recovery raise nothing and report each kind under
``other_movements`` — in the job, in ``payments reconcile`` and in the dashboard — while a real missing purchase
among them is still reported."""

from __future__ import annotations

from domain.model import PurchaseStatus
from tests.fakes.star_transactions import every_other_movement, fragment_withdrawal
from tests.integration.payments_reliability.world import (
    DIFF_EVENT,
    RECONCILE,
    RECOVER,
    REVIEW_EVENT,
    World,
    only_item,
)


def test_every_partner_type_is_counted_apart_and_raises_no_alert(world: World) -> None:
    world.paid("PREMIUM_7D")
    refunded = world.paid("PREMIUM_30D")
    world.c.checkout_service().refund(refunded.id or 0, world.c.payment_gateway(), actor="test")
    txs, expected = every_other_movement(world.clock.now())
    world.bot_api.add_transactions(*txs)
    world.later()

    summary = world.run(RECONCILE)
    assert (summary["differences"], summary["alerts_sent"]) == (0, 0)
    assert (summary["other_movements"], summary["movements_recorded"]) == (len(txs), len(txs))
    assert world.run(RECOVER)["candidates"] == 0  # no subscription fee or paid-media payment is settled
    assert world.alerts.bodies == []  # no critical page for cashing out Stars, buying ads, sending gifts

    movements = {"count": len(txs), "kinds": [e.as_dict() for e in expected]}
    report = world.c.reconciliation_service().reconcile(act=False)
    assert report.matches
    assert report.figures["other_movements"] == movements
    assert report.figures["telegram"] == {"payments": {"count": 2, "stars": 50 + 150},
                                          "refunds": {"count": 1, "stars": 150}}
    assert world.c.dashboard_service().metrics(24)["payments"]["other_movements"] == movements
    again = world.run(RECONCILE)
    assert (again["differences"], again["movements_recorded"]) == (0, 0)  # recorded once per transaction
    assert world.c.dashboard_service().metrics(24)["payments"]["other_movements"] == movements
    assert world.c.payment_review_service().list() == []


def test_a_real_missing_purchase_among_every_partner_type_is_still_reported(world: World) -> None:
    kept = world.paid("PREMIUM_30D")
    txs, _ = every_other_movement(world.clock.now())
    world.bot_api.add_transactions(*txs[:8])
    world.bot_api.add_payment("ch-ghost", 350, 42, payload="purchase:999999", date=world.clock.now())
    world.bot_api.add_transactions(*txs[8:])
    world.later()

    summary = world.run(RECONCILE)
    assert summary["differences_by_kind"] == {"MISSING_LOCAL_PURCHASE": 1}
    d = only_item(world, DIFF_EVENT)
    assert (d["kind"], d["telegram_payment_charge_id"], d["telegram_stars"]) == ("MISSING_LOCAL_PURCHASE",
                                                                                 "ch-ghost", 350)
    assert d["figures"]["other_movements"]["count"] == len(txs)
    assert d["figures"]["telegram"]["payments"] == {"count": 2, "stars": 150 + 350}
    recovered = world.run(RECOVER)
    assert (recovered["candidates"], recovered["reviews"], recovered["settled"]) == (1, 1, [])
    assert [b["event"] for b in world.alerts.bodies] == [DIFF_EVENT, REVIEW_EVENT]
    assert world.purchase(kept.id).status is PurchaseStatus.PAID


def test_a_withdrawal_sharing_an_id_with_a_payment_changes_nothing(world: World) -> None:
    """Before issue 17 an outgoing transaction was a refund by direction alone: a 5,000-Star withdrawal paged
    "Telegram refunded 5000 Stars of a payment we do not have as paid", and one with a paid purchase's id would
    have marked it REFUNDED."""
    p = world.paid("PREMIUM_90D", charge="ch-shared")
    world.bot_api.add_transactions(fragment_withdrawal("ch-shared", 5000, world.clock.now()),
                                   fragment_withdrawal("wd-2", 5000, world.clock.now()))
    world.later()
    assert world.run(RECONCILE)["differences"] == 0
    assert world.purchase(p.id).status is PurchaseStatus.PAID
    assert world.alerts.bodies == []
