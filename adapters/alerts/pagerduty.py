"""PagerDuty Events API v2 channel (SPEC 8): a ``trigger`` event per alert occurrence; PagerDuty folds
repeats of one ``dedup_key`` into one incident.

The Events API refuses (400, never retried) an event over 512,000 bytes and cuts a summary over 1,024
characters: the summary is clipped, and ``custom_details`` trimmed to fit and marked as trimmed
(``adapters.alerts._fit``); the summary always stays."""

from __future__ import annotations

import socket
from typing import Any

from adapters.alerts._fit import fit_details
from adapters.alerts._http import DeliveryOptions, JsonPoster
from domain.alerts import RoutedAlert

PAGERDUTY_SEVERITIES = frozenset({"critical", "error", "warning", "info"})
MAX_SUMMARY_CHARS = 1024  # the Events API v2 limit
MAX_EVENT_BYTES = 512_000  # the Events API v2 limit for one whole event
COMPONENT = "starpromo"


def pagerduty_severity(severity: str) -> str:
    """Our severities are PagerDuty's (the policy refuses others at start-up); anything else pages as error."""
    return severity if severity in PAGERDUTY_SEVERITIES else "error"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pagerduty_body(alert: RoutedAlert, routing_key: str, source: str) -> dict[str, Any]:
    """The trigger event, at most ``MAX_EVENT_BYTES`` encoded (see the module docstring)."""

    def build(custom_details: dict[str, Any]) -> dict[str, Any]:
        return {
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": alert.dedup_key,
            "payload": {
                "summary": _clip(alert.summary, MAX_SUMMARY_CHARS),
                "source": source,
                "severity": pagerduty_severity(alert.severity),
                "component": COMPONENT,
                "group": alert.tier,
                "class": alert.event,
                "custom_details": custom_details,
            },
        }

    details = {**alert.details, "tier": alert.tier, "occurred_at": alert.occurred_at.isoformat()}
    return fit_details(build, details, MAX_EVENT_BYTES, "PagerDuty Events API v2: at most 512,000 bytes per event")


class PagerDutyChannel:
    name = "pagerduty"

    def __init__(self, events_url: str, routing_key: str, options: DeliveryOptions | None = None,
                 source: str | None = None) -> None:
        self._url = events_url
        self._routing_key = routing_key
        self._source = source or f"starpromo@{socket.gethostname()}"
        self._poster = JsonPoster(self.name, options or DeliveryOptions())

    def send(self, alert: RoutedAlert) -> bool:
        return self._poster.post(self._url, pagerduty_body(alert, self._routing_key, self._source), alert)
