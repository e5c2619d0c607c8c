"""The embedded default without Redis (demo): the periodic jobs on an in-process timer thread.

Same job functions and the same every-N-minutes cadence as the RQ schedule; a failing run is logged and
the timer carries on. Runs one job at a time, so no job overlaps itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from adapters.jsonlog import log_event
from adapters.rq.schedule import PeriodicJob

log = logging.getLogger("starpromo.worker")


class InProcessTimer:
    """Calls ``run(job.name)`` for every job every ``job.every_minutes`` (scaled by ``minute_seconds``)."""

    def __init__(self, jobs: Sequence[PeriodicJob], run: Callable[[str], object], *,
                 minute_seconds: float = 60.0, run_at_start: bool = True) -> None:
        self._jobs = tuple(jobs)
        self._run = run
        self._minute = minute_seconds
        self._run_at_start = run_at_start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs: dict[str, int] = {job.name: 0 for job in self._jobs}

    def start(self) -> InProcessTimer:
        self._thread = threading.Thread(target=self.loop, name="starpromo-jobs", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def loop(self) -> None:
        """Run until ``stop()``; also usable in the foreground (``starpromo worker`` without Redis)."""
        log_event(log, "inprocess_timer_started", jobs=[j.name for j in self._jobs])
        now = time.monotonic()
        due = {job.name: now if self._run_at_start else now + job.every_minutes * self._minute for job in self._jobs}
        period = {job.name: job.every_minutes * self._minute for job in self._jobs}
        while not self._stop.is_set():
            now = time.monotonic()
            for job in self._jobs:
                if self._stop.is_set():
                    break
                if due[job.name] <= now:
                    self._run_one(job.name)
                    # Keep the cadence (no drift); skip missed slots instead of running a backlog.
                    while due[job.name] <= time.monotonic():
                        due[job.name] += period[job.name]
            self._stop.wait(max(0.0, min(due.values()) - time.monotonic()))
        log_event(log, "inprocess_timer_stopped")

    def run_all_once(self) -> None:
        """Every job once, in schedule order (``starpromo worker --burst`` without Redis)."""
        for job in self._jobs:
            self._run_one(job.name)

    def _run_one(self, name: str) -> None:
        try:
            self._run(name)
        except Exception:
            log.exception("job failed", extra={"event": "job_failed", "job": name})
        finally:
            self.runs[name] += 1
