"""The periodic schedule on real Redis (SPEC 6): fixed job ids, registering twice never duplicates."""

from __future__ import annotations

import collections
from collections.abc import Iterator

import pytest
from redis import Redis

from adapters.rq.queue import QUEUE_NAME, redis_connection
from adapters.rq.schedule import JOB_ID_PREFIX, PeriodicJob, register_schedule, run_scheduler, scheduled_job_ids
from entrypoints.worker.jobs import periodic_jobs
from tests.conftest import redis_database

SPEC_TABLE = {
    "run_promo_reservation_expiry": "* * * * *",
    "run_promo_campaign_status_rollover": "*/10 * * * *",
    "run_promo_bruteforce_guard": "* * * * *",
    "run_refund_promo_rollback": "*/5 * * * *",
    "run_payment_invoice_expiry": "*/5 * * * *",
    "run_payments_reconciliation": "*/15 * * * *",
    "run_payment_recovery": "*/5 * * * *",
    "run_telegram_outbox": "* * * * *",
}


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    # A database of its own, so other test files on the same server never see these keys.
    conn = redis_connection(redis_database(redis_url, 5))
    conn.flushdb()
    yield conn
    conn.flushdb()


def test_the_schedule_is_the_spec_table() -> None:
    assert {job.name: job.cron for job in periodic_jobs()} == SPEC_TABLE
    assert all(job.func_path == f"entrypoints.worker.jobs:{job.name}" for job in periodic_jobs())


def test_registering_twice_schedules_each_periodic_job_exactly_once(redis: Redis) -> None:
    first = register_schedule(redis, periodic_jobs())
    second = register_schedule(redis, periodic_jobs())
    assert set(first.values()) == {"created"}
    assert set(second.values()) == {"unchanged"}
    counts = collections.Counter(scheduled_job_ids(redis))
    assert counts == {JOB_ID_PREFIX + name: 1 for name in SPEC_TABLE}


def test_two_schedulers_registering_from_separate_connections_do_not_duplicate(redis_url: str, redis: Redis) -> None:
    other = redis_connection(redis_database(redis_url, 5))
    register_schedule(redis, periodic_jobs())
    register_schedule(other, periodic_jobs())
    assert sorted(scheduled_job_ids(redis)) == sorted(JOB_ID_PREFIX + name for name in SPEC_TABLE)


def test_a_changed_cadence_replaces_the_job_and_a_dropped_job_is_removed(redis: Redis) -> None:
    register_schedule(redis, periodic_jobs())
    changed = [PeriodicJob("run_promo_reservation_expiry", "entrypoints.worker.jobs:run_promo_reservation_expiry", 2)]
    outcome = register_schedule(redis, changed)
    assert outcome["run_promo_reservation_expiry"] == "updated"
    assert outcome["run_payment_invoice_expiry"] == "removed"
    assert scheduled_job_ids(redis) == [JOB_ID_PREFIX + "run_promo_reservation_expiry"]
    from rq.job import Job

    assert Job.fetch(JOB_ID_PREFIX + "run_promo_reservation_expiry", connection=redis).meta["cron_string"] == \
        "*/2 * * * *"


def test_a_due_periodic_job_is_moved_to_the_queue_and_stays_scheduled_for_its_next_run(redis: Redis) -> None:
    from rq import Queue

    register_schedule(redis, periodic_jobs())
    # Make one job due now, as the clock reaching the next minute would.
    job_id = JOB_ID_PREFIX + "run_promo_bruteforce_guard"
    redis.zadd("rq:scheduler:scheduled_jobs", {job_id: 0})
    run_scheduler(redis, burst=True)
    assert Queue(QUEUE_NAME, connection=redis).job_ids == [job_id]
    assert collections.Counter(scheduled_job_ids(redis))[job_id] == 1  # rescheduled, not duplicated
    assert (redis.zscore("rq:scheduler:scheduled_jobs", job_id) or 0) > 0


def test_starting_the_scheduler_command_twice_registers_each_job_once(redis_url: str, redis: Redis,
                                                                     pg_url: str) -> None:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "REDIS_URL": redis_database(redis_url, 5), "DATABASE_URL": pg_url,
           "PROMO_SECRET_PEPPER": "p"}  # the production configuration: PostgreSQL and Redis
    starpromo = os.path.join(os.path.dirname(sys.executable), "starpromo")
    outputs = []
    for _ in range(2):
        proc = subprocess.run([starpromo, "scheduler", "--burst"], env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        outputs.append(json.loads(proc.stdout.splitlines()[0]))
    assert set(outputs[0]["jobs"].values()) == {"created"}
    assert set(outputs[1]["jobs"].values()) == {"unchanged"}
    assert collections.Counter(scheduled_job_ids(redis)) == {JOB_ID_PREFIX + name: 1 for name in SPEC_TABLE}
