"""Recovery end to end: stuck purchases settled exactly once by racing recoveries (threads and worker processes),
unsafe payments filed for review with one alert, a payment Telegram already refunded never settled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.sql.engine import EngineHolder
from domain.model import LedgerSource, Purchase, PurchaseStatus, RedemptionStatus
from tests.conftest import PEPPER
from tests.fakes.bot_api import FakeBotApi
from tests.integration.payments_reliability.world import RECOVER, REVIEW_EVENT, World, make_world, only_item
from tests.sql import truncate_all

ROOT = Path(__file__).resolve().parents[3]
STARPROMO = str(Path(sys.executable).parent / "starpromo")

STUCK = 6


def stuck_purchases(world: World) -> tuple[list[Purchase], int]:
    """``STUCK`` purchases Telegram charged (payload ``purchase:<id>``) whose settlement never happened; the
    first carries a 20 % promo reservation. Returns them and that reservation's id."""
    first_user = world.user()
    reservation = world.discount_reservation(first_user, "STUCK20")
    stuck = [world.invoice(first_user, "PREMIUM_30D", reservation)]
    stuck += [world.invoice(world.user(), "PREMIUM_7D") for _ in range(STUCK - 1)]
    for p in stuck:  # Telegram took the money; our webhook crashed before settling
        world.telegram_payment(p, f"ch-stuck-{p.id}")
    return stuck, reservation


def assert_settled_once(world: World, stuck: list[Purchase], reservation: int) -> None:
    """Each stuck purchase PAID with its own charge, one purchase ledger entry each, the promo APPLIED."""
    with world.c.uow_factory()() as uow:
        for p in stuck:
            assert p.id is not None
            now = uow.purchases.get(p.id)
            assert now is not None
            assert (now.status, now.telegram_payment_charge_id, now.review_reason) == (
                PurchaseStatus.PAID, f"ch-stuck-{p.id}", None)
            entries = [e for e in uow.ledger.for_user(p.user_id) if e.source is LedgerSource.PURCHASE]
            assert [e.purchase_id for e in entries] == [p.id]
            assert uow.entitlements.get(p.user_id) is not None
        r = uow.redemptions.get(reservation)
        assert r is not None and r.status is RedemptionStatus.APPLIED and r.applied_purchase_id == stuck[0].id


def test_stuck_purchases_are_settled_exactly_once_by_four_racing_recoveries(world: World) -> None:
    stuck, reservation = stuck_purchases(world)
    world.clock.advance(minutes=3)  # past the 2-minute recovery grace
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def recover() -> None:
        start.wait()
        try:
            results.append(world.run(RECOVER))
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=recover) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    settled = [pid for r in results for pid in r["settled"]]
    assert sorted(settled) == sorted(p.id or 0 for p in stuck)  # each exactly once, across the four runs
    for r in results:  # every candidate a run saw was settled by it or found settled by another
        assert r["candidates"] == len(r["settled"]) + r["already_settled"], r
        assert r["reviews"] == 0 and r["transactions_read"] == STUCK
    assert_settled_once(world, stuck, reservation)
    again = world.run(RECOVER)
    assert (again["candidates"], again["settled"], again["reviews"]) == (0, [], 0)
    assert world.alerts.bodies == []
    world.later()
    assert world.c.reconciliation_service().reconcile(act=False).matches


def test_stuck_purchases_are_settled_exactly_once_by_two_racing_worker_processes(
        _pg: EngineHolder, bot_api: FakeBotApi) -> None:
    """Two ``starpromo jobs run run_payment_recovery`` processes (system clock) race on one PostgreSQL."""
    truncate_all(_pg)
    with make_world(_pg.url, bot_api) as world:
        stuck, reservation = stuck_purchases(world)
        five_minutes_ago = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp())
        with bot_api._lock:  # the processes run on the real clock: the payments are 5 minutes old
            for tx in bot_api.star_transactions:
                tx["date"] = five_minutes_ago
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PROMO_", "OPS_ALERT_", "REDIS_", "TELEGRAM_", "DATABASE_"))}
        env.update(DATABASE_URL=_pg.url, PROMO_SECRET_PEPPER=PEPPER, TELEGRAM_BOT_TOKEN="1:test",
                   TELEGRAM_API_URL=bot_api.url, OPS_ALERT_WEBHOOK_URL=world.alerts.url)
        procs = [subprocess.Popen([STARPROMO, "jobs", "run", RECOVER], env=env, cwd=ROOT, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        outputs = [proc.communicate(timeout=60) for proc in procs]
        for proc, (_, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err
        summaries = [json.loads(out) for out, _ in outputs]
        assert sorted(pid for s in summaries for pid in s["settled"]) == sorted(p.id or 0 for p in stuck)
        for s in summaries:
            assert s["job"] == RECOVER and s["reviews"] == 0
            assert s["candidates"] == len(s["settled"]) + s["already_settled"], s
        for _, err in outputs:  # and each process logged its one structured line
            finished = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
            assert [line["job"] for line in finished if line.get("event") == "job_finished"] == [RECOVER]
        assert_settled_once(world, stuck, reservation)
        assert world.alerts.bodies == []


def test_an_amount_mismatch_is_marked_for_review_with_one_alert(world: World) -> None:
    p = world.invoice(world.user(), "PREMIUM_90D")
    world.telegram_payment(p, "ch-short", amount=349)
    world.clock.advance(minutes=3)
    first = world.run(RECOVER)
    world.run(RECOVER)
    assert (first["settled"], first["reviews"]) == ([], 1)
    d = only_item(world, REVIEW_EVENT)
    assert (d["kind"], d["telegram_stars"], d["expected_stars"], d["error_code"]) == (
        "AMOUNT_MISMATCH", 349, 350, "AMOUNT_MISMATCH")
    stuck = world.purchase(p.id)
    assert (stuck.status, stuck.review_reason) == (PurchaseStatus.INVOICE_SENT, "AMOUNT_MISMATCH")
    assert world.c.dashboard_service().metrics()["payments"]["open_review_items"] == 1


def test_a_payment_naming_an_unknown_purchase_is_filed_for_review_with_one_alert(world: World) -> None:
    world.bot_api.add_payment("ch-unknown", 150, 77, payload="purchase:424242", date=world.clock.now())
    world.bot_api.add_payment("ch-foreign", 150, 78, payload="order-9", date=world.clock.now())
    world.clock.advance(minutes=3)
    first = world.run(RECOVER)
    world.run(RECOVER)
    assert first["reviews"] == 2
    [alert] = world.alerts.bodies  # one run, one kind: one alert carrying both
    assert (alert["event"], alert["details"]["kind"], alert["details"]["count"]) == (
        REVIEW_EVENT, "UNKNOWN_PURCHASE", 2)
    assert sorted(i["payload"] for i in alert["details"]["items"]) == ["order-9", "purchase:424242"]
    assert {r.telegram_payment_charge_id for r in world.c.payment_review_service().list()} == {"ch-unknown",
                                                                                                 "ch-foreign"}


def test_a_late_payment_whose_reservation_is_gone_is_settled_at_the_price_paid_and_reviewed(world: World) -> None:
    user = world.user()
    reservation = world.discount_reservation(user, "GONE20")
    p = world.invoice(user, "PREMIUM_30D", reservation)
    world.telegram_payment(p, "ch-late")  # paid, but the settlement never happened
    world.clock.advance(minutes=31)
    assert world.run("run_payment_invoice_expiry")["failed"] == 1  # the invoice went stale: reservation unbound
    assert world.run("run_promo_reservation_expiry")["expired"] == 1  # and then it expired
    summary = world.run(RECOVER)
    assert summary["settled"] == [p.id] and summary["reviews"] == 1
    settled = world.purchase(p.id)
    assert (settled.status, settled.final_stars_amount, settled.review_reason) == (
        PurchaseStatus.PAID, 120, "PROMO_REDEMPTION_NOT_RESERVED")
    d = only_item(world, REVIEW_EVENT)
    assert (d["kind"], d["paid_stars"], d["promo_redemption_id"]) == ("PROMO_REDEMPTION_NOT_RESERVED", 120,
                                                                      reservation)
    assert world.run(RECOVER)["reviews"] == 0
    assert len(world.alerts.bodies) == 1


def test_a_payment_settled_by_the_webhook_without_its_reservation_raises_one_review_alert(world: World) -> None:
    user = world.user()
    reservation = world.discount_reservation(user, "LATE20")
    p = world.invoice(user, "PREMIUM_30D", reservation)
    world.clock.advance(minutes=31)
    world.run("run_payment_invoice_expiry")
    world.run("run_promo_reservation_expiry")
    world.pay(p, "ch-late-webhook")  # the late payment arrives through the webhook: settled and flagged
    world.clock.advance(minutes=3)
    assert world.run(RECOVER)["reviews"] == 1
    assert world.run(RECOVER)["reviews"] == 0
    d = only_item(world, REVIEW_EVENT)
    assert (d["kind"], d["paid_stars"], d["promo_redemption_id"], d["user_id"]) == (
        "PROMO_REDEMPTION_NOT_RESERVED", 120, reservation, user)


def test_recovery_never_settles_a_payment_telegram_already_refunded(world: World) -> None:
    user = world.user()
    p = world.invoice(user, "PREMIUM_30D")
    world.telegram_payment(p, "ch-paid-then-refunded")  # the webhook crashed, then Telegram refunded it
    world.bot_api.add_refund("ch-paid-then-refunded", 150, user, date=world.clock.now())
    world.clock.advance(minutes=3)
    summary = world.run(RECOVER)
    assert (summary["settled"], summary["refunded_in_telegram"]) == ([], 1)
    assert world.purchase(p.id).status is PurchaseStatus.INVOICE_SENT
    with world.c.uow_factory()() as uow:
        assert uow.entitlements.get(user) is None and uow.ledger.for_user(user) == []
