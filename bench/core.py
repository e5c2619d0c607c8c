"""Shared plumbing of the workloads: services, throwaway databases, statistics, memory, checks."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import psutil
import psycopg

REPO = Path(__file__).resolve().parent.parent
PEPPER = "bench-pepper-0123456789abcdef0123456789abcdef"
TOKEN = "bench-internal-token-0123456789"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- configuration ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchConfig:
    quick: bool
    runs: int
    duration: float
    workers: int
    out_dir: Path
    profile: bool = True
    procs: int = 1
    serve_processes: int = 2
    serve_threads: int = 0  # 0: workers // serve_processes


@dataclass(frozen=True)
class Services:
    """What ``scripts/with-services.sh`` exported."""

    pg_url: str
    pg_admin_url: str
    pg_bin: Path
    redis_url: str | None

    @classmethod
    def from_env(cls) -> Services:
        missing = [v for v in ("STARPROMO_TEST_PG_URL", "STARPROMO_TEST_PG_ADMIN_URL") if not os.environ.get(v)]
        if missing:
            raise SystemExit(f"bench: {', '.join(missing)} not set; run through `make bench` "
                             "(scripts/with-services.sh starts PostgreSQL)")
        pg_bin = os.environ.get("STARPROMO_TEST_PG_BIN") or "/usr/lib/postgresql/15/bin"
        return cls(os.environ["STARPROMO_TEST_PG_URL"], os.environ["STARPROMO_TEST_PG_ADMIN_URL"], Path(pg_bin),
                   os.environ.get("STARPROMO_TEST_REDIS_URL"))

    def tool(self, name: str) -> str:
        candidate = self.pg_bin / name
        return str(candidate) if candidate.exists() else name


def libpq_url(sa_url: str) -> str:
    """``postgresql+psycopg://`` -> ``postgresql://`` (what psycopg and the PostgreSQL tools take)."""
    return sa_url.replace("postgresql+psycopg://", "postgresql://", 1)


def with_database(sa_url: str, dbname: str) -> str:
    parts = urlsplit(sa_url)
    return parts._replace(path="/" + dbname).geturl()


def pg_conn_args(sa_url: str) -> list[str]:
    """``-h -p -U dbname`` for pgbench/psql."""
    parts = urlsplit(libpq_url(sa_url))
    return ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432), "-U", parts.username or "postgres",
            parts.path.lstrip("/")]


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``starpromo`` subprocess against ``database_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMO_", "OPS_ALERT_", "TELEGRAM_"))}
    env.pop("REDIS_URL", None)
    env.update({"DATABASE_URL": database_url, "PROMO_SECRET_PEPPER": PEPPER, "INTERNAL_API_TOKEN": TOKEN})
    env.update(extra)
    return env


def starpromo_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("starpromo")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "entrypoints.cli.main"]


class Databases:
    """Throwaway databases cloned from one migrated template (``starpromo db upgrade`` runs once)."""

    TEMPLATE = "bench_template"

    def __init__(self, services: Services) -> None:
        self._services = services
        self._admin = libpq_url(services.pg_admin_url)
        self._migrated = False
        self.created: list[str] = []

    def _admin_exec(self, sql: str) -> None:
        with psycopg.connect(self._admin, autocommit=True) as conn:
            conn.execute(sql)

    def url(self, name: str) -> str:
        return with_database(self._services.pg_url, name)

    def _ensure_template(self) -> None:
        if self._migrated:
            return
        self._admin_exec(f'DROP DATABASE IF EXISTS "{self.TEMPLATE}" WITH (FORCE)')
        self._admin_exec(f'CREATE DATABASE "{self.TEMPLATE}"')
        url = self.url(self.TEMPLATE)
        done = subprocess.run([*starpromo_cmd(), "db", "upgrade"], env=app_env(url), capture_output=True,
                              text=True, cwd=REPO, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"starpromo db upgrade failed: {done.stderr.strip()[-2000:]}")
        self._migrated = True

    def fresh(self, name: str, template: str | None = None, file_copy: bool = False) -> str:
        """A new database ``name`` (dropped first) cloned from the migrated template (or ``template``); its
        SQLAlchemy URL. ``file_copy``: ``STRATEGY FILE_COPY`` (a checkpoint and a copy of the files: faster than
        the default WAL_LOG for a template of a gigabyte)."""
        if template is None:
            self._ensure_template()
        self._admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        strategy = " STRATEGY FILE_COPY" if file_copy else ""
        self._admin_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template or self.TEMPLATE}"{strategy}')
        if name not in self.created:
            self.created.append(name)
        return self.url(name)

    def empty(self, name: str) -> str:
        """A new empty database ``name`` (dropped first), no schema; its SQLAlchemy URL."""
        self._admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin_exec(f'CREATE DATABASE "{name}"')
        if name not in self.created:
            self.created.append(name)
        return self.url(name)

    def drop(self, name: str) -> None:
        self._admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def checkpoint(self) -> None:
        self._admin_exec("CHECKPOINT")

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(name)


def cpu_idle(seconds: float) -> float:
    """Share of CPU time idle over ``seconds`` (all cores, /proc/stat)."""
    def sample() -> list[int]:
        return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]

    a = sample()
    time.sleep(seconds)
    d = [y - x for x, y in zip(a, sample(), strict=False)]
    return (d[3] + d[4]) / max(1, sum(d))


def wait_quiet(max_wait: float = 20.0, idle: float = 0.85) -> float:
    """Wait until the machine is at least ``idle`` idle over one second (at most ``max_wait`` s): work an
    earlier run left behind (autovacuum, a checkpoint) finishes before the next measurement. Seconds waited."""
    waited = 0.0
    while waited < max_wait and cpu_idle(1.0) < idle:
        waited += 1.0
    return waited


# --- statistics ------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks; ``sorted_values`` ascending, q in 0..100."""
    if not sorted_values:
        return float("nan")
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


@dataclass
class LoadRun:
    """One timed run of a concurrent workload."""

    ops: int
    ok: int
    seconds: float
    latencies_ms: list[float]
    peak_rss_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "ops": self.ops, "ok": self.ok, "seconds": round(self.seconds, 3),
            "throughput_per_s": round(self.throughput, 1),
            "p50_ms": round(percentile(lat, 50), 3), "p99_ms": round(percentile(lat, 99), 3),
            # Not measured for external load generators (pgbench): left out rather than shown as 0.
            **({"peak_rss_mb": round(self.peak_rss_mb, 1)} if self.peak_rss_mb else {}), **self.extra,
        }


def drive(workers: int, seconds: float, op: Callable[[int, int], bool]) -> LoadRun:
    """``workers`` threads call ``op(worker, seq)`` until ``seconds`` pass; ``op`` returns success.

    Each thread times its own calls; every thread starts at the same barrier."""
    barrier = threading.Barrier(workers + 1)
    lat: list[list[float]] = [[] for _ in range(workers)]
    oks = [0] * workers
    errors: list[BaseException] = []
    deadline = [0.0]

    def worker(w: int) -> None:
        mine = lat[w]
        ok = 0
        seq = 0
        barrier.wait()
        end = deadline[0]
        clock = time.perf_counter
        try:
            while True:
                t0 = clock()
                if t0 >= end:
                    break
                if op(w, seq):
                    ok += 1
                mine.append((clock() - t0) * 1000.0)
                seq += 1
        except BaseException as exc:  # surfaced after the run
            errors.append(exc)
        oks[w] = ok

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(workers)]
    for t in threads:
        t.start()
    with PeakRss() as rss:
        start = time.perf_counter()
        deadline[0] = start + seconds
        barrier.wait()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} worker(s) failed: {errors[0]!r}") from errors[0]
    all_lat = [x for chunk in lat for x in chunk]
    return LoadRun(ops=len(all_lat), ok=sum(oks), seconds=elapsed, latencies_ms=all_lat, peak_rss_mb=rss.peak_mb)


def time_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(milliseconds, result)."""
    t0 = time.perf_counter()
    result = fn()
    return (time.perf_counter() - t0) * 1000.0, result


# --- memory ----------------------------------------------------------------------------------------


class PeakRss:
    """Peak resident set size of a process (default: this one) sampled every ``interval`` seconds."""

    def __init__(self, pid: int | None = None, interval: float = 0.02, children: bool = False) -> None:
        self._proc = psutil.Process(pid or os.getpid())
        self._interval = interval
        self._children = children
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.peak_bytes = 0

    def _rss(self) -> int:
        try:
            total = int(self._proc.memory_info().rss)
            if self._children:
                for c in self._proc.children(recursive=True):
                    with suppress(psutil.Error):
                        total += int(c.memory_info().rss)
            return total
        except psutil.Error:
            return 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._rss())
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRss:
        self.peak_bytes = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._rss())

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / (1024 * 1024)


def _vm_hwm_kb(pid: int) -> int:
    """The peak RSS of ``pid``'s current program (``VmHWM``, kept by the kernel per address space)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_measured(cmd: Sequence[str], env: dict[str, str], timeout: float) -> tuple[float, float, str, str, int]:
    """Run ``cmd``; (wall seconds, peak RSS MB, stdout, stderr, rc).

    The peak is the child's ``VmHWM`` read every 20 ms until it exits (the high-water mark only
    grows, so the last reading is the peak up to a few ms before exit). Not ``wait4``'s
    ``ru_maxrss``: Linux carries the spawning process's high-water mark across ``exec`` into it, so
    it reports this (large) benchmark process instead of the command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: list[str] = []
    err: list[str] = []
    peak_kb = [0]
    done = threading.Event()

    def drain(stream: IO[str] | None, into: list[str]) -> None:
        if stream is not None:
            into.append(stream.read())

    def sample() -> None:
        while not done.is_set():
            peak_kb[0] = max(peak_kb[0], _vm_hwm_kb(proc.pid))
            done.wait(0.02)

    readers = [threading.Thread(target=drain, args=(proc.stdout, out), daemon=True),
               threading.Thread(target=drain, args=(proc.stderr, err), daemon=True)]
    sampler = threading.Thread(target=sample, daemon=True)
    for r in readers:
        r.start()
    sampler.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        proc.wait()
    finally:
        timer.cancel()
        done.set()
    wall = time.perf_counter() - t0
    sampler.join()
    for r in readers:
        r.join()
    return wall, peak_kb[0] / 1024.0, "".join(out), "".join(err), proc.returncode


# --- checks and results ----------------------------------------------------------------------------


@dataclass
class Check:
    """One SPEC 12 target: ``measured op target``; measured is the median of ``runs``."""

    metric: str
    unit: str
    op: str  # ">=" or "<="
    target: float
    runs: list[float]
    baseline_label: str = ""
    baseline_runs: list[float] = field(default_factory=list)

    @property
    def measured(self) -> float:
        return median(self.runs)

    @property
    def baseline(self) -> float | None:
        return median(self.baseline_runs) if self.baseline_runs else None

    @property
    def ratio(self) -> float | None:
        b = self.baseline
        return self.measured / b if b else None

    @property
    def met(self) -> bool:
        m = self.measured
        if m != m:  # NaN: nothing measured
            return False
        return m >= self.target if self.op == ">=" else m <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric, "unit": self.unit, "op": self.op, "target": self.target,
            "measured": _round(self.measured), "runs": [_round(r) for r in self.runs],
            "baseline_label": self.baseline_label, "baseline": _round(self.baseline),
            "baseline_runs": [_round(r) for r in self.baseline_runs],
            "ratio": _round(self.ratio), "met": self.met,
        }


def _round(value: float | None) -> float | None:
    if value is None or value != value:
        return None
    return round(value, 3)


@dataclass
class WorkloadResult:
    name: str
    title: str
    checks: list[Check] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    baseline_runs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: str | None = None
    error: str | None = None
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    seconds: float = 0.0

    @property
    def met(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.met for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "met": self.met, "error": self.error,
            "checks": [c.as_dict() for c in self.checks], "runs": self.runs, "baseline_runs": self.baseline_runs,
            "notes": self.notes, "profile": self.profile,
            "load_before": [round(x, 2) for x in self.load_before],
            "load_after": [round(x, 2) for x in self.load_after], "seconds": round(self.seconds, 1),
        }


@dataclass
class Context:
    config: BenchConfig
    services: Services
    databases: Databases


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    box = [0.0]
    t0 = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - t0
