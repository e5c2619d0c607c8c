"""The routing notifier and its wiring, on fakes (HTTP itself: tests/integration/test_alert_channels.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from adapters.alerts import RoutingNotifier, alert_from_dict, alert_to_dict
from adapters.memory import InMemoryNotifier
from domain.alerts import RoutedAlert
from entrypoints.container import ALERT_DELIVERY_JOB, build_container
from entrypoints.settings import Settings

ALERT = RoutedAlert(
    event="payments_recovery_review_required", severity="error", tier="ops_l1",
    channels=("pagerduty", "slack", "generic"), summary="purchase 12 needs review",
    details={"purchase_id": 12, "reason": "amount mismatch"},
    occurred_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC), dedup_key="payments_recovery_review_required:12",
)


class FakeChannel:
    def __init__(self, name: str, ok: bool = True, crash: bool = False) -> None:
        self.name = name
        self.ok = ok
        self.crash = crash
        self.sent: list[RoutedAlert] = []

    def send(self, alert: RoutedAlert) -> bool:
        if self.crash:
            raise RuntimeError("channel bug")
        self.sent.append(alert)
        return self.ok


class FakeQueue:
    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.enqueued: list[tuple[str, tuple[Any, ...]]] = []

    def enqueue(self, func_path: str, *args: Any, **kwargs: Any) -> None:
        if self.down:
            raise ConnectionError("redis is down")
        self.enqueued.append((func_path, args))


def test_an_alert_survives_the_trip_through_the_queue_as_json() -> None:
    data = json.loads(json.dumps(alert_to_dict(ALERT)))
    assert alert_from_dict(data) == ALERT


def test_with_a_queue_the_notifier_enqueues_one_delivery_job_and_sends_nothing_itself() -> None:
    slack = FakeChannel("slack")
    queue = FakeQueue()
    RoutingNotifier({"slack": slack}, queue=queue, delivery_job="pkg.mod:deliver").notify(ALERT)
    assert queue.enqueued == [("pkg.mod:deliver", (alert_to_dict(ALERT),))]
    assert slack.sent == []


def test_when_the_queue_is_down_the_alert_is_delivered_inline() -> None:
    slack = FakeChannel("slack")
    RoutingNotifier({"slack": slack}, queue=FakeQueue(down=True), delivery_job="pkg.mod:deliver").notify(ALERT)
    assert slack.sent == [ALERT]


def test_a_crashing_channel_neither_raises_nor_stops_the_other_channels() -> None:
    crashing, generic = FakeChannel("pagerduty", crash=True), FakeChannel("generic")
    outcome = RoutingNotifier({"pagerduty": crashing, "generic": generic}).deliver(ALERT)
    assert outcome == {"pagerduty": "failed", "slack": "skipped", "generic": "delivered"}
    assert generic.sent == [ALERT]


def test_without_any_channel_configured_alerts_are_kept_in_memory() -> None:
    notifier = build_container(Settings(database_url="memory://")).notifier()
    assert isinstance(notifier, InMemoryNotifier)


def test_configured_channels_replace_the_in_memory_notifier() -> None:
    c = build_container(Settings(database_url="memory://", ops_alert_slack_webhook_url="http://127.0.0.1:9/s",
                                 ops_alert_pagerduty_routing_key="KEY"))
    notifier = c.notifier()
    assert isinstance(notifier, RoutingNotifier)
    assert sorted(notifier.channels) == ["pagerduty", "slack"]


def test_with_redis_configured_the_notifier_hands_delivery_to_the_queue() -> None:
    c = build_container(Settings(database_url="memory://", redis_url="redis://127.0.0.1:1/0",
                                 ops_alert_webhook_url="http://127.0.0.1:9/hook"))
    queue = FakeQueue()
    c.job_queue.override(queue)
    c.notifier().notify(ALERT)
    assert [path for path, _ in queue.enqueued] == [ALERT_DELIVERY_JOB]


def test_the_delivery_job_path_resolves_to_a_function() -> None:
    from adapters.memory.jobs import resolve

    assert callable(resolve(ALERT_DELIVERY_JOB))
