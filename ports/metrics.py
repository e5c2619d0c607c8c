"""What a process counts and times for the operators' dashboards and alert rules (SPEC 15).

Recording sits on the request path: an implementation costs microseconds and never raises. Label values
are small closed sets (a result, a route rule, a job or channel name), never client input.
"""

from __future__ import annotations

from typing import Protocol


class Metrics(Protocol):
    def redeem_finished(self, result: str, seconds: float) -> None:
        """One redeem decided: its SPEC 4 ``result`` (``ERROR`` when it raised) and how long it took."""
        ...

    def http_request_started(self) -> None:
        """A request entered the app (paired with exactly one ``http_request_finished``)."""
        ...

    def http_request_finished(self, route: str, method: str, status: int, seconds: float) -> None:
        """A request answered: its matched route rule (``unmatched`` when none), method and status."""
        ...

    def job_finished(self, job: str, outcome: str, seconds: float) -> None:
        """One maintenance-job run ended: ``ok``, ``skipped`` (nothing to do by configuration) or ``error``."""
        ...

    def alert_delivery_finished(self, channel: str, outcome: str) -> None:
        """One alert to one channel: ``delivered``, ``failed`` or ``skipped`` (channel not configured)."""
        ...

    def telegram_call_finished(self, method: str, outcome: str) -> None:
        """One Bot API call: ``ok``, ``error`` or ``rate_limited`` (Telegram answered 429)."""
        ...
