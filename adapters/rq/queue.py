"""``ports.jobs.JobQueue`` on RQ: callables are enqueued by import path, so adapters never import entrypoints."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from redis import Redis
from rq import Queue, Worker
from rq.job import Job

from adapters.jsonlog import log_context, log_event

log = logging.getLogger("starpromo.rq")

QUEUE_NAME = "starpromo"
JOB_TIMEOUT_SECONDS = 600  # a maintenance run over a large backlog stays well inside this
FAILURE_TTL_SECONDS = 7 * 24 * 3600


def dotted(func_path: str) -> str:
    """``package.module:function`` (the port's form) -> ``package.module.function`` (RQ's form)."""
    module, sep, attr = func_path.partition(":")
    if not sep:
        return func_path
    if not module or not attr:
        raise ValueError(f"not an import path of the form package.module:function: {func_path!r}")
    return f"{module}.{attr}"


def redis_connection(url: str) -> Redis:
    """A lazily connecting client; redis-py resets its pool after a fork, so RQ's forked children are safe."""
    return Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)


class RqJobQueue:
    """Enqueues onto one RQ queue (``starpromo`` by default)."""

    def __init__(self, connection: Redis, queue_name: str = QUEUE_NAME) -> None:
        self.connection = connection
        self.queue = Queue(queue_name, connection=connection, default_timeout=JOB_TIMEOUT_SECONDS)

    def enqueue(self, func_path: str, *args: Any, **kwargs: Any) -> None:
        job = self.queue.enqueue_call(dotted(func_path), args=args, kwargs=kwargs,
                                      failure_ttl=FAILURE_TTL_SECONDS)
        log_event(log, "job_enqueued", func=func_path, job_id=job.id, queue=self.queue.name)


class JobIdWorker(Worker):
    """RQ's forking worker with the job's id on every log line about the job: the worker's own lines while it
    runs and watches the work-horse, and every line of the work-horse, which inherits the binding when forked."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        with log_context(job_id=job.id):
            super().execute_job(job, queue)


def run_worker(connection: Redis, queue_names: Sequence[str] = (QUEUE_NAME,), *, burst: bool = False,
               name: str | None = None) -> bool:
    """Run an RQ worker on ``queue_names``: a forked work-horse per job, which inherits what this process built
    (entrypoints.worker.process prepares the container before the first fork and holds no database connection
    then; redis-py and ``EngineHolder`` drop inherited pools in the child). ``burst`` returns once the queues are
    empty. Returns whether any job was executed."""
    queues = [Queue(n, connection=connection) for n in queue_names]
    worker = JobIdWorker(queues, connection=connection, name=name)
    return bool(worker.work(burst=burst, logging_level="INFO", with_scheduler=False))
