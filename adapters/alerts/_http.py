"""One JSON POST with a timeout and retries: the delivery mechanics every HTTP alert channel shares.

Retried (with exponential backoff): connection errors, timeouts, 5xx and 429 (the receiver asks us to
come back later). A 429 or 503 carrying ``Retry-After`` (seconds or an HTTP date) waits at least that long
before the retry, as long as the waits of one delivery stay within ``RETRY_BUDGET_SECONDS``; a receiver asking
for longer is given up on at once (and logged). Not retried: any other 4xx (the request itself is wrong;
sending it again cannot help). A delivery that finally fails is logged as JSON and reported as ``False``; it
never raises.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from adapters.alerts.options import DeliveryOptions as DeliveryOptions
from adapters.jsonlog import json_default, log_event
from domain.alerts import RoutedAlert

log = logging.getLogger("starpromo.alerts")

MAX_BACKOFF_SECONDS = 30.0
# The longest one delivery waits between its attempts, Retry-After included.
RETRY_BUDGET_SECONDS = 60.0


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The bytes a channel POSTs for ``body`` (what size limits are measured on)."""
    return json.dumps(body, default=json_default, ensure_ascii=False).encode("utf-8")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _retryable_status(status: int) -> bool:
    return status >= 500 or status == 429


class JsonPoster:
    """Posts JSON bodies for one channel. Thread-safe: a ``requests.Session`` per poster, no shared state."""

    def __init__(
        self,
        channel: str,
        options: DeliveryOptions,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.channel = channel
        self.options = options
        self._session = session or requests.Session()
        self._sleep = sleep

    def post(self, url: str, body: Mapping[str, Any], alert: RoutedAlert) -> bool:
        """POST ``body`` to ``url``; ``True`` once a 2xx answer arrives, ``False`` when given up."""
        data = encode_body(body)
        headers = {"Content-Type": "application/json", "User-Agent": "starpromo-alerts/1"}
        attempts = self.options.max_retries + 1
        started = time.monotonic()
        reason = ""
        waited = 0.0
        for attempt in range(1, attempts + 1):
            retryable = True
            asked: float | None = None
            try:
                response = self._session.post(url, data=data, headers=headers, timeout=self.options.timeout_seconds,
                                              allow_redirects=False)
            except requests.Timeout:
                reason = "timeout"
            except requests.ConnectionError as exc:
                reason = f"connection_error: {type(exc).__name__}"
            except requests.RequestException as exc:  # invalid URL and the like: sending again cannot help
                reason = f"request_error: {type(exc).__name__}"
                retryable = False
            else:
                status = response.status_code
                asked = retry_after_seconds(response.headers.get("Retry-After")) if status in (429, 503) else None
                response.close()
                if 200 <= status < 300:
                    log_event(log, "alert_delivered", channel=self.channel, alert_event=alert.event,
                              dedup_key=alert.dedup_key, status=status, attempts=attempt,
                              duration_ms=_ms_since(started))
                    return True
                reason = f"http_{status}"
                retryable = _retryable_status(status)
            if not retryable or attempt == attempts:
                break
            delay = min(self.options.backoff_seconds * (2 ** (attempt - 1)), MAX_BACKOFF_SECONDS)
            if asked is not None:
                delay = max(delay, asked)  # the receiver said when: not earlier
                if waited + delay > RETRY_BUDGET_SECONDS:
                    reason = f"{reason} (Retry-After {asked:g} s is beyond the {RETRY_BUDGET_SECONDS:g} s budget)"
                    break
            waited += delay
            log_event(log, "alert_delivery_retry", logging.WARNING, channel=self.channel, alert_event=alert.event,
                      dedup_key=alert.dedup_key, attempt=attempt, reason=reason, retry_in_seconds=delay,
                      retry_after=asked)
            self._sleep(delay)
        log_event(log, "alert_delivery_failed", logging.ERROR, channel=self.channel, alert_event=alert.event,
                  dedup_key=alert.dedup_key, attempts=attempt, reason=reason, retryable=retryable,
                  duration_ms=_ms_since(started))
        return False


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
