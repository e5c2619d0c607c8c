"""``ports.metrics.Metrics`` kept in a dict: for tests, and for hosts that read the numbers themselves."""

from __future__ import annotations

import threading
from collections import Counter


class InMemoryMetrics:
    """Counts every recording by its labels (``counts[("redeem", "ACCEPTED")] == 3``); timings are summed in
    ``seconds`` under the same keys. ``in_flight`` is the HTTP requests started and not yet finished."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, ...]] = Counter()
        self.seconds: dict[tuple[str, ...], float] = {}
        self.in_flight = 0

    def _add(self, key: tuple[str, ...], seconds: float | None = None) -> None:
        with self._lock:
            self.counts[key] += 1
            if seconds is not None:
                self.seconds[key] = self.seconds.get(key, 0.0) + seconds

    def redeem_finished(self, result: str, seconds: float) -> None:
        self._add(("redeem", result), seconds)

    def http_request_started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def http_request_finished(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.in_flight -= 1
        self._add(("http", route, method, str(status)), seconds)

    def job_finished(self, job: str, outcome: str, seconds: float) -> None:
        self._add(("job", job, outcome), seconds)

    def alert_delivery_finished(self, channel: str, outcome: str) -> None:
        self._add(("alert", channel, outcome))

    def telegram_call_finished(self, method: str, outcome: str) -> None:
        self._add(("telegram", method, outcome))
