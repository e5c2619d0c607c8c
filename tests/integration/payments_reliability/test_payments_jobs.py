"""Both payments jobs as the worker runs them (one structured log line each, skipped without a bot token), and the
payments section of the dashboard."""

from __future__ import annotations

import logging

import pytest

from entrypoints.container import build_container
from entrypoints.settings import Settings
from entrypoints.worker.jobs import run_job
from tests.conftest import PEPPER
from tests.integration.payments_reliability.world import DIFF_EVENT, RECONCILE, RECOVER, REVIEW_EVENT, World


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
                        "failed_count": 1, "failed_stars": 350, "open_review_items": 0, "purchases_in_review": 0,
                        "other_movements": {"count": 0, "kinds": []}}
