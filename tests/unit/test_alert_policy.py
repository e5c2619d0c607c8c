"""SPEC 8: the alert routing table, OPS_ALERT_ESCALATION_POLICY_JSON overrides and generic-only routing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from domain.alerts import (
    DEFAULT_ROUTES,
    PAYMENTS_RECONCILIATION_DIFF_DETECTED,
    PAYMENTS_RECOVERY_REVIEW_REQUIRED,
    PROMO_CAMPAIGN_AUTO_PAUSED,
    AlertPolicy,
    Route,
    dedup_key,
)
from domain.errors import ConfigurationError

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALL = ("pagerduty", "slack", "generic")


def test_defaults_are_the_spec_table() -> None:
    routes = AlertPolicy.default().routes
    assert routes == {
        "promo_campaign_auto_paused": Route("warning", "ops_l2", ("slack", "generic")),
        "payments_reconciliation_diff_detected": Route("critical", "ops_l1", ("pagerduty", "slack", "generic")),
        "payments_recovery_review_required": Route("error", "ops_l1", ("pagerduty", "slack", "generic")),
    }


@pytest.mark.parametrize("raw", [None, "", "   ", "{}"])
def test_no_override_keeps_the_defaults(raw: str | None) -> None:
    assert AlertPolicy.from_json(raw, ALL).routes == DEFAULT_ROUTES


def test_override_merges_per_event_and_per_key() -> None:
    raw = json.dumps({"promo_campaign_auto_paused": {"severity": "error", "channels": ["pagerduty"]}})
    routes = AlertPolicy.from_json(raw, ALL).routes
    assert routes[PROMO_CAMPAIGN_AUTO_PAUSED] == Route("error", "ops_l2", ("pagerduty",))  # tier kept
    assert routes[PAYMENTS_RECONCILIATION_DIFF_DETECTED] == DEFAULT_ROUTES[PAYMENTS_RECONCILIATION_DIFF_DETECTED]
    assert routes[PAYMENTS_RECOVERY_REVIEW_REQUIRED] == DEFAULT_ROUTES[PAYMENTS_RECOVERY_REVIEW_REQUIRED]


def test_override_of_tier_only_keeps_severity_and_channels() -> None:
    raw = json.dumps({"payments_recovery_review_required": {"tier": "payments_oncall"}})
    assert AlertPolicy.from_json(raw, ALL).routes[PAYMENTS_RECOVERY_REVIEW_REQUIRED] == Route(
        "error", "payments_oncall", ("pagerduty", "slack", "generic"))


def test_override_of_several_events_at_once() -> None:
    raw = json.dumps({"payments_reconciliation_diff_detected": {"severity": "warning"},
                      "promo_campaign_auto_paused": {"channels": []}})
    routes = AlertPolicy.from_json(raw, ALL).routes
    assert routes[PAYMENTS_RECONCILIATION_DIFF_DETECTED].severity == "warning"
    assert routes[PROMO_CAMPAIGN_AUTO_PAUSED].channels == ()  # muted on purpose


@pytest.mark.parametrize("severity", ["info", "warning", "error", "critical"])
def test_every_known_severity_is_accepted(severity: str) -> None:
    raw = json.dumps({"promo_campaign_auto_paused": {"severity": severity}})
    assert AlertPolicy.from_json(raw, ALL).route_for(PROMO_CAMPAIGN_AUTO_PAUSED).severity == severity


@pytest.mark.parametrize(("raw", "fragment"), [
    ("{not json", "invalid JSON"),
    ("[]", "must be a JSON object"),
    ('{"promo_campaign_paused": {}}', "unknown event 'promo_campaign_paused'"),
    ('{"promo_campaign_auto_paused": "error"}', "promo_campaign_auto_paused: must be an object"),
    ('{"promo_campaign_auto_paused": {"level": "error"}}', "unknown key(s) level"),
    ('{"promo_campaign_auto_paused": {"severity": "fatal"}}', "unknown severity 'fatal'"),
    ('{"promo_campaign_auto_paused": {"severity": 3}}', "unknown severity 3"),
    ('{"promo_campaign_auto_paused": {"channels": ["email"]}}', "unknown channel 'email'"),
    ('{"promo_campaign_auto_paused": {"channels": "slack"}}', "channels: must be a list"),
    ('{"promo_campaign_auto_paused": {"channels": ["slack", "slack"]}}', "duplicate channel"),
    ('{"promo_campaign_auto_paused": {"tier": ""}}', "tier: must be a string"),
])
def test_bad_policy_is_a_configuration_error_naming_the_variable(raw: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        AlertPolicy.from_json(raw, ALL)
    assert err.value.message.startswith("OPS_ALERT_ESCALATION_POLICY_JSON: ")
    assert fragment in err.value.message


def test_with_only_the_generic_webhook_configured_every_event_goes_there() -> None:
    raw = json.dumps({"payments_recovery_review_required": {"channels": ["pagerduty"], "severity": "critical"}})
    policy = AlertPolicy.from_json(raw, ["generic"])
    assert {r.channels for r in policy.routes.values()} == {("generic",)}
    assert policy.route_for(PAYMENTS_RECOVERY_REVIEW_REQUIRED).severity == "critical"
    assert AlertPolicy.from_json(None, ["generic"]).route_for(PROMO_CAMPAIGN_AUTO_PAUSED).tier == "ops_l2"


def test_unconfigured_channels_are_still_listed_by_the_policy() -> None:
    for configured in ([], ["slack"], ["generic", "slack"]):
        routes = AlertPolicy.from_json(None, configured).routes
        assert routes[PAYMENTS_RECONCILIATION_DIFF_DETECTED].channels == ("pagerduty", "slack", "generic")


def test_route_builds_the_routed_alert() -> None:
    policy = AlertPolicy.from_json('{"promo_campaign_auto_paused": {"severity": "error"}}', ALL)
    details = {"promo_code_id": 7, "campaign_id": 3}
    alert = policy.route(PROMO_CAMPAIGN_AUTO_PAUSED, "Code 7 of campaign 3 auto-paused", details, AT, "k-1")
    assert (alert.event, alert.severity, alert.tier, alert.channels) == (
        PROMO_CAMPAIGN_AUTO_PAUSED, "error", "ops_l2", ("slack", "generic"))
    assert (alert.summary, alert.details, alert.occurred_at, alert.dedup_key) == (
        "Code 7 of campaign 3 auto-paused", {"promo_code_id": 7, "campaign_id": 3}, AT, "k-1")


def test_dedup_key_is_stable_per_occurrence() -> None:
    policy = AlertPolicy.default()
    a = policy.route(PROMO_CAMPAIGN_AUTO_PAUSED, "x", {"promo_code_id": 1, "rule": "hash"}, AT)
    b = policy.route(PROMO_CAMPAIGN_AUTO_PAUSED, "other text", {"rule": "hash", "promo_code_id": 1}, AT)
    c = policy.route(PROMO_CAMPAIGN_AUTO_PAUSED, "x", {"promo_code_id": 2, "rule": "hash"}, AT)
    assert a.dedup_key == b.dedup_key != c.dedup_key
    assert len(a.dedup_key) == 64
    assert dedup_key("e", 1, "t") == dedup_key("e", 1, "t") != dedup_key("e", 2, "t")


def test_routing_an_unknown_event_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown alert event"):
        AlertPolicy.default().route("nope", "s", {}, AT)
