"""No alert storms (SPEC 8, issue 17), through every channel over real HTTP: one reconciliation run that finds 5,000
differences raises one alert per event and kind of difference, carrying the count and a bounded sample; each
PagerDuty event stays under 512,000 bytes, every Slack body passes slack_sdk's Block Kit validation; the next run
raises nothing new for the same differences, and recovery groups its reviews the same way."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from adapters.sql.engine import EngineHolder
from domain.alert_groups import MAX_ALERT_ITEMS
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.star_transactions import invoice_payment
from tests.integration.payments_reliability.world import DIFF_EVENT, RECONCILE, RECOVER, REVIEW_EVENT, World, make_world
from tests.integration.receivers import Receiver, receiving
from tests.integration.slack_check import assert_valid_slack_body
from tests.sql import truncate_all

GHOSTS = 4_990  # Telegram payments we have no purchase for
DRIFTS = 8  # payments Telegram took 300 Stars for where we settled 350
LOST = 2  # purchases paid here that Telegram does not know
PD_LIMIT = 512_000


@pytest.fixture(params=["memory", "postgresql"])
def storm(request: pytest.FixtureRequest, bot_api: FakeBotApi) -> Iterator[tuple[World, Receiver, Receiver]]:
    with ExitStack() as stack:
        slack = stack.enter_context(receiving())
        pagerduty = stack.enter_context(receiving(statuses=[202]))
        url = "memory://"
        if request.param == "postgresql":
            engines: EngineHolder = request.getfixturevalue("_pg")
            truncate_all(engines)
            url = engines.url
        world = stack.enter_context(make_world(
            url, bot_api, ops_alert_slack_webhook_url=slack.url, ops_alert_pagerduty_events_url=pagerduty.url,
            ops_alert_pagerduty_routing_key="R0UT1NGKEY"))
        yield world, slack, pagerduty


def _five_thousand_differences(world: World) -> None:
    checkout = world.c.checkout_service()
    for i in range(DRIFTS):
        p = world.invoice(world.user(), "PREMIUM_90D")
        world.telegram_payment(p, f"ch-drift-{i}", amount=300)
        checkout.successful_payment(p.id or 0, f"ch-drift-{i}", 350)
    for _ in range(LOST):
        world.paid("PREMIUM_7D", telegram=False)
    now = world.clock.now()
    world.bot_api.add_transactions(*(invoice_payment(f"ch-ghost-{i:05d}", 150, 700_000_000 + i, now,
                                                     f"purchase:{9_000_000 + i}") for i in range(GHOSTS)))
    world.later()


def _by_kind(bodies: list[Any]) -> dict[str, dict[str, Any]]:
    grouped = {b["details"]["kind"]: b for b in bodies}
    assert len(grouped) == len(bodies), "one alert per kind"
    return grouped


def test_5000_differences_raise_one_alert_per_kind_and_the_next_run_raises_nothing_new(
        storm: tuple[World, Receiver, Receiver]) -> None:
    world, slack, pagerduty = storm
    _five_thousand_differences(world)

    first = world.run(RECONCILE)
    assert (first["differences"], first["new_differences"]) == (5000, 5000)
    assert first["differences_by_kind"] == {"AMOUNT_DRIFT": DRIFTS, "MISSING_LOCAL_PURCHASE": GHOSTS,
                                            "MISSING_TELEGRAM_TRANSACTION": LOST}
    assert (first["alerts_sent"], first["alerts_failed"]) == (3, 0)

    alerts = _by_kind(world.alerts.bodies)  # the generic webhook: every field of every alert
    assert {b["event"] for b in alerts.values()} == {DIFF_EVENT}
    ghosts = alerts["MISSING_LOCAL_PURCHASE"]
    assert ghosts["summary"] == f"{GHOSTS} Telegram payments ({GHOSTS * 150} Stars) have no local purchase"
    d = ghosts["details"]
    assert (d["count"], len(d["items"]), d["items_trimmed"]) == (GHOSTS, MAX_ALERT_ITEMS, GHOSTS - MAX_ALERT_ITEMS)
    assert d["telegram_stars"] == GHOSTS * 150 and d["figures"]["drift"]["payments_count"] == GHOSTS - LOST
    assert d["items"][0]["telegram_payment_charge_id"] == "ch-ghost-00000" and d["items"][0]["review_id"] is not None
    drift = alerts["AMOUNT_DRIFT"]["details"]
    assert drift["count"] == DRIFTS and drift["by_product"] == {"PREMIUM_90D": {
        "payments": DRIFTS, "local_stars": 350 * DRIFTS, "telegram_stars": 300 * DRIFTS, "drift": -50 * DRIFTS}}
    assert alerts["MISSING_TELEGRAM_TRANSACTION"]["details"]["count"] == LOST

    assert len(pagerduty.requests) == 3
    for request in pagerduty.requests:
        assert request["bytes"] < PD_LIMIT
        payload = request["body"]["payload"]
        assert len(payload["summary"]) <= 1024 and payload["severity"] == "critical"
        assert payload["custom_details"]["count"] == alerts[payload["custom_details"]["kind"]]["details"]["count"]
    assert {r["body"]["dedup_key"] for r in pagerduty.requests} == {b["dedup_key"] for b in alerts.values()}
    assert len(slack.bodies) == 3
    for body in slack.bodies:
        assert_valid_slack_body(body)
    listed = [block["text"]["text"] for body in slack.bodies for block in body["blocks"]
              if "text" in block and block["text"]["text"].startswith("*Items*")]
    assert any(re.match(rf"\*Items\* \(first \d+ of {GHOSTS}\)\n", t) and t.endswith(" more") for t in listed)
    assert world.c.dashboard_service().metrics()["payments"]["open_review_items"] == 5000

    second = world.run(RECONCILE)  # the same 5,000 differences: already recorded, nothing new raised
    assert (second["differences"], second["new_differences"], second["alerts_sent"]) == (5000, 0, 0)
    assert (len(world.alerts.bodies), len(pagerduty.bodies), len(slack.bodies)) == (3, 3, 3)



def test_a_recovery_run_groups_its_reviews_into_one_alert_per_kind(storm: tuple[World, Receiver, Receiver]) -> None:
    world, slack, pagerduty = storm
    now = world.clock.now()
    unknown = 150
    world.bot_api.add_transactions(*(invoice_payment(f"ch-gone-{i}", 50, 600 + i, now, f"purchase:{800_000 + i}")
                                     for i in range(unknown)))
    short = world.invoice(world.user(), "PREMIUM_90D")
    world.telegram_payment(short, "ch-short", amount=349)
    world.clock.advance(minutes=3)
    recovered = world.run(RECOVER)
    assert (recovered["candidates"], recovered["reviews"], recovered["alerts_sent"]) == (unknown + 1, unknown + 1, 2)
    alerts = _by_kind(world.alerts.bodies)
    assert {b["event"] for b in alerts.values()} == {REVIEW_EVENT}
    gone = alerts["UNKNOWN_PURCHASE"]
    assert (gone["details"]["count"], len(gone["details"]["items"])) == (unknown, MAX_ALERT_ITEMS)
    assert gone["summary"] == (f"{unknown} x UNKNOWN_PURCHASE: payment of 50 Stars names purchase 800000, which does "
                               f"not exist (and {unknown - 1} more)")
    assert alerts["AMOUNT_MISMATCH"]["details"]["count"] == 1
    assert all(r["bytes"] < PD_LIMIT for r in pagerduty.requests) and len(pagerduty.requests) == 2
    for body in slack.bodies:
        assert_valid_slack_body(body)
    assert world.run(RECOVER)["alerts_sent"] == 0
    assert (len(world.alerts.bodies), len(pagerduty.bodies), len(slack.bodies)) == (2, 2, 2)


def test_a_new_difference_next_to_known_ones_raises_only_itself(storm: tuple[World, Receiver, Receiver]) -> None:
    world, _, pagerduty = storm
    now = world.clock.now()
    world.bot_api.add_transactions(*(invoice_payment(f"ch-old-{i}", 50, 600 + i, now, f"purchase:{800 + i}")
                                     for i in range(30)))
    world.later()
    assert world.run(RECONCILE)["alerts_sent"] == 1
    world.bot_api.add_payment("ch-new", 50, 999, payload="purchase:999", date=world.clock.now())
    world.later()
    summary = world.run(RECONCILE)
    assert (summary["differences"], summary["new_differences"], summary["alerts_sent"]) == (31, 1, 1)
    first, second = world.alerts.bodies
    assert first["details"]["count"] == 30 and second["details"]["count"] == 1
    assert second["details"]["items"][0]["telegram_payment_charge_id"] == "ch-new"
    assert second["dedup_key"] == second["details"]["items"][0]["dedup_key"] != first["dedup_key"]
    assert len(pagerduty.bodies) == 2
