"""The notifier that delivers each routed alert to its channels (SPEC 8).

``RoutingNotifier.notify`` never raises: a channel without its URL/key is skipped with a log line, a
failed delivery is logged by the channel, and anything unexpected is logged here. With a job queue it
hands delivery to a background job (``delivery_job``, an import path the composition root chooses), so a
slow receiver never holds up the job that raised the alert; if the queue itself is down it delivers inline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from adapters.jsonlog import log_event
from domain.alerts import RoutedAlert
from ports.jobs import JobQueue
from ports.metrics import Metrics

log = logging.getLogger("starpromo.alerts")

CHANNEL_NAMES = ("generic", "slack", "pagerduty")
GENERIC = "generic"


class AlertChannel(Protocol):
    """One delivery technology (generic webhook, Slack, PagerDuty)."""

    name: str

    def send(self, alert: RoutedAlert) -> bool:
        """Deliver ``alert``; ``True`` when the receiver accepted it. Never raises."""
        ...


def alert_to_dict(alert: RoutedAlert) -> dict[str, Any]:
    """A JSON-safe form for queueing (no pickled domain objects in Redis)."""
    return {
        "event": alert.event,
        "severity": alert.severity,
        "tier": alert.tier,
        "channels": list(alert.channels),
        "summary": alert.summary,
        "details": dict(alert.details),
        "occurred_at": alert.occurred_at.isoformat(),
        "dedup_key": alert.dedup_key,
    }


def alert_from_dict(data: Mapping[str, Any]) -> RoutedAlert:
    return RoutedAlert(
        event=str(data["event"]),
        severity=str(data["severity"]),
        tier=str(data["tier"]),
        channels=tuple(str(c) for c in data["channels"]),
        summary=str(data["summary"]),
        details=dict(data["details"]),
        occurred_at=datetime.fromisoformat(str(data["occurred_at"])),
        dedup_key=str(data["dedup_key"]),
    )


class RoutingNotifier:
    """Implements ``ports.notifier.Notifier``: sends each alert to the channels its routing names.

    ``channels`` holds the configured channels only. Backward compatible (SPEC 8): when the generic
    webhook is the only configured channel, every alert goes there whatever its routing says.
    """

    def __init__(self, channels: Mapping[str, AlertChannel], queue: JobQueue | None = None,
                 delivery_job: str | None = None, metrics: Metrics | None = None) -> None:
        if queue is not None and not delivery_job:
            raise ValueError("delivery_job is required with a queue")
        self.channels = dict(channels)
        self._queue = queue
        self._delivery_job = delivery_job
        self._metrics = metrics

    def notify(self, alert: RoutedAlert) -> None:
        if self._queue is not None and self._delivery_job:
            try:
                self._queue.enqueue(self._delivery_job, alert_to_dict(alert))
                log_event(log, "alert_enqueued", alert_event=alert.event, dedup_key=alert.dedup_key)
                return
            except Exception as exc:  # the queue is down: deliver now rather than lose the alert
                log_event(log, "alert_enqueue_failed", logging.WARNING, alert_event=alert.event,
                          dedup_key=alert.dedup_key, error_type=type(exc).__name__)
        self.deliver(alert)

    def targets(self, alert: RoutedAlert) -> tuple[str, ...]:
        if set(self.channels) == {GENERIC}:
            return (GENERIC,)
        return alert.channels

    def deliver(self, alert: RoutedAlert) -> dict[str, str]:
        """Deliver now; returns ``{channel: "delivered" | "failed" | "skipped"}``."""
        outcome: dict[str, str] = {}
        for name in self.targets(alert):
            channel = self.channels.get(name)
            if channel is None:
                outcome[name] = "skipped"
                log_event(log, "alert_channel_skipped", channel=name, alert_event=alert.event,
                          dedup_key=alert.dedup_key, reason="not configured")
                continue
            try:
                outcome[name] = "delivered" if channel.send(alert) else "failed"
            except Exception as exc:  # a channel bug must not fail the job that raised the alert
                outcome[name] = "failed"
                log.exception("alert channel crashed", extra={"event": "alert_delivery_failed", "channel": name,
                                                              "alert_event": alert.event,
                                                              "dedup_key": alert.dedup_key,
                                                              "reason": type(exc).__name__})
        if self._metrics is not None:
            for name, result in outcome.items():
                self._metrics.alert_delivery_finished(name, result)
        return outcome
