"""One container per process, inherited by the process's forked children.

``process_container()`` is this process's container: the one ``use_container`` set, else built on first use
(logged as ``container_built``). A long-lived process (``SimpleWorker``, the in-process timer, ``jobs run``) keeps
that one for its whole life.

RQ's ``Worker`` forks a work-horse per job. A horse reuses its parent's container instead of building its own
(docs/decisions.md, "Cost of the RQ path"): right before the parent's first fork, ``prepare_for_forks`` completes
the container (the job modules imported, the singletons the jobs use built, the database engine created and its
dialect initialised by one connection that is closed again: the parent holds no database connection while it
forks) and freezes the heap so a horse's garbage collector leaves the shared pages alone. In the child the at-fork
hooks make the inherited objects its own: ``EngineHolder`` drops the inherited pool without closing it
(``dispose(close=False)``, adapters/sql/engine.py), redis-py's pools reset themselves on the pid change, and
nothing of the container holds a thread (the outbox worker's threads are started only where nothing forks).
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import threading
import time

from adapters.jsonlog import log_event
from entrypoints.container import Container, build_container

log = logging.getLogger("starpromo.worker")

# The modules RQ imports in a horse to find a job's function (``ports.jobs.JobQueue`` enqueues by import path).
JOB_MODULES = ("entrypoints.worker.jobs", "entrypoints.worker.alerts", "entrypoints.bot.jobs")

_lock = threading.Lock()
# (the pid of the process the container was built in or given to, the container)
_cached: tuple[int, Container] | None = None
_prepared: Container | None = None


def process_container() -> Container:
    """This process's container (see the module docstring): set, inherited from the parent, or built now."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = (os.getpid(), build_container())
            log_event(log, "container_built", pid=os.getpid())
        return _cached[1]


def container_origin() -> int | None:
    """The pid of the process that built (or was given) this process's container: an ancestor's in a forked child
    that inherited it; None before there is one."""
    with _lock:
        return None if _cached is None else _cached[0]


def use_container(container: Container | None) -> None:
    """Make ``container`` this process's container (tests, the in-process timer); ``None`` forgets it."""
    global _cached
    with _lock:
        _cached = None if container is None else (os.getpid(), container)


def prepare_for_forks(container: Container) -> None:
    """Build what the jobs will use, so that forked children find it built (see the module docstring). Safe to
    call again (it does nothing then). A failure is logged and left to the jobs: a horse builds what is missing."""
    global _prepared
    if _prepared is container:
        return
    _prepared = container
    started = time.monotonic()
    try:
        for module in JOB_MODULES:
            importlib.import_module(module)
        _build_singletons(container)
    except Exception as exc:  # the database or a setting: the job that needs it reports it properly
        log_event(log, "container_prepare_failed", level=logging.WARNING, error=type(exc).__name__)
    # Everything built so far lives as long as the worker: out of the collector's sight, a horse's collection
    # neither walks it nor copies its pages.
    gc.freeze()
    # ``threads``: none of the container's. An RQ worker has its main thread and RQ's own command listener
    # (``PubSubWorkerThread``); a child has only the forking thread, so no job may count on another one.
    log_event(log, "container_prepared_for_forks", pid=os.getpid(),
              threads=[f"{type(t).__name__}:{t.name}" for t in threading.enumerate()],
              duration_ms=int((time.monotonic() - started) * 1000))


def _build_singletons(c: Container) -> None:
    settings = c.settings()
    c.clock()
    c.metrics()
    c.hasher()
    c.products()
    c.alert_policy()
    c.notifier()
    c.alert_dispatcher()
    c.job_queue()
    c.uow_factory()
    if settings.adapter_family == "sql":
        engine = c.sql_engines().engine
        # The first connection initialises the dialect (server version, type adapters); closed again at once.
        with engine.connect():
            pass
        engine.dispose()
    if c.telegram_bot.is_defined:
        c.telegram_bot()
        c.telegram_outbox_worker()  # built, never started here: its threads would not survive a fork


def _before_fork() -> None:
    try:
        cached = _cached
        if cached is not None and cached[0] == os.getpid():  # a container of this process, not one it inherited
            prepare_for_forks(cached[1])
    finally:
        _lock.acquire()  # no process_container() half-way through building while the child is made


def _after_fork_in_parent() -> None:
    _lock.release()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)
