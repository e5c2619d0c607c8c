"""The SPEC 6 jobs on RQ with real Redis, and their alerts on real HTTP receivers (SPEC 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job

from adapters.alerts.slack import slack_body
from adapters.rq.queue import QUEUE_NAME, redis_connection
from domain.alerts import PROMO_CAMPAIGN_AUTO_PAUSED, RoutedAlert, dedup_key
from domain.campaigns import CampaignSpec
from domain.model import Attempt, Campaign, CampaignStatus, PausedReason, PromoType, RedeemResult
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from entrypoints.worker.jobs import JOBS, periodic_jobs, run_job
from entrypoints.worker.process import use_container
from tests.conftest import PEPPER
from tests.integration.receivers import receiving

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STARPROMO = os.path.join(os.path.dirname(sys.executable), "starpromo")


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    url = redis_url.rsplit("/", 1)[0] + "/7"
    conn = redis_connection(url)
    conn.flushdb()
    yield url
    conn.flushdb()
    use_container(None)


@pytest.fixture
def database_url() -> str:
    return "memory://"


def _container(database_url: str, redis: str | None = None, **alerting: Any) -> Container:
    c = build_container(Settings(database_url=database_url, redis_url=redis, promo_secret_pepper=PEPPER,
                                 **alerting))
    use_container(c)
    return c


def _work(conn: Redis) -> None:
    SimpleWorker([Queue(QUEUE_NAME, connection=conn)], connection=conn).work(burst=True)


def _abused_campaign(c: Container, failures: int = 25, users: int = 5) -> Campaign:
    """An ACTIVE campaign whose code ``failures`` attempts from ``users`` users just failed on."""
    campaign = c.campaign_service().create(
        CampaignSpec("spring sale", PromoType.PERCENT_DISCOUNT, discount_percent=20, max_total_uses=1), "SPRING-2026")
    now = c.clock().now()
    with c.uow_factory()() as uow:
        for i in range(failures):
            uow.attempts.add(Attempt(user_id=1000 + i % users, normalized_code_hash=campaign.code_hash,
                                     code_prefix=campaign.code_prefix, result=RedeemResult.ALREADY_USED,
                                     attempted_at=now - timedelta(seconds=i)))
        uow.commit()
    return campaign


def _expected_alert(c: Container, campaign_id: int, severity: str = "warning",
                    channels: tuple[str, ...] = ("slack", "generic")) -> RoutedAlert:
    paused = c.campaign_service().get(campaign_id)
    assert paused.status is CampaignStatus.PAUSED and paused.paused_reason is PausedReason.AUTO_BRUTEFORCE
    return RoutedAlert(
        event=PROMO_CAMPAIGN_AUTO_PAUSED, severity=severity, tier="ops_l2", channels=channels,
        summary=f"Campaign {campaign_id} (spring sale, prefix SPRI) auto-paused: 25 failed attempts from 5 users "
                "in 10 min",
        details={"promo_code_id": campaign_id, "code_prefix": "SPRI", "failures": 25, "distinct_users": 5,
                 "rule": "hash"},
        occurred_at=paused.updated_at,
        dedup_key=dedup_key(PROMO_CAMPAIGN_AUTO_PAUSED, campaign_id, paused.updated_at.isoformat()),
    )


def test_a_worker_runs_each_periodic_job(redis_db: str, database_url: str) -> None:
    c = _container(database_url, redis_db)
    for job in periodic_jobs():
        c.job_queue().enqueue(job.func_path)
    conn = redis_connection(redis_db)
    _work(conn)
    queue = Queue(QUEUE_NAME, connection=conn)
    assert queue.failed_job_registry.count == 0
    finished = queue.finished_job_registry.get_job_ids()
    results = {Job.fetch(i, connection=conn).return_value()["job"] for i in finished}
    assert results == set(JOBS)


def test_the_guard_pauses_an_abused_campaign_and_the_receivers_get_the_routed_alert(
        redis_db: str, database_url: str) -> None:
    with receiving() as generic, receiving() as slack, receiving(statuses=[202]) as pd:
        c = _container(database_url, redis_db, ops_alert_webhook_url=generic.url,
                       ops_alert_slack_webhook_url=slack.url, ops_alert_pagerduty_events_url=pd.url,
                       ops_alert_pagerduty_routing_key="KEY")
        campaign = _abused_campaign(c)
        c.job_queue().enqueue("entrypoints.worker.jobs:run_promo_bruteforce_guard")
        _work(redis_connection(redis_db))  # the guard job, then the alert-delivery job it enqueued
    assert campaign.id is not None
    alert = _expected_alert(c, campaign.id)
    assert generic.bodies == [{
        "event": "promo_campaign_auto_paused", "severity": "warning", "tier": "ops_l2",
        "summary": alert.summary, "details": alert.details, "occurred_at": alert.occurred_at.isoformat(),
        "dedup_key": alert.dedup_key,
    }]
    assert slack.bodies == [slack_body(alert)]
    assert slack.bodies[0]["text"] == f"[WARNING] ops_l2: {alert.summary}"
    assert pd.bodies == []  # not routed to PagerDuty by default


def test_an_override_routes_the_auto_pause_to_pagerduty_only(redis_db: str, database_url: str) -> None:
    override = json.dumps({"promo_campaign_auto_paused": {"severity": "error", "channels": ["pagerduty"]}})
    with receiving() as generic, receiving() as slack, receiving(statuses=[202]) as pd:
        c = _container(database_url, redis_db, ops_alert_webhook_url=generic.url,
                       ops_alert_slack_webhook_url=slack.url, ops_alert_pagerduty_events_url=pd.url,
                       ops_alert_pagerduty_routing_key="KEY", ops_alert_escalation_policy_json=override)
        campaign = _abused_campaign(c)
        c.job_queue().enqueue("entrypoints.worker.jobs:run_promo_bruteforce_guard")
        _work(redis_connection(redis_db))
    assert campaign.id is not None
    alert = _expected_alert(c, campaign.id, severity="error", channels=("pagerduty",))
    assert generic.bodies == [] and slack.bodies == []
    [body] = pd.bodies
    assert body["routing_key"] == "KEY" and body["event_action"] == "trigger"
    assert body["dedup_key"] == alert.dedup_key
    assert {k: v for k, v in body["payload"].items() if k != "source"} == {
        "summary": alert.summary, "severity": "error", "component": "starpromo", "group": "ops_l2",
        "class": "promo_campaign_auto_paused",
        "custom_details": {**alert.details, "tier": "ops_l2", "occurred_at": alert.occurred_at.isoformat()},
    }


def test_a_channel_answering_500_is_retried_and_the_guard_job_still_succeeds(database_url: str) -> None:
    with receiving(statuses=[500]) as generic:
        c = _container(database_url, None, ops_alert_webhook_url=generic.url, ops_alert_max_retries=2)
        campaign = _abused_campaign(c)
        summary = run_job("run_promo_bruteforce_guard", c)
    assert summary["paused"] == [campaign.id]
    assert len(generic.bodies) == 3  # the first try and two retries, then given up
    assert c.campaign_service().get(campaign.id).status is CampaignStatus.PAUSED


def test_the_guard_alerts_once_per_pause_not_on_every_run(database_url: str) -> None:
    with receiving() as generic:
        c = _container(database_url, None, ops_alert_webhook_url=generic.url)
        _abused_campaign(c)
        first = run_job("run_promo_bruteforce_guard", c)
        second = run_job("run_promo_bruteforce_guard", c)
    assert len(first["paused"]) == 1 and second["paused"] == []
    assert len(generic.bodies) == 1


def test_a_forked_rq_worker_process_runs_every_job_and_logs_one_json_line_each(redis_db: str, tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path / 'jobs.db'}" if _has_sql() else "memory://"
    env = {**os.environ, "REDIS_URL": redis_db, "DATABASE_URL": db, "PROMO_SECRET_PEPPER": PEPPER}
    if db.startswith("sqlite"):
        _migrate(env)
    conn = redis_connection(redis_db)
    queue = Queue(QUEUE_NAME, connection=conn)
    for job in periodic_jobs():
        queue.enqueue_call(job.func_path.replace(":", "."))
    proc = subprocess.run([STARPROMO, "worker", "--burst"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert queue.failed_job_registry.count == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    finished = [line for line in lines if line.get("event") == "job_finished"]
    assert sorted(line["job"] for line in finished) == sorted(JOBS)
    assert all(isinstance(line["duration_ms"], int) for line in finished)


def _has_sql() -> bool:
    return os.path.exists(os.path.join(ROOT, "adapters", "sql", "unit_of_work.py"))


def _migrate(env: dict[str, str]) -> None:
    subprocess.run([STARPROMO, "db", "upgrade"], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=120)
