"""The periodic schedule: the ONE module that knows rq-scheduler.

Jobs are registered with cron strings under fixed job ids, so registering again (a second scheduler, a
restart, a deploy) never duplicates a job: an identical registration is left untouched, a changed one is
replaced, and a ``starpromo-periodic-*`` id no longer in the list is removed. Swapping to RQ's own cron
(``rq.cron``) means rewriting ``register_schedule``/``run_scheduler`` here and nothing else; callers only
see ``PeriodicJob``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import attrs
from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq_scheduler import Scheduler

from adapters.jsonlog import log_event
from adapters.rq.queue import JOB_TIMEOUT_SECONDS, QUEUE_NAME, dotted

log = logging.getLogger("starpromo.scheduler")

JOB_ID_PREFIX = "starpromo-periodic-"  # RQ job ids allow letters, digits, "_" and "-" only
SCHEDULER_INTERVAL_SECONDS = 10



@contextmanager
def _quiet_crontab() -> Iterator[None]:
    """rq-scheduler computes the next run with crontab's local-time default, which crontab warns about on
    every call; our processes run in UTC, where both behaviours agree."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Version 0.22.0", category=FutureWarning)
        yield


@attrs.frozen
class PeriodicJob:
    """Run ``func_path`` (``package.module:function``) every ``every_minutes`` minutes, on the minute."""

    name: str
    func_path: str
    every_minutes: int = attrs.field(validator=attrs.validators.and_(attrs.validators.ge(1),
                                                                     attrs.validators.le(60)))

    @property
    def job_id(self) -> str:
        return JOB_ID_PREFIX + self.name

    @property
    def cron(self) -> str:
        return "* * * * *" if self.every_minutes == 1 else f"*/{self.every_minutes} * * * *"


def _scheduler(connection: Redis, queue_name: str, interval: int = SCHEDULER_INTERVAL_SECONDS) -> Scheduler:
    return Scheduler(queue_name=queue_name, connection=connection, interval=interval)


def _fetch(connection: Redis, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return None


def register_schedule(connection: Redis, jobs: Sequence[PeriodicJob], queue_name: str = QUEUE_NAME) -> dict[str, str]:
    """Make the stored schedule equal ``jobs``. Returns ``{job name: created|updated|unchanged|removed}``."""
    scheduler = _scheduler(connection, queue_name)
    outcome: dict[str, str] = {}
    wanted = {job.job_id for job in jobs}
    for job in jobs:
        existing = _fetch(connection, job.job_id)
        scheduled = job.job_id in scheduler
        if (existing is not None and scheduled and existing.meta.get("cron_string") == job.cron
                and existing.func_name == dotted(job.func_path) and existing.origin == queue_name):
            outcome[job.name] = "unchanged"
            continue
        scheduler.cancel(job.job_id)
        with _quiet_crontab():
            scheduler.cron(job.cron, func=dotted(job.func_path), id=job.job_id, queue_name=queue_name,
                           timeout=JOB_TIMEOUT_SECONDS, description=job.name, meta={"periodic_job": job.name})
        outcome[job.name] = "updated" if existing is not None else "created"
    for stale in scheduled_job_ids(connection):
        if stale.startswith(JOB_ID_PREFIX) and stale not in wanted:
            scheduler.cancel(stale)
            outcome[stale.removeprefix(JOB_ID_PREFIX)] = "removed"
    log_event(log, "schedule_registered", jobs=outcome, queue=queue_name)
    return outcome


def scheduled_job_ids(connection: Redis) -> list[str]:
    """Every job id the scheduler holds (ours and anyone else's), in next-run order, duplicates kept."""
    raw = connection.zrange(Scheduler.scheduled_jobs_key, 0, -1)
    return [r.decode() if isinstance(r, bytes) else str(r) for r in raw]


def run_scheduler(connection: Redis, queue_name: str = QUEUE_NAME, *, interval: int = SCHEDULER_INTERVAL_SECONDS,
                  burst: bool = False) -> None:
    """Move due periodic jobs onto the queue every ``interval`` seconds until stopped (SIGTERM/SIGINT).
    Several schedulers may run: a Redis lock lets one of them enqueue per tick."""
    log_event(log, "scheduler_started", queue=queue_name, interval_seconds=interval)
    with _quiet_crontab():
        _scheduler(connection, queue_name, interval).run(burst=burst)
