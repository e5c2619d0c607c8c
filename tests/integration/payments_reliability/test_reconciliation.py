"""Reconciliation end to end: matching books raise no alert; each difference (a payment without a local purchase,
a local payment Telegram does not know, an amount drift, a refund only Telegram knows) raises exactly one alert with
its figures; paging reads past a hundred transactions."""

from __future__ import annotations

from domain.model import PurchaseStatus, RedemptionStatus
from tests.integration.payments_reliability.world import DIFF_EVENT, RECONCILE, World, only_item


def test_matching_books_raise_no_alert(world: World) -> None:
    world.paid("PREMIUM_7D")
    world.paid("PREMIUM_30D")
    refunded = world.paid("PREMIUM_365D")
    assert refunded.id is not None
    # Telegram records the refund too
    world.c.checkout_service().refund(refunded.id, world.c.payment_gateway(), actor="test")
    world.later()
    summary = world.run(RECONCILE)
    assert summary["differences"] == 0 and summary["alerts_sent"] == 0
    assert summary["transactions_read"] == 4
    assert world.run(RECONCILE)["differences"] == 0
    assert world.alerts.bodies == []
    report = world.c.reconciliation_service().reconcile(act=False)
    assert report.figures["telegram"]["payments"] == report.figures["local"]["payments"] == {
        "count": 3, "stars": 50 + 150 + 1000}
    assert report.figures["telegram"]["refunds"] == report.figures["local"]["refunds"] == {"count": 1, "stars": 1000}


def test_a_telegram_payment_without_a_local_purchase_raises_one_alert_with_its_figures(world: World) -> None:
    world.paid()
    world.bot_api.add_payment("ch-ghost", 350, 42, payload="purchase:999999", date=world.clock.now())
    world.later()
    first = world.run(RECONCILE)
    assert first["differences"] == 1 and first["new_differences"] == 1 and first["alerts_sent"] == 1
    d = only_item(world, DIFF_EVENT)
    assert d["kind"] == "MISSING_LOCAL_PURCHASE"
    assert (d["telegram_stars"], d["user_id"], d["payload_purchase_id"]) == (350, 42, 999999)
    assert d["figures"]["telegram"]["payments"] == {"count": 2, "stars": 500}
    assert d["figures"]["local"]["payments"] == {"count": 1, "stars": 150}
    assert d["figures"]["drift"]["payments_stars"] == 350
    second = world.run(RECONCILE)
    assert second["differences"] == 1 and second["new_differences"] == 0 and second["alerts_sent"] == 0
    assert len(world.alerts.bodies) == 1
    [item] = world.c.payment_review_service().list()
    assert item.kind == "MISSING_LOCAL_PURCHASE" and item.dedup_key == d["dedup_key"]


def test_a_local_payment_telegram_does_not_know_raises_one_alert(world: World) -> None:
    world.paid("PREMIUM_7D")
    lost = world.paid("PREMIUM_90D", telegram=False)
    world.later()
    world.run(RECONCILE)
    world.run(RECONCILE)
    d = only_item(world, DIFF_EVENT)
    assert d["kind"] == "MISSING_TELEGRAM_TRANSACTION"
    assert (d["review_id"] is not None, d["local_stars"], d["product_code"]) == (True, 350, "PREMIUM_90D")
    assert d["figures"]["drift"] == {"payments_count": -1, "payments_stars": -350, "refunds_count": 0,
                                     "refunds_stars": 0}
    [item] = world.c.payment_review_service().list()
    assert item.purchase_id == lost.id


def test_an_amount_drift_raises_one_alert_naming_the_product(world: World) -> None:
    world.paid("PREMIUM_30D")
    user = world.user()
    p = world.invoice(user, "PREMIUM_90D")
    world.telegram_payment(p, "ch-drift", amount=300)  # Telegram says 300, we settled 350
    world.c.checkout_service().successful_payment(p.id or 0, "ch-drift", 350)
    world.later()
    world.run(RECONCILE)
    world.run(RECONCILE)
    d = only_item(world, DIFF_EVENT)
    assert d["kind"] == "AMOUNT_DRIFT"
    assert (d["product_code"], d["local_stars"], d["telegram_stars"], d["drift"]) == ("PREMIUM_90D", 350, 300, -50)
    assert (d["purchase_id"], d["telegram_payment_charge_id"]) == (p.id, "ch-drift")
    assert d["by_product"] == {"PREMIUM_90D": {"payments": 1, "local_stars": 350, "telegram_stars": 300, "drift": -50}}
    assert d["figures"]["products"]["PREMIUM_90D"] == {"local_stars": 350, "telegram_stars": 300, "drift": -50}
    assert d["figures"]["products"]["PREMIUM_30D"]["drift"] == 0


def test_a_refund_only_telegram_knows_marks_the_purchase_refunded_and_the_rollback_revokes_the_promo(
        world: World) -> None:
    user = world.user()
    reservation = world.discount_reservation(user, "REFUND20")
    p = world.pay(world.invoice(user, "PREMIUM_30D", reservation), "ch-refunded")
    assert p.final_stars_amount == 120
    with world.c.uow_factory()() as uow:
        applied = uow.redemptions.get(reservation)
        assert applied is not None and applied.status is RedemptionStatus.APPLIED
        code = uow.promo_codes.get(applied.promo_code_id)
        campaign = uow.campaigns.get(applied.campaign_id)
        assert code is not None and campaign is not None
        used_before = (code.used_total, campaign.used_total)
    world.bot_api.add_refund("ch-refunded", 120, user, date=world.clock.now())  # refunded in Telegram only
    world.later()
    summary = world.run(RECONCILE)
    assert summary["refunds_marked"] == 1
    assert world.purchase(p.id).status is PurchaseStatus.REFUNDED
    d = only_item(world, DIFF_EVENT)
    assert (d["kind"], d["telegram_stars"], d["local_status"]) == ("REFUND_ONLY_IN_TELEGRAM", 120, "PAID")
    assert world.run("run_refund_promo_rollback")["revoked"] == 1
    with world.c.uow_factory()() as uow:
        r = uow.redemptions.get(reservation)
        assert r is not None and r.status is RedemptionStatus.REVOKED
        c = uow.promo_codes.get(r.promo_code_id)
        k = uow.campaigns.get(r.campaign_id)
        assert c is not None and k is not None
        assert (c.used_total, k.used_total) == used_before == (1, 1)  # revocation never gives the unit back
    # Books match now: the refund is on both sides; nothing new is raised.
    assert world.run(RECONCILE)["new_differences"] == 0
    assert len(world.alerts.bodies) == 1
    assert world.c.reconciliation_service().reconcile(act=False).matches


def test_paging_reads_more_than_a_hundred_transactions_and_finds_the_oldest_difference(world: World) -> None:
    world.bot_api.add_payment("ch-oldest-ghost", 50, 7, payload="purchase:123456789", date=world.clock.now())
    for _ in range(250):
        world.clock.advance(seconds=1)
        world.paid("PREMIUM_7D")
    world.later()
    summary = world.run(RECONCILE)
    assert summary["transactions_read"] == 251
    assert summary["pages"] == 3
    offsets = [c.params.get("offset") for c in world.bot_api.calls_to("getStarTransactions")]
    assert offsets == [None, "100", "200"]  # telebot leaves offset 0 out
    assert summary["differences"] == 1
    d = only_item(world, DIFF_EVENT)
    assert d["kind"] == "MISSING_LOCAL_PURCHASE" and d["telegram_stars"] == 50
    assert d["figures"]["local"]["payments"] == {"count": 250, "stars": 250 * 50}
