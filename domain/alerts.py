"""Alert events and their routing (SPEC 8).

The routing table (event -> severity, tier, channels) defaults to the SPEC's; the environment variable
``OPS_ALERT_ESCALATION_POLICY_JSON`` overrides it per event and per key. The policy lists channels
whether or not they are configured; skipping an unconfigured channel is the delivery adapters' job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

import attrs

from domain.errors import ConfigurationError

POLICY_VARIABLE = "OPS_ALERT_ESCALATION_POLICY_JSON"

PROMO_CAMPAIGN_AUTO_PAUSED = "promo_campaign_auto_paused"
PAYMENTS_RECONCILIATION_DIFF_DETECTED = "payments_reconciliation_diff_detected"
PAYMENTS_RECOVERY_REVIEW_REQUIRED = "payments_recovery_review_required"

CHANNELS: tuple[str, ...] = ("pagerduty", "slack", "generic")
GENERIC_CHANNEL = "generic"
# PagerDuty's Events API v2 severities; every channel understands them.
SEVERITIES: tuple[str, ...] = ("info", "warning", "error", "critical")
ROUTE_KEYS: tuple[str, ...] = ("severity", "tier", "channels")
MAX_TIER = 64


@attrs.frozen
class RoutedAlert:
    """An alert with its routing decided: what happened, how bad, who, and through which channels."""

    event: str
    severity: str
    tier: str
    channels: tuple[str, ...]
    summary: str
    details: dict[str, Any]
    occurred_at: datetime
    dedup_key: str


@attrs.frozen
class Route:
    severity: str
    tier: str
    channels: tuple[str, ...]


DEFAULT_ROUTES: Mapping[str, Route] = {
    PROMO_CAMPAIGN_AUTO_PAUSED: Route("warning", "ops_l2", ("slack", "generic")),
    PAYMENTS_RECONCILIATION_DIFF_DETECTED: Route("critical", "ops_l1", ("pagerduty", "slack", "generic")),
    PAYMENTS_RECOVERY_REVIEW_REQUIRED: Route("error", "ops_l1", ("pagerduty", "slack", "generic")),
}


def dedup_key(event: str, *identity: object) -> str:
    """A stable key for one occurrence of ``event``: the same inputs always give the same key."""
    raw = json.dumps([event, *identity], default=str, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class AlertPolicy:
    """Decides severity, tier and channels of each alert event."""

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self._routes = dict(DEFAULT_ROUTES if routes is None else routes)

    @classmethod
    def default(cls) -> AlertPolicy:
        return cls()

    @classmethod
    def from_json(cls, raw: str | None, configured_channels: Collection[str] = ()) -> AlertPolicy:
        """The default table overridden by ``raw`` (the variable's value; None or blank: no override).

        Backward compatible: when the generic webhook is the only configured channel, every event
        routes to it whatever the table says.
        """
        routes = dict(DEFAULT_ROUTES)
        if raw is not None and raw.strip():
            for event, override in _parse_overrides(raw).items():
                routes[event] = _merge(event, routes[event], override)
        if set(configured_channels) == {GENERIC_CHANNEL}:
            routes = {event: attrs.evolve(r, channels=(GENERIC_CHANNEL,)) for event, r in routes.items()}
        return cls(routes)

    @property
    def routes(self) -> Mapping[str, Route]:
        return dict(self._routes)

    def route_for(self, event: str) -> Route:
        try:
            return self._routes[event]
        except KeyError:
            raise ValueError(f"unknown alert event {event!r}; known: {', '.join(self._routes)}") from None

    def route(self, event: str, summary: str, details: Mapping[str, Any], occurred_at: datetime,
              dedup: str | None = None) -> RoutedAlert:
        """The routed alert; ``dedup`` defaults to a hash of the event, its details and when it happened."""
        r = self.route_for(event)
        key = dedup if dedup is not None else dedup_key(event, sorted(details.items()), occurred_at.isoformat())
        return RoutedAlert(event=event, severity=r.severity, tier=r.tier, channels=r.channels, summary=summary,
                           details=dict(details), occurred_at=occurred_at, dedup_key=key)


def _bad(message: str) -> ConfigurationError:
    return ConfigurationError(f"{POLICY_VARIABLE}: {message}")


def _parse_overrides(raw: str) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _bad(f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(data, dict):
        raise _bad("must be a JSON object of event -> {severity, tier, channels}")
    for event, override in data.items():
        if event not in DEFAULT_ROUTES:
            raise _bad(f"unknown event {event!r}; known: {', '.join(DEFAULT_ROUTES)}")
        if not isinstance(override, dict):
            raise _bad(f"{event}: must be an object with any of {', '.join(ROUTE_KEYS)}")
        unknown = sorted(set(override) - set(ROUTE_KEYS))
        if unknown:
            raise _bad(f"{event}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(ROUTE_KEYS)}")
    return data


def _merge(event: str, base: Route, override: Mapping[str, Any]) -> Route:
    severity, tier, channels = base.severity, base.tier, base.channels
    if "severity" in override:
        severity = override["severity"]
        if severity not in SEVERITIES:
            raise _bad(f"{event}.severity: unknown severity {severity!r}; allowed: {', '.join(SEVERITIES)}")
    if "tier" in override:
        tier = override["tier"]
        if not isinstance(tier, str) or not tier.strip() or len(tier) > MAX_TIER:
            raise _bad(f"{event}.tier: must be a string of 1..{MAX_TIER} characters")
    if "channels" in override:
        value = override["channels"]
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise _bad(f"{event}.channels: must be a list of channel names")
        for channel in value:
            if channel not in CHANNELS:
                raise _bad(f"{event}.channels: unknown channel {channel!r}; allowed: {', '.join(CHANNELS)}")
        if len(set(value)) != len(value):
            raise _bad(f"{event}.channels: duplicate channel")
        channels = tuple(value)
    return Route(severity=severity, tier=tier, channels=channels)
