"""The SPEC 6 jobs on RQ with real Redis, and their alerts on real HTTP receivers (SPEC 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job

from adapters.alerts.slack import slack_body
from adapters.rq.queue import QUEUE_NAME, redis_connection
from adapters.sql import tables
from adapters.sql.engine import EngineHolder
from domain.alerts import PROMO_CAMPAIGN_AUTO_PAUSED, RoutedAlert, dedup_key
from domain.campaigns import CampaignSpec
from domain.model import (
    Attempt,
    CampaignStatus,
    PausedReason,
    PromoCode,
    PromoType,
    RedeemResult,
    RedemptionStatus,
)
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from entrypoints.worker.jobs import JOBS, periodic_jobs, run_job
from entrypoints.worker.process import use_container
from tests.conftest import PEPPER, redis_database
from tests.integration.receivers import receiving
from tests.sql import live_units_mismatch, pg_engines, sqlite_engines

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STARPROMO = os.path.join(os.path.dirname(sys.executable), "starpromo")


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    url = redis_database(redis_url, 7)
    conn = redis_connection(url)
    conn.flushdb()
    yield url
    conn.flushdb()
    use_container(None)


_BUILT: list[Container] = []


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each family the container can run on: in-memory, a migrated SQLite file, a fresh migrated PostgreSQL."""
    with ExitStack() as stack:
        if request.param == "memory":
            yield "memory://"
        elif request.param == "sqlite":
            yield stack.enter_context(sqlite_engines(tmp_path)).url
        else:
            yield stack.enter_context(pg_engines("starpromo_rq")).url
        while _BUILT:  # close the containers' pools before the database goes away
            c = _BUILT.pop()
            if c.settings().adapter_family == "sql":
                c.sql_engines().dispose()


def _container(database_url: str, redis: str | None = None, **alerting: Any) -> Container:
    c = build_container(Settings(database_url=database_url, redis_url=redis, promo_secret_pepper=PEPPER,
                                 **alerting))
    use_container(c)
    _BUILT.append(c)
    return c


def _work(conn: Redis) -> None:
    SimpleWorker([Queue(QUEUE_NAME, connection=conn)], connection=conn).work(burst=True)


def _abused_code(c: Container, failures: int = 25, users: int = 5) -> PromoCode:
    """The one ACTIVE code of a campaign, which ``failures`` attempts from ``users`` users just failed on."""
    _, code = c.campaign_service().create(
        CampaignSpec(name="spring sale", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=20),
        actor="test", code="SPRING-2026", code_max_total_uses=1)
    assert code is not None
    now = c.clock().now()
    with c.uow_factory()() as uow:
        for i in range(failures):
            uow.attempts.add(Attempt(user_id=1000 + i % users, normalized_code_hash=code.code_hash,
                                     code_prefix=code.code_prefix, result=RedeemResult.ALREADY_USED,
                                     attempted_at=now - timedelta(seconds=i), campaign_id=code.campaign_id))
        uow.commit()
    return code


def _expected_alert(c: Container, code: PromoCode, severity: str = "warning",
                    channels: tuple[str, ...] = ("slack", "generic")) -> RoutedAlert:
    """The alert of the guard's hash rule pausing ``code`` (SPEC 6): the code, not its campaign, is paused."""
    assert code.id is not None
    paused = c.code_service().get(code.id)
    assert paused.status is CampaignStatus.PAUSED and paused.paused_reason is PausedReason.AUTO_BRUTEFORCE
    assert c.campaign_service().get(code.campaign_id).campaign.status is CampaignStatus.ACTIVE
    summary = (f"Code {code.id} (prefix SPRI) of campaign {code.campaign_id} (spring sale) auto-paused: "
               "25 failed attempts from 5 users in 10 min")
    key = dedup_key(PROMO_CAMPAIGN_AUTO_PAUSED, "code", code.id, paused.updated_at.isoformat())
    pause = {"promo_code_id": code.id, "campaign_id": code.campaign_id, "campaign_name": "spring sale",
             "code_prefix": "SPRI", "failures": 25, "distinct_users": 5, "rule": "hash"}
    return RoutedAlert(
        event=PROMO_CAMPAIGN_AUTO_PAUSED, severity=severity, tier="ops_l2", channels=channels, summary=summary,
        # One alert per rule and run (SPEC 8), each pause an item.
        details={"kind": "hash", "count": 1, "items": [{"dedup_key": key, "summary": summary, **pause}],
                 "items_trimmed": 0},
        occurred_at=paused.updated_at,
        dedup_key=key,
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
    results = {(Job.fetch(i, connection=conn).return_value() or {})["job"] for i in finished}
    assert results == set(JOBS)


def test_the_guard_pauses_an_abused_campaign_and_the_receivers_get_the_routed_alert(
        redis_db: str, database_url: str) -> None:
    with receiving() as generic, receiving() as slack, receiving(statuses=[202]) as pd:
        c = _container(database_url, redis_db, ops_alert_webhook_url=generic.url,
                       ops_alert_slack_webhook_url=slack.url, ops_alert_pagerduty_events_url=pd.url,
                       ops_alert_pagerduty_routing_key="KEY")
        code = _abused_code(c)
        c.job_queue().enqueue("entrypoints.worker.jobs:run_promo_bruteforce_guard")
        _work(redis_connection(redis_db))  # the guard job, then the alert-delivery job it enqueued
    alert = _expected_alert(c, code)
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
        code = _abused_code(c)
        c.job_queue().enqueue("entrypoints.worker.jobs:run_promo_bruteforce_guard")
        _work(redis_connection(redis_db))
    alert = _expected_alert(c, code, severity="error", channels=("pagerduty",))
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
        code = _abused_code(c)
        summary = run_job("run_promo_bruteforce_guard", c)
    assert summary["paused"] == [code.id]
    assert len(generic.bodies) == 3  # the first try and two retries, then given up
    assert code.id is not None and c.code_service().get(code.id).status is CampaignStatus.PAUSED


def test_the_guard_alerts_once_per_pause_not_on_every_run(database_url: str) -> None:
    with receiving() as generic:
        c = _container(database_url, None, ops_alert_webhook_url=generic.url)
        _abused_code(c)
        first = run_job("run_promo_bruteforce_guard", c)
        second = run_job("run_promo_bruteforce_guard", c)
    assert len(first["paused"]) == 1 and second["paused"] == []
    assert len(generic.bodies) == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineHolder]:
    """A migrated SQL database that separate worker processes can reach too."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            yield stack.enter_context(sqlite_engines(tmp_path))
        else:
            yield stack.enter_context(pg_engines("starpromo_rqfork"))
        while _BUILT:
            c = _BUILT.pop()
            if c.settings().adapter_family == "sql":
                c.sql_engines().dispose()


def _worker_env(redis_db: str, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMO_", "OPS_ALERT_", "REDIS_", "TELEGRAM_"))}
    return {**env, "REDIS_URL": redis_db, "DATABASE_URL": database_url, "PROMO_SECRET_PEPPER": PEPPER, **extra}


def _finished_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "job_finished"]


def test_a_forked_rq_worker_process_runs_every_job_and_logs_one_json_line_each(
        redis_db: str, sql_engines: EngineHolder) -> None:
    conn = redis_connection(redis_db)
    queue = Queue(QUEUE_NAME, connection=conn)
    for job in periodic_jobs():
        queue.enqueue_call(job.func_path.replace(":", "."))
    proc = subprocess.run([STARPROMO, "worker", "--burst"], env=_worker_env(redis_db, sql_engines.url), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert queue.failed_job_registry.count == 0, proc.stderr
    finished = _finished_lines(proc.stderr)
    assert sorted(line["job"] for line in finished) == sorted(JOBS)
    assert all(isinstance(line["duration_ms"], int) for line in finished)


SEEDED = 240


def test_forked_workers_run_the_jobs_while_users_redeem_and_the_accounting_holds(
        redis_db: str, sql_engines: EngineHolder) -> None:
    """SPEC 4 + SPEC 6: two forked RQ workers run every job (reservation expiry four times at once, in small
    batches) while users keep redeeming the same capped campaign; afterwards every due reservation expired
    exactly once and ``used_total`` equals the live redemptions of every campaign."""
    c = _container(sql_engines.url)
    campaigns = c.campaign_service()
    # The rush code's units are its campaign's budget; the gift code has a cap of its own under a larger budget.
    capped, _ = campaigns.create(CampaignSpec(name="rush", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=10,
                                              max_total_uses=SEEDED), actor="test", code="RUSH-2026")
    grant, _ = campaigns.create(CampaignSpec(name="gift", promo_type=PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM",
                                             grant_days=7, max_total_uses=500), actor="test", code="GIFT-2026",
                                code_max_total_uses=50)
    assert capped.id is not None and grant.id is not None
    redeem = c.redemption_service()
    with ThreadPoolExecutor(max_workers=8) as pool:
        seeded = list(pool.map(lambda u: redeem.redeem(u, "RUSH-2026", f"seed-{u}"), range(1, SEEDED + 1)))
    assert all(o.result is RedeemResult.ACCEPTED for o in seeded)
    seeded_ids = [o.redemption.id for o in seeded if o.redemption is not None]
    with sql_engines.engine.begin() as db:  # every seeded reservation is now past reserved_until
        db.execute(sa.update(tables.promo_redemptions).values(
            reserved_until=c.clock().now() - timedelta(minutes=1)))
    assert campaigns.get(capped.id).campaign.used_total == SEEDED

    conn = redis_connection(redis_db)
    queue = Queue(QUEUE_NAME, connection=conn)
    enqueued = 0
    for job in periodic_jobs():
        for _ in range(4 if job.name == "run_promo_reservation_expiry" else 2):
            queue.enqueue_call(job.func_path.replace(":", "."))
            enqueued += 1
    # The guard would (rightly) pause the campaign on the stream of DEPLETED answers and end the race early.
    env = _worker_env(redis_db, sql_engines.url, PROMO_JOB_BATCH_SIZE="15", PROMO_GUARD_MIN_FAILURES="1000000",
                      PROMO_GUARD_PREFIX_MIN_FAILURES="1000000")

    results: Counter[RedeemResult] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def keep_redeeming(offset: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            seeded_user = 1 + (offset * 7919 + n) % SEEDED  # wants its unit back once it expired
            new_user = 100_000 + offset * 100_000 + n
            for user, code in ((seeded_user, "RUSH-2026"), (new_user, "RUSH-2026"), (new_user, "GIFT-2026")):
                result = redeem.redeem(user, code, f"live-{offset}-{n}-{user}-{code}").result
                with lock:
                    results[result] += 1

    with ThreadPoolExecutor(max_workers=4) as pool:
        redeemers = [pool.submit(keep_redeeming, i) for i in range(4)]
        workers = [subprocess.Popen([STARPROMO, "worker", "--burst"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True) for _ in range(2)]
        try:
            outputs = [w.communicate(timeout=180)[1] for w in workers]
        finally:
            stop.set()
            for w in workers:
                if w.poll() is None:
                    w.kill()
        for r in redeemers:
            r.result()  # a redeem that raised fails the test here

    assert [w.returncode for w in workers] == [0, 0], outputs
    assert queue.failed_job_registry.count == 0, outputs
    finished = [line for out in outputs for line in _finished_lines(out)]
    assert len(finished) == enqueued
    expiry_runs = [line for line in finished if line["job"] == "run_promo_reservation_expiry"]
    assert len(expiry_runs) == 4
    assert sum(line["expired"] for line in expiry_runs) == SEEDED  # each unit given back exactly once
    assert results[RedeemResult.DEPLETED] > 0 and results[RedeemResult.ACCEPTED] > 0
    with sql_engines.engine.connect() as db:
        # The campaign was full when the workers started: a unit taken back while they ran was one the
        # expiry job had just given back — redemptions and jobs really overlapped.
        retaken = db.execute(sa.text("SELECT count(*) FROM promo_redemptions WHERE campaign_id = :id "
                                     "AND idempotency_key LIKE 'live-%' AND status = 'RESERVED'"),
                             {"id": capped.id}).scalar_one()
    assert retaken > 0

    with c.uow_factory()() as uow:
        statuses = {uow.redemptions.get(i).status for i in seeded_ids}
    assert statuses == {RedemptionStatus.EXPIRED}
    assert live_units_mismatch(sql_engines) == []
    assert campaigns.get(capped.id).campaign.used_total <= SEEDED
    assert campaigns.get(grant.id).campaign.used_total <= 50
