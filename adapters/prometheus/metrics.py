"""``ports.metrics.Metrics`` on prometheus_client: the SPEC 15 metric names, one or many processes.

One process (``serve`` on waitress, ``jobs run``): the metrics live in a registry of their own. Several
(``serve --processes N`` on gunicorn, RQ work-horses): each process writes its values into memory-mapped files
under ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums the files of every process, living or dead, so a
counter never goes backwards when a worker is replaced (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.multiprocess import mark_process_dead as _mark_process_dead
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST

# Redeem and request latencies sit in the milliseconds (SPEC 12: p50 <= 5 ms, p99 <= 25 ms); jobs in seconds.
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class PrometheusMetrics:
    """The metric objects of one process. Build it once per process (``process_metrics()``): in multiprocess mode
    two instances would write the same keys of the same file over each other."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # The ``*_created`` series exist in one-process mode only; leaving them out (a process-wide switch of
        # prometheus_client) keeps both outputs alike.
        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(getattr(values.ValueClass, "_multiprocess", False))
        r = self.registry
        self.redeems = Counter("starpromo_redeem_total", "Redeem decisions by SPEC 4 result (ERROR: it raised).",
                               ["result"], registry=r)
        self.redeem_seconds = Histogram("starpromo_redeem_duration_seconds", "Time to decide one redeem.",
                                        buckets=FAST_BUCKETS, registry=r)
        self.http_requests = Counter("starpromo_http_requests_total", "HTTP requests answered.",
                                     ["route", "method", "status"], registry=r)
        self.http_seconds = Histogram("starpromo_http_request_duration_seconds",
                                      "HTTP request time inside the app, by route rule and method.",
                                      ["route", "method"], buckets=FAST_BUCKETS, registry=r)
        # livesum: the requests of processes still alive (a dead worker's file is dropped by mark_process_dead).
        self.http_in_flight = Gauge("starpromo_http_requests_in_flight", "HTTP requests being handled now.",
                                    registry=r, multiprocess_mode="livesum")
        self.job_runs = Counter("starpromo_job_runs_total", "Maintenance job runs by outcome (ok, skipped, error).",
                                ["job", "outcome"], registry=r)
        self.job_seconds = Histogram("starpromo_job_duration_seconds", "Maintenance job run time.", ["job"],
                                     buckets=JOB_BUCKETS, registry=r)
        self.alert_deliveries = Counter("starpromo_alert_deliveries_total",
                                        "Alert deliveries by channel and outcome (delivered, failed, skipped).",
                                        ["channel", "outcome"], registry=r)
        self.telegram_calls = Counter("starpromo_telegram_api_calls_total",
                                      "Bot API calls by method and outcome (ok, error, rate_limited).",
                                      ["method", "outcome"], registry=r)

    # --- ports.metrics.Metrics -----------------------------------------------------------------------------

    def redeem_finished(self, result: str, seconds: float) -> None:
        self.redeems.labels(result).inc()
        self.redeem_seconds.observe(seconds)

    def http_request_started(self) -> None:
        self.http_in_flight.inc()

    def http_request_finished(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_in_flight.dec()
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_seconds.labels(route, method).observe(seconds)

    def job_finished(self, job: str, outcome: str, seconds: float) -> None:
        self.job_runs.labels(job, outcome).inc()
        self.job_seconds.labels(job).observe(seconds)

    def alert_delivery_finished(self, channel: str, outcome: str) -> None:
        self.alert_deliveries.labels(channel, outcome).inc()

    def telegram_call_finished(self, method: str, outcome: str) -> None:
        self.telegram_calls.labels(method, outcome).inc()

    # --- exposition ----------------------------------------------------------------------------------------

    def exposition(self, *collectors: Collector) -> bytes:
        """The Prometheus text format: this process's metrics (every process's in multiprocess mode) and
        ``collectors`` (read at scrape time, e.g. gauges computed from the database)."""
        sources: list[Collector] = []
        if self.multiprocess:
            sources.append(MultiProcessCollector(None, path=os.environ.get(MULTIPROC_ENV)))  # type: ignore[no-untyped-call]
        else:
            sources.append(self.registry)
        sources.extend(collectors)
        return prometheus_client.generate_latest(_Chain(sources))


class _Chain:
    def __init__(self, sources: Iterable[Collector]) -> None:
        self._sources = tuple(sources)

    def collect(self) -> Iterator[Metric]:
        for source in self._sources:
            yield from source.collect()


_lock = threading.Lock()
_process: PrometheusMetrics | None = None


def process_metrics() -> PrometheusMetrics:
    """This process's metrics, built on first use. A forked child keeps its parent's objects: in multiprocess mode
    they notice the new process themselves and write to files of its own."""
    global _process
    with _lock:
        if _process is None:
            _process = PrometheusMetrics()
        return _process


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def use_multiprocess_dir(path: str, process_identifier: Callable[[], object] | None = None) -> None:
    """Make this process, and every process it forks from now on, write its metrics under ``path``.

    prometheus_client chooses its value store when it is imported, from the environment; ``serve`` decides on
    the directory later (after the command line is read), so the store is chosen again here. Only valid before
    the first metric of the process exists. ``process_identifier`` names each process's files (default: its pid).
    """
    with _lock:
        if _process is not None:
            raise RuntimeError("the process metrics exist already: choose the metrics directory before building them")
        os.environ[MULTIPROC_ENV] = path
        values.ValueClass = values.MultiProcessValue(process_identifier or os.getpid)  # type: ignore[no-untyped-call]


def one_file_per_forking_parent(parent_pid: int) -> Callable[[], str]:
    """A process identifier under which every child ``parent_pid`` forks writes to the same files.

    RQ forks one work-horse per job and runs one at a time; with pids as names, a worker would leave two files
    behind per job, thousands a day, and every scrape reads them all. The horses of one worker never run at
    once, so they can share files: each continues the counts of the one before it."""
    parent = str(parent_pid)
    horse = f"{parent_pid}-horse"

    def identify() -> str:
        return parent if os.getpid() == parent_pid else horse

    return identify


def mark_process_dead(pid: int) -> None:
    """A process of the multiprocess directory exited: its live gauges (requests in flight) stop counting."""
    path = multiprocess_dir()
    if path is not None:
        _mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
