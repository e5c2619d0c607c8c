from __future__ import annotations

import threading

from domain.alerts import RoutedAlert


class InMemoryNotifier:
    """Keeps every routed alert in a list: for tests and for hosts that poll alerts themselves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.alerts: list[RoutedAlert] = []

    def notify(self, alert: RoutedAlert) -> None:
        with self._lock:
            self.alerts.append(alert)

    def events(self) -> list[str]:
        with self._lock:
            return [a.event for a in self.alerts]
