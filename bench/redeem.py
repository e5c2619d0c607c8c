"""Redeem through the domain service on PostgreSQL, 16 workers; distinct codes and one hot campaign.

Baseline: pgbench driving the very statements one redeem issues (captured from SQLAlchemy while a
redeem runs), in the same transactions, with 16 clients — the database's limit for this work.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from bench.app import close, container_for, execute, query, seed_campaigns
from bench.core import Check, Context, LoadRun, PeakRss, WorkloadResult, drive, log, median
from bench.pgbench import Capture, StatementCapture, key, pgbench_script, run_pgbench
from bench.profiling import profile_calls
from domain.campaigns import CampaignSpec
from domain.model import PromoType
from domain.redemption import RedemptionService

DISTINCT = "redeem_distinct"
HOT = "redeem_hot"
NAMES = (DISTINCT, HOT)
HOT_CAP = 50_000_000
UID_BASE = 10_000_000_000
_uid_block = itertools.count(1)


def _uid_base() -> int:
    """A fresh block of user ids: 10^9 per worker per run, never reused."""
    return UID_BASE + next(_uid_block) * 10**12


def _spec(name: str, cap: int | None = None) -> CampaignSpec:
    return CampaignSpec(campaign_name=name, promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=10,
                        max_total_uses=cap)


def _run_domain(services: list[RedemptionService], codes: list[tuple[int, str]], seconds: float,
                key_prefix: str, worker_offset: int = 0, workers_total: int | None = None,
                uid_base: int | None = None) -> tuple[LoadRun, Counter[str]]:
    n = len(codes)
    total = workers_total or len(services)
    base = uid_base or _uid_base()
    results: Counter[str] = Counter()
    lock = threading.Lock()

    def op(w: int, seq: int) -> bool:
        g = worker_offset + w  # the worker's number among all processes
        # Spread the workers over the campaigns so that no two of them hit the same row at once.
        _, code = codes[(seq * total + g) * 7919 % n]
        out = services[w].redeem(base + g * 10**9 + seq, code, f"{key_prefix}-{base}-{g}-{seq}")
        if not out.accepted:
            with lock:
                results[out.result.value] += 1
        return out.accepted

    run = drive(len(services), seconds, op)
    return run, results


def _child(url: str, codes: list[tuple[int, str]], threads: int, offset: int, total: int, seconds: float,
           key_prefix: str, start_at: float, bases: tuple[int, int], conn: Connection) -> None:
    """One worker process: its own container and pool, warmed, then ``threads`` workers from ``start_at``."""
    try:
        container = container_for(url)
        services = [container.redemption_service() for _ in range(threads)]
        n = len(codes)
        warm = drive(threads, 0.5, lambda w, s: services[w].redeem(
            bases[0] + (offset + w) * 10**9 + s, codes[(s * total + offset + w) % n][1],
            f"warm-{bases[0]}-{offset + w}-{s}").accepted)
        time.sleep(max(0.0, start_at - time.time()))
        run, bad = _run_domain(services, codes, seconds, key_prefix, offset, total, bases[1])
        close(container)
        conn.send((run.ops, run.ok, run.seconds, run.latencies_ms, dict(bad), None, warm.ok))
    except BaseException as exc:  # reported by the parent
        conn.send((0, 0, 0.0, [], {}, f"{type(exc).__name__}: {exc}", 0))
    finally:
        conn.close()


def _run_procs(procs: int, workers: int, url: str, codes: list[tuple[int, str]], seconds: float,
               key_prefix: str) -> tuple[LoadRun, Counter[str]]:
    """``workers`` domain-service workers as threads spread over ``procs`` forked processes (one GIL
    each), started together; latencies, counts and peak RSS (all processes) combined."""
    ctx = mp.get_context("fork")
    per = [workers // procs + (1 if i < workers % procs else 0) for i in range(procs)]
    start_at = time.time() + 2.0
    bases = (_uid_base(), _uid_base())  # drawn here: a forked child's counter would repeat the parent's
    children = []
    offset = 0
    for threads in per:
        parent_end, child_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(url, codes, threads, offset, workers, seconds, key_prefix, start_at,
                                                bases, child_end), daemon=True)
        proc.start()
        child_end.close()
        children.append((proc, parent_end))
        offset += threads
    with PeakRss(children=True) as rss:
        got = [pipe.recv() for _, pipe in children]
    for proc, _ in children:
        proc.join(30)
    errors = [g[5] for g in got if g[5]]
    if errors:
        raise RuntimeError(f"worker process failed: {errors[0]}")
    bad: Counter[str] = Counter()
    for g in got:
        bad.update(g[4])
    run = LoadRun(ops=sum(g[0] for g in got), ok=sum(g[1] for g in got), seconds=max(g[2] for g in got),
                  latencies_ms=[x for g in got for x in g[3]], peak_rss_mb=rss.peak_mb,
                  # Each process warms up on the same codes before the timed run: those redemptions are real rows.
                  extra={"warm_up_accepted": sum(g[6] for g in got)})
    return run, bad


def _load(ctx: Context, services: list[RedemptionService], url: str, codes: list[tuple[int, str]],
          seconds: float, key_prefix: str) -> tuple[LoadRun, Counter[str]]:
    cfg = ctx.config
    if cfg.procs > 1:
        return _run_procs(cfg.procs, cfg.workers, url, codes, seconds, key_prefix)
    return _run_domain(services, codes, seconds, key_prefix)


def _capture(service: RedemptionService, code: str, uid: int, idem: str) -> tuple[Capture, Any]:
    with StatementCapture() as cap:
        out = service.redeem(uid, code, idem)
    if not out.accepted or out.campaign is None:
        raise RuntimeError(f"capture redeem was not accepted: {out.result}")
    return cap, out


def _script(cap: Capture, out: Any, uid: int, idem: str, cid_expr: str) -> str:
    campaign = out.campaign
    substitute = {
        key(uid): ":uid",
        key(idem): "('pgb-' || :k)",
        key(campaign.code_hash): "(SELECT code_hash FROM promo_codes WHERE id = :cid)",
        key(campaign.id): ":cid",
    }
    preamble = [
        "\\set uid random(1000000000000000, 8999999999999999999)",
        "\\set k random(1, 9000000000000000000)",
        f"\\set cid {cid_expr}",
    ]
    return pgbench_script(cap, substitute, preamble)


def run(ctx: Context, wanted: set[str]) -> list[WorkloadResult]:
    cfg = ctx.config
    workers = cfg.workers
    n_codes = 2_000 if cfg.quick else 10_000
    url = ctx.databases.fresh("bench_redeem")
    container = container_for(url)
    log(f"redeem: seeding {n_codes} distinct campaigns and one hot campaign")
    codes = seed_campaigns(container, _spec("bench-distinct"), n_codes)
    # A fresh hot campaign for every domain run and every pgbench run (and one for the statement capture):
    # one row updated tens of thousands of times in a minute slows down as its dead versions pile up.
    hots = seed_campaigns(container, _spec("bench-hot", HOT_CAP), 1 + 2 * cfg.runs)
    services = [container.redemption_service() for _ in range(workers)]
    execute(url, "ANALYZE")

    # Warm-up: fill the pool, let psycopg prepare the statements, touch the indexes.
    drive(workers, 2.0 if not cfg.quick else 1.0,
          lambda w, s: services[w].redeem(_uid_base() + s, codes[(s * workers + w) % n_codes][1],
                                          f"warm-{os.getpid()}-{w}-{s}-{next(_uid_block)}").accepted)

    results: list[WorkloadResult] = []
    if DISTINCT in wanted:
        results.append(_distinct(ctx, url, services, codes))
    if HOT in wanted:
        results.append(_hot(ctx, url, services, hots))
    close(container)
    return results


def _distinct(
    ctx: Context, url: str, services: list[RedemptionService], codes: list[tuple[int, str]]
) -> WorkloadResult:
    cfg = ctx.config
    res = WorkloadResult(DISTINCT, f"Redeem via the domain service, PostgreSQL, {cfg.workers} workers, distinct codes")
    _, cap_code = codes[-1]
    uid, idem = 7_000_000_000_123, "bench-capture-distinct"
    cap, out = _capture(services[0], cap_code, uid, idem)
    script = _script(cap, out, uid, idem, f"random({codes[0][0]}, {codes[-1][0]})")
    res.notes.append(f"One redeem (PERCENT_DISCOUNT, accepted) issues {len(cap.statements)} SQL statements and "
                     f"{cap.transactions} BEGIN/COMMIT pair(s) (a statement outside BEGIN is a transaction of its "
                     f"own): {cap.round_trips()} round trips.")
    res.notes.append("Statements of one redeem: " + " | ".join(cap.describe()))
    domain_tp: list[float] = []
    domain_p99: list[float] = []
    base_tp: list[float] = []
    base_p99: list[float] = []
    shares: list[float] = []
    failures: Counter[str] = Counter()
    last_per_stmt: list[tuple[float, str]] = []
    for i in range(cfg.runs):
        log(f"{DISTINCT}: run {i + 1}/{cfg.runs} domain")
        run_d, bad = _load(ctx, services, url, codes, cfg.duration, f"d{i}")
        failures.update(bad)
        log(f"{DISTINCT}: run {i + 1}/{cfg.runs} pgbench")
        pg = run_pgbench(ctx.services, url, script, cfg.workers, cfg.duration)
        last_per_stmt = pg.per_statement_ms
        res.runs.append(run_d.summary())
        res.baseline_runs.append(pg.run.summary())
        domain_tp.append(run_d.throughput)
        domain_p99.append(run_d.summary()["p99_ms"])
        base_tp.append(pg.run.throughput)
        base_p99.append(pg.run.summary()["p99_ms"])
        shares.append(run_d.throughput / pg.run.throughput if pg.run.throughput else 0.0)
    label = f"pgbench, same statements, {cfg.workers} clients"
    res.checks = [
        Check("throughput", "redemptions/s", ">=", 1500, domain_tp, label, base_tp),
        Check("p99 latency", "ms", "<=", 20, domain_p99, label, base_p99),
        Check("share of the pgbench rate", "x", ">=", 0.5, shares),
    ]
    if failures:
        res.notes.append(f"Non-accepted results during the runs: {dict(failures)}")
    res.notes.append("pgbench per-statement latency (ms, last run): "
                     + "; ".join(f"{ms:.3f} {sql[:70]}" for ms, sql in last_per_stmt))
    if cfg.procs > 1:
        log(f"{DISTINCT}: one more run with all {cfg.workers} workers in one process (for comparison)")
        alt, _ = _run_domain(services, codes, cfg.duration, "single")
        shape = f"all {cfg.workers} workers as threads of one process (one GIL)"
    else:
        log(f"{DISTINCT}: one more run with the {cfg.workers} workers over 2 processes (for comparison)")
        alt, _ = _run_procs(2, cfg.workers, url, codes, cfg.duration, "two")
        shape = f"the {cfg.workers} workers as threads of 2 processes (one per core)"
    sm = alt.summary()
    res.notes.append(f"For comparison (not in the medians): {shape}: {sm['throughput_per_s']}/s, "
                     f"p50 {sm['p50_ms']} ms, p99 {sm['p99_ms']} ms.")
    _check_invariants(url, res)
    if cfg.profile:
        log(f"{DISTINCT}: profiling one thread")
        base = _uid_base()
        n = len(codes)
        res.profile = profile_calls(
            lambda i: services[0].redeem(base + i, codes[(i * 7919) % n][1], f"prof-{base}-{i}"),
            300 if cfg.quick else 1500)
    res.notes.append(f"pgbench script:\n{script}")
    return res


def _hot(ctx: Context, url: str, services: list[RedemptionService], hots: list[tuple[int, str]]) -> WorkloadResult:
    cfg = ctx.config
    res = WorkloadResult(HOT, f"Redeem, {cfg.workers} workers all on one campaign (one hot row)")
    _, capture_code = hots[0]
    uid, idem = 7_000_000_000_456, "bench-capture-hot"
    cap, out = _capture(services[0], capture_code, uid, idem)
    tp: list[float] = []
    base_tp: list[float] = []
    accepted = 0
    over = 0
    checked: list[str] = []
    failures: Counter[str] = Counter()
    for i in range(cfg.runs):
        domain_row, pgbench_row = hots[1 + 2 * i], hots[2 + 2 * i]
        log(f"{HOT}: run {i + 1}/{cfg.runs} domain")
        run_d, bad = _load(ctx, services, url, [domain_row], cfg.duration, f"hd{i}")
        failures.update(bad)
        accepted += run_d.ok
        log(f"{HOT}: run {i + 1}/{cfg.runs} pgbench")
        script = _script(cap, out, uid, idem, str(pgbench_row[0]))
        pg = run_pgbench(ctx.services, url, script, cfg.workers, cfg.duration)
        res.runs.append(run_d.summary())
        res.baseline_runs.append(pg.run.summary())
        tp.append(run_d.throughput)
        base_tp.append(pg.run.throughput)
        hot_id = domain_row[0]
        used_total, max_uses = query(url, "SELECT used_total, max_total_uses FROM promo_codes WHERE id = %s",
                                     [hot_id])[0]
        live = query(url, "SELECT count(*) FROM promo_redemptions WHERE promo_code_id = %s "
                          "AND status IN ('RESERVED', 'APPLIED', 'REVOKED')", [hot_id])[0][0]
        rows = query(url, "SELECT count(*) FROM promo_redemptions WHERE promo_code_id = %s", [hot_id])[0][0]
        accepted_calls = run_d.ok + int(run_d.extra.get("warm_up_accepted", 0))
        over += max(0, used_total - live) + max(0, used_total - (max_uses or used_total)) + abs(rows - accepted_calls)
        checked.append(f"run {i + 1}: used_total={used_total}, live={live}, accepted={accepted_calls}, rows={rows}")
    res.checks = [
        Check("throughput", "redemptions/s", ">=", 800, tp, f"pgbench, same statements, {cfg.workers} clients, "
                                                             "one row", base_tp),
        Check("over-redemption", "units", "<=", 0, [float(over)]),
    ]
    res.notes.append("Each domain run and each pgbench run starts on a fresh campaign row (same table, same "
                     "indexes): a row updated tens of thousands of times within a minute slows down as its dead "
                     "versions pile up, and sharing one row would charge that to whichever runs last.")
    res.notes.append("Hot rows after the runs (used_total == live redemptions and accepted calls == rows: zero "
                     "over-redemption): " + "; ".join(checked) + ".")
    if failures:
        res.notes.append(f"Non-accepted results during the runs: {dict(failures)}")
    res.notes.append(f"Median domain p99 {median([r['p99_ms'] for r in res.runs]):.2f} ms, pgbench p99 "
                     f"{median([r['p99_ms'] for r in res.baseline_runs]):.2f} ms.")
    return res


def _check_invariants(url: str, res: WorkloadResult) -> None:
    """SPEC 4: used_total equals the campaign's RESERVED/APPLIED/REVOKED redemptions, for every campaign."""
    bad = query(url, """
        SELECT count(*) FROM promo_codes c
        LEFT JOIN (SELECT promo_code_id, count(*) AS n FROM promo_redemptions
                   WHERE status IN ('RESERVED', 'APPLIED', 'REVOKED') GROUP BY promo_code_id) r
          ON r.promo_code_id = c.id
        WHERE c.used_total <> coalesce(r.n, 0)""")[0][0]
    res.notes.append(f"Invariant used_total == live redemptions: {'holds' if bad == 0 else f'BROKEN on {bad}'} "
                     "for every campaign after the runs.")
    if bad:
        res.error = f"invariant broken: used_total differs from live redemptions on {bad} campaigns"
