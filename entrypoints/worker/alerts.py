"""The alert-delivery job: what the notifier enqueues when Redis is configured (SPEC 8)."""

from __future__ import annotations

from typing import Any

from adapters.alerts import alert_from_dict
from entrypoints.worker.process import process_container


def deliver_alert(alert: dict[str, Any]) -> dict[str, str]:
    """Deliver one queued alert to its channels now; ``{channel: delivered|failed|skipped}``. Never raises
    for a failed delivery (that is logged), so RQ does not retry a whole fan-out for one bad channel."""
    return process_container().alert_dispatcher().deliver(alert_from_dict(alert))
