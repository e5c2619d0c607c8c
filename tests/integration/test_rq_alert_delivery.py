"""Alert delivery as its own RQ job (SPEC 8) on real Redis and real HTTP receivers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from redis import Redis
from rq import Queue, SimpleWorker

from adapters.rq.queue import QUEUE_NAME, redis_connection
from domain.alerts import RoutedAlert
from entrypoints.container import build_container
from entrypoints.settings import Settings
from entrypoints.worker.process import use_container
from tests.conftest import redis_database
from tests.integration.receivers import receiving

ALERT = RoutedAlert(
    event="payments_reconciliation_diff_detected", severity="critical", tier="ops_l1",
    channels=("pagerduty", "slack", "generic"), summary="1 purchase differs from Telegram",
    details={"purchase_ids": [3]}, occurred_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    dedup_key="payments_reconciliation_diff_detected:2026-03-01T12:00:00+00:00",
)


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    url = redis_database(redis_url, 6)
    conn = redis_connection(url)
    conn.flushdb()
    yield url
    conn.flushdb()
    use_container(None)


def _work(conn: Redis) -> None:
    SimpleWorker([Queue(QUEUE_NAME, connection=conn)], connection=conn).work(burst=True)


def test_with_redis_an_alert_is_queued_and_the_worker_delivers_it_to_every_routed_channel(redis_db: str) -> None:
    with receiving() as generic, receiving() as slack, receiving(statuses=[202]) as pd:
        container = build_container(Settings(
            database_url="memory://", redis_url=redis_db, ops_alert_webhook_url=generic.url,
            ops_alert_slack_webhook_url=slack.url, ops_alert_pagerduty_events_url=pd.url,
            ops_alert_pagerduty_routing_key="KEY", ops_alert_max_retries=0))
        use_container(container)
        container.notifier().notify(ALERT)
        conn = redis_connection(redis_db)
        assert len(Queue(QUEUE_NAME, connection=conn)) == 1
        assert generic.bodies == []  # nothing sent before a worker picks the job up
        _work(conn)
    assert generic.bodies[0]["dedup_key"] == ALERT.dedup_key
    assert slack.bodies[0]["text"].startswith("[CRITICAL] ops_l1:")
    assert pd.bodies[0]["payload"]["class"] == "payments_reconciliation_diff_detected"
    assert pd.bodies[0]["routing_key"] == "KEY"


def test_a_failing_channel_does_not_fail_the_delivery_job(redis_db: str) -> None:
    with receiving(statuses=[500]) as generic:
        container = build_container(Settings(database_url="memory://", redis_url=redis_db,
                                             ops_alert_webhook_url=generic.url, ops_alert_max_retries=1))
        use_container(container)
        container.notifier().notify(ALERT)
        conn = redis_connection(redis_db)
        _work(conn)
    assert len(generic.bodies) == 2  # first try + one retry
    queue = Queue(QUEUE_NAME, connection=conn)
    assert queue.failed_job_registry.count == 0
    assert queue.finished_job_registry.count == 1
