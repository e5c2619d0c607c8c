"""`starpromo payments refund|reconcile|reviews|resolve` on the in-memory family, with Telegram played by the
fake Bot API over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from dependency_injector import providers

from adapters.memory import ManualClock
from domain.campaigns import CampaignSpec
from domain.model import PromoType, Purchase, PurchaseStatus, RedeemResult, RedemptionStatus
from entrypoints.cli.main import cli
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from tests.conftest import PEPPER
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.star_transactions import every_other_movement
from tests.unit.cli.conftest import ACTOR, Cli


@pytest.fixture
def bot_api(clock: ManualClock) -> Iterator[FakeBotApi]:
    with FakeBotApi() as api:
        api.clock = clock.now
        yield api


@pytest.fixture
def container(clock: ManualClock, bot_api: FakeBotApi) -> Container:
    c = build_container(Settings.from_env({"DATABASE_URL": "memory://", "PROMO_SECRET_PEPPER": PEPPER,
                                           "TELEGRAM_BOT_TOKEN": "1:test", "TELEGRAM_API_URL": bot_api.url}))
    c.clock.override(providers.Object(clock))
    return c


def paid(container: Container, bot_api: FakeBotApi, user_id: int, charge: str, product: str = "PREMIUM_30D",
         in_telegram: bool = True, redemption_id: int | None = None) -> Purchase:
    checkout = container.checkout_service()
    p = checkout.init(user_id, product, redemption_id)
    assert p.id is not None
    checkout.mark_invoice_sent(p.id)
    if in_telegram:
        bot_api.add_payment(charge, p.final_stars_amount, user_id, payload=f"purchase:{p.id}")
    return checkout.successful_payment(p.id, charge, p.final_stars_amount).purchase


def test_refund_refunds_through_telegram_once_and_a_second_call_shows_it_refunded(
        run: Cli, container: Container, bot_api: FakeBotApi) -> None:
    p = paid(container, bot_api, 11, "ch-11")
    first = run("payments", "refund", str(p.id))
    assert first.exit_code == 0, first.stderr
    assert first.stdout.startswith(f"purchase {p.id} REFUNDED: 150 Stars to user 11 (PREMIUM_30D)")
    second = run("payments", "refund", str(p.id), "--json")
    assert second.exit_code == 0, second.stderr
    doc = json.loads(second.stdout)
    assert (doc["id"], doc["status"], doc["telegram_payment_charge_id"]) == (p.id, "REFUNDED", "ch-11")
    refunds = bot_api.calls_to("refundStarPayment")
    assert [(c.params["user_id"], c.params["telegram_payment_charge_id"]) for c in refunds] == [("11", "ch-11")]
    audit = container.memory_store().audit
    assert [(e.actor, e.action, e.target_id) for e in audit] == [(ACTOR, "purchase.refunded", str(p.id))]


def test_refund_rollback_revokes_the_promo_redemption_of_a_refunded_purchase_once(
        run: Cli, container: Container, bot_api: FakeBotApi) -> None:
    container.campaign_service().create(CampaignSpec("spring", PromoType.PERCENT_DISCOUNT, discount_percent=20),
                                        actor="test:seed", code="SPRING-2026")
    outcome = container.redemption_service().redeem(13, "SPRING-2026", "k1")
    assert outcome.result is RedeemResult.ACCEPTED and outcome.redemption is not None
    redemption_id = outcome.redemption.id
    assert redemption_id is not None
    p = paid(container, bot_api, 13, "ch-13", redemption_id=redemption_id)
    early = run("payments", "refund-rollback", str(p.id))
    assert early.exit_code == 1 and "PURCHASE_NOT_REFUNDED" in early.stderr
    assert run("payments", "refund", str(p.id)).exit_code == 0
    result = run("payments", "refund-rollback", str(p.id))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"purchase {p.id}: promo redemption {redemption_id} is REVOKED\n"
    again = json.loads(run("payments", "refund-rollback", str(p.id), "--json").stdout)
    assert again == {"purchase_id": p.id, "redemption_id": redemption_id, "status": "REVOKED",
                     "replayed": True}
    assert container.memory_store().redemptions[redemption_id].status is RedemptionStatus.REVOKED
    actions = [(e.actor, e.action) for e in container.memory_store().audit if e.actor != "test:seed"]
    assert actions == [(ACTOR, "purchase.refunded"), (ACTOR, "purchase.refund_rolled_back")]
    assert run("payments", "refund-rollback", "999").stderr == "error: NOT_FOUND: purchase 999 not found\n"


def test_refund_of_a_purchase_that_is_not_paid_is_refused_on_stderr(run: Cli, container: Container) -> None:
    p = container.checkout_service().init(12, "PREMIUM_7D")
    result = run("payments", "refund", str(p.id))
    assert result.exit_code == 1 and result.stdout == ""
    assert "INVALID_PURCHASE_STATE" in result.stderr and "CREATED" in result.stderr
    missing = run("payments", "refund", "999")
    assert missing.exit_code == 1 and "NOT_FOUND" in missing.stderr
    assert run("payments", "refund", "0").exit_code == 2


def test_payments_commands_without_a_bot_token_name_the_variable() -> None:
    container = build_container(Settings.from_env({"DATABASE_URL": "memory://", "PROMO_SECRET_PEPPER": PEPPER}))
    for args in (["payments", "refund", "1"], ["payments", "reconcile"]):
        result = CliRunner().invoke(cli, args, obj=container, catch_exceptions=False)
        assert result.exit_code == 2 and "TELEGRAM_BOT_TOKEN" in result.stderr


def test_reconcile_prints_matching_books_and_exits_0(
        run: Cli, container: Container, bot_api: FakeBotApi, clock: ManualClock) -> None:
    paid(container, bot_api, 21, "ch-21", "PREMIUM_7D")
    paid(container, bot_api, 22, "ch-22", "PREMIUM_90D")
    clock.advance(minutes=20)
    result = run("payments", "reconcile", "--window-hours", "2")
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("window ") and "(2 h;" in lines[0]
    assert ["payments", "2", "400", "2", "400", "+0", "+0"] in [line.split() for line in lines]
    assert ["PREMIUM_90D", "350", "350", "+0"] in [line.split() for line in lines]
    assert lines[-1] == "books match: no differences"


def test_reconcile_lists_each_difference_exits_1_and_changes_nothing(
        run: Cli, container: Container, bot_api: FakeBotApi, clock: ManualClock) -> None:
    paid(container, bot_api, 31, "ch-31")
    lost = paid(container, bot_api, 32, "ch-32", in_telegram=False)
    bot_api.add_refund("ch-31", 150, 31)
    clock.advance(minutes=20)
    result = run("payments", "reconcile", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["matches"] is False and doc["window"]["hours"] == 24
    assert sorted(d["kind"] for d in doc["differences"]) == ["MISSING_TELEGRAM_TRANSACTION",
                                                              "REFUND_ONLY_IN_TELEGRAM"]
    assert all(d["new"] is False for d in doc["differences"])
    text = run("payments", "reconcile")
    assert text.exit_code == 1 and "2 difference(s):" in text.stdout
    assert f"[purchase {lost.id}, charge ch-32]" in text.stdout
    # Read-only: nothing marked, nothing recorded.
    assert container.checkout_service().get(doc["differences"][0]["purchase_id"]).status in (
        PurchaseStatus.PAID,)
    assert run("payments", "reviews").stdout.strip() == "no open review items"


def test_reconcile_shows_other_star_movements_apart_and_still_exits_0(
        run: Cli, container: Container, bot_api: FakeBotApi, clock: ManualClock) -> None:
    """Issue 17: withdrawals, ads, paid broadcasts, gifts, affiliate commissions, paid media, subscriptions are
    counted per kind under other_movements; they are no difference, so the books still match."""
    paid(container, bot_api, 41, "ch-41", "PREMIUM_7D")
    txs, expected = every_other_movement(clock.now())
    bot_api.add_transactions(*txs)
    clock.advance(minutes=20)
    result = run("payments", "reconcile")
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"  other Star movements: {len(txs)} (never compared with purchases, never alerted)" in lines
    rows = [line.split() for line in lines]
    assert ["withdrawal", "outgoing", "2", "5300", "Stars"] in rows
    assert ["paid_broadcast", "outgoing", "2", "101.2", "Stars"] in rows
    assert ["affiliate_commission", "incoming", "1", "30.25", "Stars"] in rows
    assert lines[-1] == "books match: no differences"
    doc = json.loads(run("payments", "reconcile", "--json").stdout)
    assert doc["figures"]["other_movements"] == {"count": len(txs), "kinds": [e.as_dict() for e in expected]}
    assert doc["figures"]["telegram"]["payments"] == {"count": 1, "stars": 50}
    assert doc["other_movements"] == len(txs) and doc["movements_recorded"] == 0  # read-only: nothing recorded


def test_reconcile_refuses_a_window_out_of_range_naming_the_flag(run: Cli) -> None:
    for hours in ("0", "721", "x"):
        result = run("payments", "reconcile", "--window-hours", hours)
        assert result.exit_code == 2 and "--window-hours" in result.stderr


def test_reviews_list_what_the_jobs_filed_and_resolve_closes_one(
        run: Cli, container: Container, bot_api: FakeBotApi, clock: ManualClock) -> None:
    bot_api.add_payment("ch-ghost", 150, 41, payload="purchase:777")
    clock.advance(minutes=20)
    from entrypoints.worker.jobs import run_job

    assert run_job("run_payments_reconciliation", container)["new_differences"] == 1
    listed = run("payments", "reviews")
    assert listed.exit_code == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split()[:6] == ["id", "created_at", "kind", "purchase", "charge", "state"]
    assert row.split()[:6] == ["1", "2026-03-01T12:20:00+00:00", "MISSING_LOCAL_PURCHASE", "-", "ch-ghost", "open"]
    assert "telegram_stars 150" in row
    as_json = json.loads(run("payments", "reviews", "--json").stdout)
    assert as_json[0]["details"]["telegram_stars"] == 150 and as_json[0]["resolved_at"] is None
    done = run("payments", "resolve", "1", "--note", "refunded by hand in Telegram")
    assert done.exit_code == 0 and done.stdout.startswith("review 1 (MISSING_LOCAL_PURCHASE) resolved at ")
    [entry] = [e for e in container.memory_store().audit if e.action == "payment_review.resolved"]
    assert (entry.actor, entry.target_id, entry.details["note"]) == (ACTOR, "1", "refunded by hand in Telegram")
    assert run("payments", "reviews").stdout.strip() == "no open review items"
    assert "resolved" in run("payments", "reviews", "--all").stdout
    again = run("payments", "resolve", "1")
    assert again.exit_code == 1 and "already resolved" in again.stderr
    missing = run("payments", "resolve", "99")
    assert missing.exit_code == 1 and "NOT_FOUND" in missing.stderr
    # Resolved stays resolved: the same difference found again is not filed or alerted again.
    assert run_job("run_payments_reconciliation", container)["new_differences"] == 0


def test_every_payments_command_has_help() -> None:
    for sub in ("refund", "refund-rollback", "reconcile", "reviews", "resolve"):
        result = CliRunner().invoke(cli, ["payments", sub, "--help"])
        assert result.exit_code == 0 and "Usage: " in result.stdout
