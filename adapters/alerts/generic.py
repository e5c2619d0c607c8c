"""Generic webhook channel (SPEC 8): POST ``{"event", "severity", "tier", "summary", "details",
"occurred_at", "dedup_key"}`` to ``OPS_ALERT_WEBHOOK_URL``."""

from __future__ import annotations

from typing import Any

from adapters.alerts._http import DeliveryOptions, JsonPoster
from domain.alerts import RoutedAlert


def generic_body(alert: RoutedAlert) -> dict[str, Any]:
    return {
        "event": alert.event,
        "severity": alert.severity,
        "tier": alert.tier,
        "summary": alert.summary,
        "details": dict(alert.details),
        "occurred_at": alert.occurred_at.isoformat(),
        "dedup_key": alert.dedup_key,
    }


class GenericWebhookChannel:
    name = "generic"

    def __init__(self, url: str, options: DeliveryOptions | None = None) -> None:
        self._url = url
        self._poster = JsonPoster(self.name, options or DeliveryOptions())

    def send(self, alert: RoutedAlert) -> bool:
        return self._poster.post(self._url, generic_body(alert), alert)
