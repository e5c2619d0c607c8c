"""``python -m bench``: run the SPEC 12 workloads and write bench/results.md and bench/results.json.

Needs the services of scripts/with-services.sh (``make bench`` starts them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.core import BenchConfig, Context, Databases, Services, WorkloadResult, log, wait_quiet

WORKLOADS = ("redeem_distinct", "redeem_giveaway", "redeem_hot", "redeem_http", "codes_generate",
             "codes_generate_100k", "migration_1m", "bruteforce_guard", "dashboard", "console_pages",
             "reservation_expiry", "launch_burst")
HERE = Path(__file__).resolve().parent


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="one short run per workload, smaller data (development); writes results-quick.*")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help=f"run only these workloads (repeatable or comma-separated): {', '.join(WORKLOADS)}")
    p.add_argument("--runs", type=int, help="runs per workload (default 3, quick 1)")
    p.add_argument("--duration", type=float, help="seconds per throughput run (default 8, quick 3)")
    p.add_argument("--workers", type=int, default=16, help="concurrent workers/clients (default 16)")
    p.add_argument("--procs", type=int, default=1,
                   help="processes the domain-service workers are spread over (default 1: the workers are "
                        "threads of one process, like starpromo serve's; the report also shows the other shape)")
    p.add_argument("--serve-processes", type=int, default=os.cpu_count() or 1,
                   help="starpromo serve --processes for redeem_http (default: one per core)")
    p.add_argument("--serve-threads", type=int, default=0,
                   help="starpromo serve --threads for redeem_http (default: workers / serve processes)")
    p.add_argument("--render", action="store_true",
                   help="only write results.md again from results.json (after editing bench/analysis.py)")
    p.add_argument("--no-profile", action="store_true", help="skip the pyinstrument profile")
    p.add_argument("--out", type=Path, default=HERE, help="directory for the report (default bench/)")
    return p.parse_args(argv)


def _meta(cfg: BenchConfig, services: Services) -> dict[str, Any]:
    import psycopg

    from bench.core import libpq_url

    with psycopg.connect(libpq_url(services.pg_url)) as conn:
        row = conn.execute("SELECT version()").fetchone()
    pg_version = str(row[0]).split(" on ")[0] if row else "PostgreSQL"
    cpu_model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = "unknown"
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=HERE.parent, capture_output=True,
                              text=True, check=False)
        commit = done.stdout.strip() or commit
    except OSError:
        pass
    return {
        "commit": commit,
        "command": "make bench" if not cfg.quick else "python -m bench --quick",
        "cpus": os.cpu_count(), "cpu_model": cpu_model, "memory_gb": psutil.virtual_memory().total / 1e9,
        "python": platform.python_version(), "postgres": pg_version, "runs": cfg.runs, "duration": cfg.duration,
        "workers": cfg.workers, "procs": cfg.procs,
    }


def _probe(services: Services, seconds: float = 3.0) -> dict[str, float]:
    """How fast this machine is right now, by work that no change to starpromo alters: pgbench running
    ``SELECT 1`` with 16 clients (round trips through the PostgreSQL server) and a pure-Python loop. Runs of
    different days compare through it."""
    import timeit

    from bench.core import with_database
    from bench.pgbench import run_pgbench

    loop_ns = min(timeit.repeat("sum(range(50))", number=100_000, repeat=5)) / 100_000 * 1e9
    pg = run_pgbench(services, with_database(services.pg_url, "postgres"), "SELECT 1;\n", 16, seconds)
    return {"pgbench_select1_tps": round(pg.run.throughput), "python_loop_ns": round(loop_ns)}


def _load() -> tuple[float, float, float]:
    a, b, c = os.getloadavg()
    return (round(a, 2), round(b, 2), round(c, 2))


def _settle(ctx: Context, max_wait: float = 20.0) -> None:
    """Before each workload: the earlier workloads' databases dropped (no autovacuum of them during this one),
    a CHECKPOINT (their dirty pages written now, not during the next measurement), and a short wait for the
    machine to go quiet (>= 85 % idle over one second, at most ``max_wait`` s)."""
    ctx.databases.drop_all()
    ctx.databases.checkpoint()
    waited = wait_quiet(max_wait)
    if waited:
        log(f"settled for {waited:.0f} s before the next workload")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    only = {n.strip() for item in args.only for n in item.split(",") if n.strip()}
    unknown = only - set(WORKLOADS)
    if unknown:
        print(f"--only: unknown workload(s) {sorted(unknown)}; choose from {', '.join(WORKLOADS)}", file=sys.stderr)
        return 2
    wanted = only or set(WORKLOADS)
    if args.render:
        stem = "results-quick" if args.quick else "results"
        from bench.report import write

        md, _ = write(json.loads((args.out / f"{stem}.json").read_text()), args.out, stem)
        print(f"wrote {md}")
        return 0
    cfg = BenchConfig(quick=args.quick, runs=args.runs or (1 if args.quick else 3),
                      duration=args.duration or (3.0 if args.quick else 8.0), workers=args.workers,
                      out_dir=args.out, profile=not args.no_profile, procs=max(1, min(args.procs, args.workers)),
                      serve_processes=max(1, args.serve_processes), serve_threads=max(0, args.serve_threads))
    services = Services.from_env()
    ctx = Context(cfg, services, Databases(services))
    started = time.perf_counter()
    meta = _meta(cfg, services)
    meta["load_before"] = list(_load())
    try:
        meta["probe"] = _probe(services, 1.0 if cfg.quick else 3.0)
    except Exception as exc:  # the probe only informs; a failure must not stop the run
        log(f"machine probe failed: {exc}")
    results: list[WorkloadResult] = []

    def step(names: tuple[str, ...], fn: Callable[[], list[WorkloadResult]]) -> None:
        todo = [n for n in names if n in wanted]
        if not todo:
            return
        _settle(ctx)
        t0 = time.perf_counter()
        before = _load()
        try:
            produced = fn()
        except Exception as exc:
            traceback.print_exc()
            produced = [WorkloadResult(n, n, error=f"{type(exc).__name__}: {exc}") for n in todo]
        for r in produced:
            r.load_before = before
            r.load_after = _load()
            r.seconds = time.perf_counter() - t0
            status = "error" if r.error else ("met" if r.met else "MISSED")
            log(f"{r.name}: {status} " + "; ".join(f"{c.metric} {c.measured:.2f} {c.unit} "
                                                 f"(target {c.op} {c.target}, baseline {c.baseline})"
                                                 for c in r.checks))
        results.extend(produced)

    from bench import codes, console, http, launch, maint, migrate, redeem

    try:
        step(redeem.NAMES, lambda: redeem.run(ctx, wanted))
        step((http.NAME,), lambda: [http.run(ctx)])
        step((maint.GUARD, maint.DASHBOARD), lambda: maint.run_reads(ctx, wanted))
        step((console.NAME,), lambda: [console.run(ctx)])
        step((maint.EXPIRY,), lambda: [maint.run_expiry(ctx)])
        step((codes.NAME, codes.NAME_100K), lambda: codes.run(ctx, wanted))
        step((migrate.NAME,), lambda: [migrate.run(ctx)])
        step((launch.NAME,), lambda: [launch.run(ctx)])
    finally:
        ctx.databases.drop_all()

    meta["load_after"] = list(_load())
    meta["seconds"] = time.perf_counter() - started
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta["finished_at"] = now
    docs = [r.as_dict() | {"measured_at": now} for r in results]
    stem = "results-quick" if cfg.quick else "results"
    js_path = cfg.out_dir / f"{stem}.json"
    if only and not cfg.quick and js_path.exists():
        # A partial run replaces its own workloads and keeps the others (each keeps its timestamp).
        previous = json.loads(js_path.read_text())
        fresh = {d["name"] for d in docs}
        kept = [d for d in previous.get("workloads", []) if d["name"] not in fresh]
        docs = sorted(kept + docs, key=lambda d: WORKLOADS.index(d["name"]) if d["name"] in WORKLOADS else 99)
        meta["command"] = f"make bench, then python -m bench --only {','.join(sorted(only))}"
    doc = {"meta": meta, "workloads": docs}

    from bench.report import write

    md, js = write(doc, cfg.out_dir, stem)
    missed = [d["name"] for d in docs if not d["met"]]
    log(f"wrote {md} and {js} in {meta['seconds']:.0f} s; "
        + ("all targets met" if not missed else f"missed: {', '.join(missed)}"))
    return 1 if any(d.get("error") for d in docs) else 0


if __name__ == "__main__":
    sys.exit(main())
