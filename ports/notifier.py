from __future__ import annotations

from typing import Protocol

from domain.alerts import RoutedAlert


class Notifier(Protocol):
    """Receives routed alerts. Delivery must never raise into the caller (a job, a request)."""

    def notify(self, alert: RoutedAlert) -> None: ...
