"""Generic webhook channel (SPEC 8): POST ``{"event", "severity", "tier", "summary", "details",
"occurred_at", "dedup_key"}`` to ``OPS_ALERT_WEBHOOK_URL``. Bodies stay within ``MAX_BODY_BYTES`` (PagerDuty's
limit, so a receiver that forwards them there is safe): larger ``details`` are trimmed and say so
(``adapters.alerts._fit``)."""

from __future__ import annotations

from typing import Any

from adapters.alerts._fit import fit_details
from adapters.alerts._http import DeliveryOptions, JsonPoster
from domain.alerts import RoutedAlert

MAX_BODY_BYTES = 512_000


def generic_body(alert: RoutedAlert) -> dict[str, Any]:
    def build(details: dict[str, Any]) -> dict[str, Any]:
        return {
            "event": alert.event,
            "severity": alert.severity,
            "tier": alert.tier,
            "summary": alert.summary,
            "details": details,
            "occurred_at": alert.occurred_at.isoformat(),
            "dedup_key": alert.dedup_key,
        }

    return fit_details(build, dict(alert.details), MAX_BODY_BYTES, "generic webhook: at most 512,000 bytes per body")


class GenericWebhookChannel:
    name = "generic"

    def __init__(self, url: str, options: DeliveryOptions | None = None) -> None:
        self._url = url
        self._poster = JsonPoster(self.name, options or DeliveryOptions())

    def send(self, alert: RoutedAlert) -> bool:
        return self._poster.post(self._url, generic_body(alert), alert)
