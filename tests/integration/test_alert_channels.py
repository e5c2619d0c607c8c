"""Alert channels over real HTTP (SPEC 8): local receivers on 127.0.0.1 record exactly what arrives."""

from __future__ import annotations

import json
import logging
import socket
import time
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from adapters.alerts import (
    DeliveryOptions,
    GenericWebhookChannel,
    PagerDutyChannel,
    RoutingNotifier,
    SlackChannel,
    build_channels,
)
from adapters.alerts._http import encode_body, retry_after_seconds
from adapters.alerts.generic import generic_body
from adapters.alerts.pagerduty import pagerduty_body
from domain.alerts import RoutedAlert
from tests.integration.receivers import receiving
from tests.integration.slack_check import assert_valid_slack_body

FAST = DeliveryOptions(timeout_seconds=2.0, max_retries=2, backoff_seconds=0.01)

ALERT = RoutedAlert(
    event="promo_campaign_auto_paused",
    severity="warning",
    tier="ops_l2",
    channels=("slack", "generic"),
    summary="Campaign 7 (SPRING) auto-paused: 25 failed attempts from 6 users in 10 min",
    details={"promo_code_id": 7, "code_prefix": "SPRI", "failures": 25, "distinct_users": 6},
    occurred_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    dedup_key="promo_campaign_auto_paused:7:2026-03-01T12:00:00+00:00",
)

PAYMENT_ALERT = RoutedAlert(
    event="payments_reconciliation_diff_detected",
    severity="critical",
    tier="ops_l1",
    channels=("pagerduty", "slack", "generic"),
    summary="2 purchases differ from Telegram getStarTransactions",
    details={"missing_locally": ["ch_1"], "missing_remotely": [41]},
    occurred_at=datetime(2026, 3, 1, 12, 15, tzinfo=UTC),
    dedup_key="payments_reconciliation_diff_detected:2026-03-01T12:15:00+00:00",
)


def _json_lines(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == event]


def test_generic_webhook_receives_the_spec_fields_exactly() -> None:
    with receiving() as rx:
        assert GenericWebhookChannel(rx.url, FAST).send(ALERT) is True
    assert rx.bodies == [{
        "event": "promo_campaign_auto_paused",
        "severity": "warning",
        "tier": "ops_l2",
        "summary": "Campaign 7 (SPRING) auto-paused: 25 failed attempts from 6 users in 10 min",
        "details": {"promo_code_id": 7, "code_prefix": "SPRI", "failures": 25, "distinct_users": 6},
        "occurred_at": "2026-03-01T12:00:00+00:00",
        "dedup_key": "promo_campaign_auto_paused:7:2026-03-01T12:00:00+00:00",
    }]
    assert rx.requests[0]["headers"]["Content-Type"] == "application/json"


def test_slack_receives_text_and_blocks_with_severity_tier_summary_and_details() -> None:
    with receiving() as rx:
        assert SlackChannel(rx.url, FAST).send(ALERT) is True
    assert rx.bodies == [{
        "text": "[WARNING] ops_l2: Campaign 7 (SPRING) auto-paused: 25 failed attempts from 6 users in 10 min",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": ":warning: *[WARNING]* Campaign 7 (SPRING) "
                                                                   "auto-paused: 25 failed attempts from 6 users "
                                                                   "in 10 min"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Severity*\nWARNING"},
                {"type": "mrkdwn", "text": "*Tier*\nops_l2"},
                {"type": "mrkdwn", "text": "*Event*\n`promo_campaign_auto_paused`"},
                {"type": "mrkdwn", "text": "*Occurred at*\n2026-03-01T12:00:00+00:00"},
            ]},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*promo_code_id*\n7"},
                {"type": "mrkdwn", "text": "*code_prefix*\nSPRI"},
                {"type": "mrkdwn", "text": "*failures*\n25"},
                {"type": "mrkdwn", "text": "*distinct_users*\n6"},
            ]},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": "dedup_key: `promo_campaign_auto_paused:7:2026-03-01T12:00:00+00:00`"},
            ]},
        ],
    }]


def test_slack_escapes_markup_and_keeps_at_most_ten_details() -> None:
    alert = RoutedAlert(event="e", severity="error", tier="ops_l1", channels=("slack",), summary="a <b> & c",
                        details={f"k{i}": "<@here>" for i in range(15)}, occurred_at=ALERT.occurred_at,
                        dedup_key="d")
    with receiving() as rx:
        SlackChannel(rx.url, FAST).send(alert)
    assert rx.bodies[0]["text"] == "[ERROR] ops_l1: a &lt;b&gt; &amp; c"
    blocks = rx.bodies[0]["blocks"]
    assert blocks[0]["text"]["text"] == ":large_orange_circle: *[ERROR]* a &lt;b&gt; &amp; c"
    assert len(blocks[2]["fields"]) == 10
    assert blocks[2]["fields"][0]["text"] == "*k0*\n&lt;@here&gt;"


def test_pagerduty_receives_an_events_v2_trigger() -> None:
    with receiving(statuses=[202]) as rx:
        channel = PagerDutyChannel(rx.url, "R0UT1NGKEY", FAST, source="starpromo@test-host")
        assert channel.send(PAYMENT_ALERT) is True
    assert rx.bodies == [{
        "routing_key": "R0UT1NGKEY",
        "event_action": "trigger",
        "dedup_key": "payments_reconciliation_diff_detected:2026-03-01T12:15:00+00:00",
        "payload": {
            "summary": "2 purchases differ from Telegram getStarTransactions",
            "source": "starpromo@test-host",
            "severity": "critical",
            "component": "starpromo",
            "group": "ops_l1",
            "class": "payments_reconciliation_diff_detected",
            "custom_details": {"missing_locally": ["ch_1"], "missing_remotely": [41], "tier": "ops_l1",
                               "occurred_at": "2026-03-01T12:15:00+00:00"},
        },
    }]


def test_each_alert_goes_to_its_routed_channels_only() -> None:
    with receiving() as generic, receiving() as slack, receiving(statuses=[202]) as pd:
        notifier = RoutingNotifier(build_channels(
            webhook_url=generic.url, slack_webhook_url=slack.url, pagerduty_events_url=pd.url,
            pagerduty_routing_key="KEY", options=FAST))
        notifier.notify(ALERT)  # slack, generic
        notifier.notify(PAYMENT_ALERT)  # pagerduty, slack, generic
    assert [b["event"] for b in generic.bodies] == ["promo_campaign_auto_paused",
                                                    "payments_reconciliation_diff_detected"]
    assert len(slack.bodies) == 2
    assert [b["payload"]["class"] for b in pd.bodies] == ["payments_reconciliation_diff_detected"]


def test_nothing_is_sent_for_an_unconfigured_channel_and_the_skip_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="starpromo.alerts")
    with receiving() as slack, receiving() as pd:
        notifier = RoutingNotifier(build_channels(
            webhook_url=None, slack_webhook_url=slack.url, pagerduty_events_url=pd.url,
            pagerduty_routing_key=None, options=FAST))
        outcome = notifier.deliver(PAYMENT_ALERT)
    assert outcome == {"pagerduty": "skipped", "slack": "delivered", "generic": "skipped"}
    assert pd.bodies == []
    skipped = _json_lines(caplog, "alert_channel_skipped")
    assert sorted(r.channel for r in skipped) == ["generic", "pagerduty"]  # type: ignore[attr-defined]


def test_with_only_the_generic_webhook_configured_every_event_goes_there() -> None:
    pagerduty_only = RoutedAlert(event="payments_recovery_review_required", severity="error", tier="ops_l1",
                                 channels=("pagerduty",), summary="purchase 9 needs review", details={},
                                 occurred_at=ALERT.occurred_at, dedup_key="payments_recovery_review_required:9")
    with receiving() as generic:
        notifier = RoutingNotifier(build_channels(
            webhook_url=generic.url, slack_webhook_url=None, pagerduty_events_url="http://127.0.0.1:9/x",
            pagerduty_routing_key=None, options=FAST))
        notifier.notify(pagerduty_only)
    assert [b["event"] for b in generic.bodies] == ["payments_recovery_review_required"]


def test_a_receiver_answering_500_is_retried_then_given_up_without_raising(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="starpromo.alerts")
    with receiving(statuses=[500]) as rx:
        notifier = RoutingNotifier({"generic": GenericWebhookChannel(rx.url, FAST)})
        notifier.notify(ALERT)  # must not raise
    assert len(rx.bodies) == 1 + FAST.max_retries
    assert all(b == rx.bodies[0] for b in rx.bodies)  # the same body, same dedup_key, each time
    [failed] = _json_lines(caplog, "alert_delivery_failed")
    assert failed.reason == "http_500" and failed.attempts == 3  # type: ignore[attr-defined]
    assert len(_json_lines(caplog, "alert_delivery_retry")) == 2


def test_a_5xx_followed_by_success_is_delivered_on_the_retry() -> None:
    with receiving(statuses=[503, 200]) as rx:
        assert GenericWebhookChannel(rx.url, FAST).send(ALERT) is True
    assert len(rx.bodies) == 2


def test_a_4xx_is_not_retried() -> None:
    with receiving(statuses=[400]) as rx:
        assert SlackChannel(rx.url, FAST).send(ALERT) is False
    assert len(rx.bodies) == 1


def test_retries_back_off_exponentially() -> None:
    options = DeliveryOptions(timeout_seconds=2.0, max_retries=2, backoff_seconds=0.2)
    with receiving(statuses=[500]) as rx:
        started = time.monotonic()
        GenericWebhookChannel(rx.url, options).send(ALERT)
        elapsed = time.monotonic() - started
    assert len(rx.bodies) == 3
    assert elapsed >= 0.2 + 0.4


def test_the_timeout_is_honoured_for_a_receiver_that_is_too_slow() -> None:
    options = DeliveryOptions(timeout_seconds=0.3, max_retries=1, backoff_seconds=0.01)
    with receiving(delay=2.0) as rx:
        started = time.monotonic()
        assert GenericWebhookChannel(rx.url, options).send(ALERT) is False
        elapsed = time.monotonic() - started
    assert len(rx.bodies) == 2  # the first attempt and one retry, each cut off at the timeout
    assert elapsed < 1.5


def test_a_refused_connection_is_retried_and_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="starpromo.alerts")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    notifier = RoutingNotifier({"generic": GenericWebhookChannel(f"http://127.0.0.1:{port}/x", FAST)})
    notifier.notify(ALERT)
    [failed] = _json_lines(caplog, "alert_delivery_failed")
    assert failed.reason.startswith("connection_error") and failed.attempts == 3  # type: ignore[attr-defined]


def test_delivery_log_lines_are_json_with_an_event_and_no_secret_url() -> None:
    from adapters.jsonlog import JsonLineFormatter

    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(JsonLineFormatter().format(record))

    handler = Capture()
    logger = logging.getLogger("starpromo.alerts")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with receiving(statuses=[500]) as rx:
            SlackChannel(rx.url + "/T000/B000/SECRET", DeliveryOptions(2.0, 0, 0.01)).send(ALERT)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(r) for r in records]
    assert [line["event"] for line in lines] == ["alert_delivery_failed"]
    assert lines[0]["channel"] == "slack" and lines[0]["alert_event"] == "promo_campaign_auto_paused"
    assert all("SECRET" not in r for r in records)


# --- issue 17: limits after escaping, PagerDuty's 512,000 bytes, Retry-After ------------------------------------

def _grouped(count: int, shown: int, summary: str = "Telegram payment of 350 Stars has no local purchase",
             extra: dict[str, Any] | None = None) -> RoutedAlert:
    items = [{"dedup_key": f"{i:064x}", "summary": summary, "review_id": i, "purchase_id": None,
              "telegram_payment_charge_id": f"stxLongTelegramChargeId{i:012d}", "telegram_stars": 350,
              "user_id": 800_000_000 + i, "payload": f"purchase:{900_000 + i}", **(extra or {})}
             for i in range(shown)]
    return RoutedAlert(event="payments_reconciliation_diff_detected", severity="critical", tier="ops_l1",
                       channels=("pagerduty", "slack", "generic"), summary=f"{count} Telegram payments differ",
                       details={"kind": "MISSING_LOCAL_PURCHASE", "count": count, "items": items,
                                "items_trimmed": count - shown},
                       occurred_at=PAYMENT_ALERT.occurred_at, dedup_key="d" * 64)


def test_a_pagerduty_event_over_512000_bytes_is_trimmed_and_says_what_was_trimmed() -> None:
    alert = _grouped(5000, 5000)  # ~1.3 MB of items: PagerDuty would answer 400, never retried
    with receiving(statuses=[202]) as rx:
        assert PagerDutyChannel(rx.url, "KEY", FAST).send(alert) is True
    [request] = rx.requests
    assert request["bytes"] < 512_000
    payload = request["body"]["payload"]
    assert payload["summary"] == "5000 Telegram payments differ"
    details = payload["custom_details"]
    kept = len(details["items"])
    assert 0 < kept < 5000 and details["count"] == 5000
    assert details["items_trimmed"] == 5000 - kept  # what was left out, counted
    assert details["trimmed"]["removed"] == {"items": 5000 - kept}
    assert "512,000 bytes" in details["trimmed"]["limit"]
    assert details["items"][0] == alert.details["items"][0]  # whole items kept, from the first on


def test_one_difference_with_thousands_of_payments_is_trimmed_inside_it() -> None:
    alert = _grouped(1, 1, extra={"payments": [{"purchase_id": i, "telegram_payment_charge_id": f"ch-{i:040d}",
                                                "local_stars": 350, "telegram_stars": 300} for i in range(8000)]})
    body = pagerduty_body(attrs.evolve(alert, summary="s" * 5000), "KEY", "starpromo@test")
    assert len(encode_body(body)) <= 512_000
    assert len(body["payload"]["summary"]) == 1024  # clipped, never dropped
    details = body["payload"]["custom_details"]
    assert len(details["items"]) == 1 and 0 < len(details["items"][0]["payments"]) < 8000
    assert details["trimmed"]["removed"] == {"items[0].payments": 8000 - len(details["items"][0]["payments"])}


def test_details_without_lists_give_way_to_a_note_and_small_bodies_stay_untouched() -> None:
    huge = attrs.evolve(ALERT, details={"dump": "x" * 700_000})
    body = pagerduty_body(huge, "KEY", "src")
    assert len(encode_body(body)) <= 512_000
    assert body["payload"]["custom_details"]["trimmed"]["shortened"] == ["dump"]
    assert body["payload"]["custom_details"]["dump"].endswith("characters trimmed]")
    assert "trimmed" not in pagerduty_body(PAYMENT_ALERT, "KEY", "src")["payload"]["custom_details"]
    assert len(encode_body(generic_body(_grouped(5000, 5000)))) <= 512_000


def test_slack_text_stays_within_3000_characters_after_escaping_and_every_body_validates() -> None:
    escapes = attrs.evolve(ALERT, summary="<&>" * 1500, details={"note": "&" * 5000, "k<>": "<@channel>"})
    grouped = _grouped(5000, 100, summary="refund <of> & " * 40)
    with receiving() as rx:
        channel = SlackChannel(rx.url, FAST)
        for alert in (ALERT, PAYMENT_ALERT, escapes, grouped):
            assert channel.send(alert) is True
    for body in rx.bodies:
        assert_valid_slack_body(body)
    first = rx.bodies[2]
    assert len(first["text"]) <= 3000 and first["text"].endswith("…")
    assert first["blocks"][0]["text"]["text"].count("&amp;") > 100  # escaped, then cut: no broken entity
    items = rx.bodies[3]["blocks"][3]["text"]["text"]
    assert items.startswith("*Items* (first ") and items.endswith(" more") and len(items) <= 3000


def test_a_channel_answering_429_with_retry_after_1_gets_the_alert_on_the_retry(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="starpromo.alerts")
    with receiving(statuses=[429, 200], retry_after="1") as rx:
        assert SlackChannel(rx.url, FAST).send(ALERT) is True
    first, second = rx.requests
    assert second["body"] == first["body"]
    assert second["at"] - first["at"] >= 0.95  # Retry-After honoured, not the 0.01 s backoff
    [retry] = _json_lines(caplog, "alert_delivery_retry")
    assert (retry.reason, retry.retry_after, retry.retry_in_seconds) == ("http_429", 1.0, 1.0)  # type: ignore[attr-defined]


def test_a_retry_after_beyond_the_budget_gives_up_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="starpromo.alerts")
    with receiving(statuses=[429], retry_after="3600") as rx:
        assert GenericWebhookChannel(rx.url, FAST).send(ALERT) is False
    assert len(rx.bodies) == 1
    [failed] = _json_lines(caplog, "alert_delivery_failed")
    assert "beyond the 60 s budget" in failed.reason  # type: ignore[attr-defined]


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("1", now) == 1.0
    assert retry_after_seconds("Sun, 01 Mar 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Sun, 01 Mar 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None
