"""The in-process timer (the embedded default without Redis): every job at its cadence, failures contained."""

from __future__ import annotations

import threading
import time

from adapters.rq.schedule import PeriodicJob
from entrypoints.worker.timer import InProcessTimer


def _jobs() -> list[PeriodicJob]:
    return [PeriodicJob("every_1", "m:every_1", 1), PeriodicJob("every_5", "m:every_5", 5)]


def test_each_job_runs_at_its_own_cadence() -> None:
    calls: list[str] = []
    lock = threading.Lock()

    def run(name: str) -> None:
        with lock:
            calls.append(name)

    # one "minute" = 50 ms: in ~520 ms every_1 runs at 0, 50, ..., 500 and every_5 at 0, 250, 500
    timer = InProcessTimer(_jobs(), run, minute_seconds=0.05).start()
    time.sleep(0.52)
    timer.stop()
    with lock:
        assert 5 <= calls.count("every_1") <= 11  # missed slots are skipped, never run as a backlog
        assert 2 <= calls.count("every_5") <= 3


def test_a_failing_job_is_logged_and_the_timer_carries_on() -> None:
    seen: list[str] = []

    def run(name: str) -> None:
        seen.append(name)
        if name == "every_1":
            raise RuntimeError("database is down")

    timer = InProcessTimer(_jobs(), run, minute_seconds=0.02).start()
    time.sleep(0.1)
    timer.stop()
    assert seen.count("every_1") >= 3
    assert "every_5" in seen
    assert timer.runs["every_1"] == seen.count("every_1")


def test_run_all_once_runs_every_job_in_schedule_order() -> None:
    seen: list[str] = []
    InProcessTimer(_jobs(), seen.append).run_all_once()
    assert seen == ["every_1", "every_5"]
