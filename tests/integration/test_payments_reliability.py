"""Payments reliability (issue 10) end to end: the jobs read Telegram's Star transactions over real HTTP from
the fake Bot API (tests/fakes/bot_api.py) through the real telebot adapter, compare them with purchases on
the in-memory family and on PostgreSQL, and deliver their alerts over real HTTP to local receivers.

Each difference raises exactly one routed alert with its figures (a second run raises none); matching books
raise none; recovery settles a stuck purchase once even when four runs race, and files unsafe ones for review.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from adapters.memory import ManualClock
from adapters.sql.engine import EngineHolder
from domain.campaigns import CampaignSpec
from domain.model import LedgerSource, PromoType, Purchase, PurchaseStatus, RedemptionStatus
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from entrypoints.worker.jobs import run_job
from tests.conftest import PEPPER, T0
from tests.fakes.bot_api import FakeBotApi
from tests.integration.receivers import Receiver, receiving
from tests.sql import pg_engines, truncate_all

ROOT = Path(__file__).resolve().parents[2]
STARPROMO = str(Path(sys.executable).parent / "starpromo")
RECONCILE = "run_payments_reconciliation"
RECOVER = "run_payment_recovery"
DIFF_EVENT = "payments_reconciliation_diff_detected"
REVIEW_EVENT = "payments_recovery_review_required"


@pytest.fixture(scope="module")
def bot_api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as api:
        yield api


@pytest.fixture(scope="module")
def _pg() -> Iterator[EngineHolder]:
    with pg_engines("starpromo_payments") as engines:
        yield engines


class World:
    """A container on one family with Telegram pointed at the fake Bot API and alerts at a receiver."""

    def __init__(self, container: Container, clock: ManualClock, bot_api: FakeBotApi, alerts: Receiver) -> None:
        self.c = container
        self.clock = clock
        self.bot_api = bot_api
        self.alerts = alerts
        self._users = iter(range(800_000_001, 900_000_000))

    def user(self) -> int:
        return next(self._users)

    def discount_reservation(self, user_id: int, code: str, percent: int = 20) -> int:
        """A campaign of one code (named after it) and ``user_id``'s reservation of that code."""
        self.c.campaign_service().create(
            CampaignSpec(name=f"spring {code}", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=percent,
                         max_total_uses=10),
            actor="test", code=code)
        out = self.c.redemption_service().redeem(user_id, code, f"k-{user_id}-{code}")
        assert out.redemption is not None and out.redemption.id is not None
        return out.redemption.id

    def invoice(self, user_id: int, product: str = "PREMIUM_30D", redemption_id: int | None = None) -> Purchase:
        checkout = self.c.checkout_service()
        p = checkout.init(user_id, product, redemption_id)
        assert p.id is not None
        return checkout.mark_invoice_sent(p.id)

    def pay(self, purchase: Purchase, charge: str, telegram: bool = True, amount: int | None = None) -> Purchase:
        """Telegram takes the money (a transaction in getStarTransactions) and the webhook settles it."""
        assert purchase.id is not None
        if telegram:
            self.telegram_payment(purchase, charge, amount)
        return self.c.checkout_service().successful_payment(purchase.id, charge, purchase.final_stars_amount).purchase

    def telegram_payment(self, purchase: Purchase, charge: str, amount: int | None = None,
                         payload: str | None = None) -> None:
        self.bot_api.add_payment(charge, purchase.final_stars_amount if amount is None else amount, purchase.user_id,
                                 payload=payload or f"purchase:{purchase.id}", date=self.clock.now())

    def paid(self, product: str = "PREMIUM_30D", charge: str | None = None, telegram: bool = True) -> Purchase:
        user = self.user()
        return self.pay(self.invoice(user, product), charge or f"ch-{user}", telegram)

    def purchase(self, purchase_id: int | None) -> Purchase:
        assert purchase_id is not None
        return self.c.checkout_service().get(purchase_id)

    def run(self, job: str) -> dict[str, Any]:
        return run_job(job, self.c)

    def later(self, minutes: int = 20) -> None:
        self.clock.advance(minutes=minutes)


@contextmanager
def make_world(url: str, bot_api: FakeBotApi) -> Iterator[World]:
    with receiving() as alerts:
        container = build_container(Settings(database_url=url, promo_secret_pepper=PEPPER,
                                             telegram_bot_token="1:test", telegram_api_url=bot_api.url,
                                             ops_alert_webhook_url=alerts.url))
        clock = ManualClock(T0)
        container.clock.override(providers.Object(clock))
        with bot_api._lock:
            bot_api.star_transactions.clear()
        bot_api.reset_calls()
        bot_api.refunded_charges.clear()
        bot_api.clock = clock.now
        try:
            yield World(container, clock, bot_api, alerts)
        finally:
            bot_api.clock = None
            if container.settings().adapter_family == "sql":
                container.sql_engines().dispose()


@pytest.fixture(params=["memory", "postgresql"])
def world(request: pytest.FixtureRequest, bot_api: FakeBotApi) -> Iterator[World]:
    with ExitStack() as stack:
        if request.param == "memory":
            url = "memory://"
        else:
            engines: EngineHolder = request.getfixturevalue("_pg")
            truncate_all(engines)
            url = engines.url
        yield stack.enter_context(make_world(url, bot_api))


def only_alert(world: World, event: str) -> dict[str, Any]:
    bodies = world.alerts.bodies
    assert len(bodies) == 1, bodies
    alert = bodies[0]
    assert alert["event"] == event
    assert alert["tier"] == "ops_l1"
    assert alert["severity"] == ("critical" if event == DIFF_EVENT else "error")
    assert len(alert["dedup_key"]) == 64
    return dict(alert)


# --- reconciliation ------------------------------------------------------------------------------------------


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
    alert = only_alert(world, DIFF_EVENT)
    d = alert["details"]
    assert d["kind"] == "MISSING_LOCAL_PURCHASE"
    assert (d["telegram_stars"], d["user_id"], d["payload_purchase_id"]) == (350, 42, 999999)
    assert d["figures"]["telegram"]["payments"] == {"count": 2, "stars": 500}
    assert d["figures"]["local"]["payments"] == {"count": 1, "stars": 150}
    assert d["figures"]["drift"]["payments_stars"] == 350
    second = world.run(RECONCILE)
    assert second["differences"] == 1 and second["new_differences"] == 0 and second["alerts_sent"] == 0
    assert len(world.alerts.bodies) == 1
    [item] = world.c.payment_review_service().list()
    assert item.kind == "MISSING_LOCAL_PURCHASE" and item.dedup_key == alert["dedup_key"]


def test_a_local_payment_telegram_does_not_know_raises_one_alert(world: World) -> None:
    world.paid("PREMIUM_7D")
    lost = world.paid("PREMIUM_90D", telegram=False)
    world.later()
    world.run(RECONCILE)
    world.run(RECONCILE)
    d = only_alert(world, DIFF_EVENT)["details"]
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
    d = only_alert(world, DIFF_EVENT)["details"]
    assert d["kind"] == "AMOUNT_DRIFT"
    assert (d["product_code"], d["local_stars"], d["telegram_stars"], d["drift"]) == ("PREMIUM_90D", 350, 300, -50)
    assert d["payments"] == [{"purchase_id": p.id, "telegram_payment_charge_id": "ch-drift", "local_stars": 350,
                              "telegram_stars": 300}]
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
    d = only_alert(world, DIFF_EVENT)["details"]
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
    d = only_alert(world, DIFF_EVENT)["details"]
    assert d["kind"] == "MISSING_LOCAL_PURCHASE" and d["telegram_stars"] == 50
    assert d["figures"]["local"]["payments"] == {"count": 250, "stars": 250 * 50}


# --- recovery ------------------------------------------------------------------------------------------------


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
    d = only_alert(world, REVIEW_EVENT)["details"]
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
    bodies = world.alerts.bodies
    assert [b["event"] for b in bodies] == [REVIEW_EVENT, REVIEW_EVENT]
    assert sorted((b["details"]["kind"], b["details"]["payload"]) for b in bodies) == [
        ("UNKNOWN_PURCHASE", "order-9"), ("UNKNOWN_PURCHASE", "purchase:424242")]
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
    d = only_alert(world, REVIEW_EVENT)["details"]
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
    d = only_alert(world, REVIEW_EVENT)["details"]
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


def finished_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "job_finished"]


def test_both_payments_jobs_log_one_structured_line_with_their_counts(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.paid("PREMIUM_7D")
    world.bot_api.add_payment("ch-ghost", 150, 43, payload="purchase:777777", date=world.clock.now())
    world.later()
    caplog.set_level(logging.INFO, logger="starpromo.worker")
    reconciled = world.run(RECONCILE)
    recovered = world.run(RECOVER)
    [first, second] = finished_lines(caplog)
    for record, name, summary in ((first, RECONCILE, reconciled), (second, RECOVER, recovered)):
        assert record.job == name  # type: ignore[attr-defined]
        assert isinstance(record.duration_ms, int)  # type: ignore[attr-defined]
        assert {k: getattr(record, k) for k in ("transactions_read", "pages")} == {
            "transactions_read": 2, "pages": 1}
        assert summary["job"] == name
    assert (reconciled["differences"], reconciled["differences_by_kind"]) == (1, {"MISSING_LOCAL_PURCHASE": 1})
    assert first.alerts_sent == 1  # type: ignore[attr-defined]
    # Recovery sees the same payment: it names a purchase that does not exist -> its own review, one alert.
    assert (second.candidates, second.reviews, second.settled) == (1, 1, [])  # type: ignore[attr-defined]
    assert sorted(b["event"] for b in world.alerts.bodies) == [DIFF_EVENT, REVIEW_EVENT]


def test_without_a_bot_token_both_payments_jobs_report_skipped(caplog: pytest.LogCaptureFixture) -> None:
    container = build_container(Settings(database_url="memory://", promo_secret_pepper=PEPPER))
    assert not container.payment_gateway.is_defined
    caplog.set_level(logging.INFO, logger="starpromo.worker")
    for job in (RECONCILE, RECOVER):
        summary = run_job(job, container)
        assert summary["skipped"] is True and "TELEGRAM_BOT_TOKEN" in summary["reason"]
    assert [(r.job, r.skipped) for r in finished_lines(caplog)] == [  # type: ignore[attr-defined]
        (RECONCILE, True), (RECOVER, True)]


def test_the_payments_section_of_the_dashboard_counts_the_window(world: World) -> None:
    world.paid("PREMIUM_7D")
    refunded = world.paid("PREMIUM_30D")
    world.c.checkout_service().refund(refunded.id or 0, world.c.payment_gateway(), actor="test")
    world.invoice(world.user(), "PREMIUM_90D")
    world.clock.advance(minutes=31)
    world.run("run_payment_invoice_expiry")
    payments = world.c.dashboard_service().metrics(24)["payments"]
    assert payments == {"paid_count": 2, "paid_stars": 200, "refunded_count": 1, "refunded_stars": 150,
                        "failed_count": 1, "failed_stars": 350, "open_review_items": 0, "purchases_in_review": 0}
