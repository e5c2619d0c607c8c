"""Redeem through the domain service on PostgreSQL, 16 workers: distinct codes of distinct campaigns, a giveaway
(distinct single-use codes of ONE campaign with a budget and per_user_limit 1), and one hot code.

Baseline: pgbench driving the very statements one redeem issues (captured from SQLAlchemy while a
redeem runs), in the same transactions, with 16 clients — the database's limit for this work.
The giveaway's target is a ratio to redeem_distinct's rate measured in the same run, interleaved with it.

One module for the three workloads, past ~500 lines on purpose: they share the seeding, the worker pool, the
lock-wait sampling and the pgbench capture, and the giveaway is only meaningful run interleaved with
redeem_distinct, which this module's ``run`` does.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import psycopg

from bench.app import (
    campaign_offset,
    close,
    container_for,
    execute,
    query,
    recount_codes,
    seed_campaigns,
    seed_codes,
)
from bench.core import Check, Context, LoadRun, PeakRss, WorkloadResult, drive, libpq_url, log, median
from bench.pgbench import Capture, StatementCapture, key, pgbench_script, run_pgbench
from bench.profiling import profile_calls
from domain.campaigns import CampaignSpec
from domain.model import PromoType
from domain.redemption import RedeemOutcome, RedemptionService

DISTINCT = "redeem_distinct"
GIVEAWAY = "redeem_giveaway"
HOT = "redeem_hot"
NAMES = (DISTINCT, GIVEAWAY, HOT)
HOT_CAP = 50_000_000
SHARDS = 16
UID_BASE = 10_000_000_000
_uid_block = itertools.count(1)

Codes = list[tuple[int, str]]
Pick = Callable[[int, int], str]


def _uid_base() -> int:
    """A fresh block of user ids: 10^9 per worker per run, never reused."""
    return UID_BASE + next(_uid_block) * 10**12


def _spec(name: str, budget: int | None = None) -> CampaignSpec:
    return CampaignSpec(name=name, promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=10,
                        max_total_uses=budget, per_user_limit=1)


def _picker(codes: Codes, total: int, once: bool) -> Pick:
    """The code worker ``g`` (of ``total``) redeems at its ``seq``-th call. ``once``: every code at most once over
    all workers (single-use codes, in order); else spread over all codes, wrapping around."""
    n = len(codes)
    if once:
        def pick_once(g: int, seq: int) -> str:
            i = seq * total + g
            if i >= n:
                raise RuntimeError(f"the run used up all {n} prepared codes: prepare more")
            return codes[i][1]
        return pick_once
    return lambda g, seq: codes[(seq * total + g) * 7919 % n][1]


# --- lock waits, sampled -----------------------------------------------------------------------------


class WaitSampler:
    """What the database's client backends do while a run lasts, sampled every ``interval`` s from
    ``pg_stat_activity`` and ``pg_locks``: how many are active, how many wait for a heavyweight lock (a row
    lock: ``transactionid`` = waiting for the holder's commit, ``tuple`` = queued behind the first waiter), and
    how many tuple locks are held on promo_campaigns and on promo_codes rows (which table's rows they queue on)."""

    SQL = """
        SELECT count(*) FILTER (WHERE a.state = 'active'),
               count(*) FILTER (WHERE a.wait_event_type = 'Lock'),
               count(*) FILTER (WHERE a.wait_event_type = 'LWLock'),
               (SELECT count(*) FROM pg_locks l WHERE l.locktype = 'tuple'
                  AND l.relation = 'promo_campaigns'::regclass),
               (SELECT count(*) FROM pg_locks l WHERE l.locktype = 'tuple' AND l.relation = 'promo_codes'::regclass)
        FROM pg_stat_activity a
        WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'"""

    def __init__(self, url: str, interval: float = 0.05) -> None:
        self._url = libpq_url(url)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.samples: list[tuple[int, ...]] = []

    def _run(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(self.SQL).fetchone()
                if row is not None:
                    self.samples.append(tuple(int(v) for v in row))
                self._stop.wait(self._interval)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        if not self.samples:
            return {}
        n = len(self.samples)

        def mean(i: int) -> float:
            return round(sum(s[i] for s in self.samples) / n, 2)

        return {"pg_active": mean(0), "pg_lock_waits": mean(1), "pg_lwlock_waits": mean(2),
                "tuple_locks_campaigns": mean(3), "tuple_locks_codes": mean(4)}


# --- the domain-service load ---------------------------------------------------------------------------


def _run_domain(services: list[RedemptionService], pick: Pick, seconds: float, key_prefix: str,
                worker_offset: int = 0, uid_base: int | None = None) -> tuple[LoadRun, Counter[str]]:
    base = uid_base or _uid_base()
    results: Counter[str] = Counter()
    lock = threading.Lock()

    def op(w: int, seq: int) -> bool:
        g = worker_offset + w  # the worker's number among all processes
        out = services[w].redeem(base + g * 10**9 + seq, pick(g, seq), f"{key_prefix}-{base}-{g}-{seq}")
        if not out.accepted:
            with lock:
                results[out.result.value] += 1
        return out.accepted

    run = drive(len(services), seconds, op)
    return run, results


def _child(url: str, codes: Codes, once: bool, warm_codes: Codes, threads: int, offset: int, total: int,
           seconds: float, key_prefix: str, start_at: float, bases: tuple[int, int], conn: Connection) -> None:
    """One worker process: its own container and pool, warmed (on ``warm_codes``), then ``threads`` workers from
    ``start_at``."""
    try:
        container = container_for(url)
        services = [container.redemption_service() for _ in range(threads)]
        n = len(warm_codes)
        warm = drive(threads, 0.5, lambda w, s: services[w].redeem(
            bases[0] + (offset + w) * 10**9 + s, warm_codes[(s * total + offset + w) % n][1],
            f"warm-{bases[0]}-{offset + w}-{s}").accepted)
        time.sleep(max(0.0, start_at - time.time()))
        run, bad = _run_domain(services, _picker(codes, total, once), seconds, key_prefix, offset, bases[1])
        close(container)
        conn.send((run.ops, run.ok, run.seconds, run.latencies_ms, dict(bad), None, warm.ok))
    except BaseException as exc:  # reported by the parent
        conn.send((0, 0, 0.0, [], {}, f"{type(exc).__name__}: {exc}", 0))
    finally:
        conn.close()


def _run_procs(procs: int, workers: int, url: str, codes: Codes, seconds: float, key_prefix: str,
               once: bool = False, warm_codes: Codes | None = None) -> tuple[LoadRun, Counter[str]]:
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
        proc = ctx.Process(target=_child, args=(url, codes, once, warm_codes or codes, threads, offset, workers,
                                                seconds, key_prefix, start_at, bases, child_end), daemon=True)
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
                  # Each process warms up before the timed run: those redemptions are real rows.
                  extra={"warm_up_accepted": sum(g[6] for g in got)})
    return run, bad


def _load(ctx: Context, services: list[RedemptionService], url: str, codes: Codes, seconds: float,
          key_prefix: str, once: bool = False, warm_codes: Codes | None = None) -> tuple[LoadRun, Counter[str]]:
    """One timed domain run, with the database's lock waits sampled beside it (in the run's ``extra``)."""
    cfg = ctx.config
    with WaitSampler(url) as sampler:
        if cfg.procs > 1:
            run, bad = _run_procs(cfg.procs, cfg.workers, url, codes, seconds, key_prefix, once, warm_codes)
        else:
            run, bad = _run_domain(services, _picker(codes, cfg.workers, once), seconds, key_prefix)
    run.extra.update(sampler.summary())
    return run, bad


# --- the pgbench baseline --------------------------------------------------------------------------------


def _capture(service: RedemptionService, code: str, uid: int, idem: str) -> tuple[Capture, RedeemOutcome]:
    with StatementCapture() as cap:
        out = service.redeem(uid, code, idem)
    if not out.accepted or out.code is None or out.campaign is None:
        raise RuntimeError(f"capture redeem was not accepted: {out.result}")
    return cap, out


def _script(cap: Capture, out: RedeemOutcome, uid: int, idem: str, sets: list[str], campaign_expr: str) -> str:
    """The captured redeem as a pgbench script: the user, the key and the code drawn per transaction; ``sets``
    define ``:cid`` (the code's id); ``campaign_expr`` is the id of its campaign (an expression of ``:cid``, a
    ``\\set`` variable or a literal)."""
    code, campaign = out.code, out.campaign
    assert code is not None and code.id is not None and campaign is not None and campaign.id is not None
    if min(code.id, campaign.id) < 100 or code.id == campaign.id:
        # Values are substituted by value: an id equal to another bound integer (a discount, a slot) would
        # replace it too.
        raise RuntimeError(f"capture ids too small or equal (code {code.id}, campaign {campaign.id})")
    hash_expr = "(SELECT code_hash FROM promo_codes WHERE id = :cid)"
    substitute = {
        key(uid): ":uid",
        key(idem): "('pgb-' || :k)",
        key(code.code_hash): hash_expr,
        key([code.code_hash]): f"ARRAY[{hash_expr}]",
        key(code.id): ":cid",
        key(campaign.id): campaign_expr,
    }
    preamble = [
        "\\set uid random(1000000000000000, 8999999999999999999)",
        "\\set k random(1, 9000000000000000000)",
        *sets,
    ]
    return pgbench_script(cap, substitute, preamble)


# --- seeding ---------------------------------------------------------------------------------------------


def _giveaway(container: Any, name: str, count: int, budget: int | None = None) -> tuple[int, Codes]:
    """A giveaway: ``count`` single-use codes (max_total_uses 1) of ONE campaign with a budget (default: the
    number of codes) and per_user_limit 1."""
    return seed_codes(container, _spec(name, budget or count), count, code_cap=1)


def _sql_giveaway(url: str, template_id: int, name: str, count: int) -> tuple[int, Codes]:
    """A giveaway for pgbench, written by SQL: a copy of campaign ``template_id`` (budget ``count``) and ``count``
    single-use codes of it with random-looking hashes (pgbench looks a code up by the hash of its id, so it needs
    no plaintext). Same tables, same indexes, the same rows the bulk service writes; [(id, "")] in id order."""
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("""
            INSERT INTO promo_campaigns (name, promo_type, discount_percent, applicable_products, target_scope,
                                         status, valid_from, valid_until, max_total_uses, per_user_limit,
                                         used_total, created_at, updated_at)
            SELECT %s, promo_type, discount_percent, applicable_products, target_scope, status, valid_from,
                   valid_until, %s, per_user_limit, 0, created_at, updated_at
            FROM promo_campaigns WHERE id = %s RETURNING id""", [name, count, template_id]).fetchone()
        assert row is not None
        campaign_id = int(row[0])
        ids = [r[0] for r in conn.execute("""
            INSERT INTO promo_codes (campaign_id, code_hash, code_prefix, status, max_total_uses, used_total,
                                     created_at, updated_at, campaign_name, promo_type, target_scope, valid_from,
                                     valid_until)
            SELECT c.id, encode(sha256(convert_to('bench-pgbench-' || c.id || '-' || g, 'UTF8')), 'hex'), 'PGBN',
                   'ACTIVE', 1, 0, c.created_at, c.created_at, c.name, c.promo_type, c.target_scope, c.valid_from,
                   c.valid_until
            FROM promo_campaigns c, generate_series(1, %s) AS g WHERE c.id = %s ORDER BY g
            RETURNING id""", [count, campaign_id]).fetchall()]
        recount_codes(conn)
    return campaign_id, [(i, "") for i in sorted(ids)]


def _spread_over(url: str, campaign_id: int, shards: int) -> list[int]:
    """Emulate ``shards`` budget slots: ``shards`` copies of the campaign (each with 1/shards of its budget) and
    its codes spread over them at random (by a hash of the code id), the emptied campaign deleted. Ids."""
    with psycopg.connect(libpq_url(url)) as conn:
        ids = [r[0] for r in conn.execute(f"""
            INSERT INTO promo_campaigns (name, promo_type, discount_percent, applicable_products, target_scope,
                                         status, valid_from, valid_until, max_total_uses, per_user_limit,
                                         used_total, created_at, updated_at)
            SELECT c.name || ' slot ' || s, c.promo_type, c.discount_percent, c.applicable_products,
                   c.target_scope, c.status, c.valid_from, c.valid_until, c.max_total_uses / {shards} + 1,
                   c.per_user_limit, 0, c.created_at, c.updated_at
            FROM promo_campaigns c, generate_series(0, {shards - 1}) AS s WHERE c.id = %s ORDER BY s
            RETURNING id""", [campaign_id]).fetchall()]
        conn.execute(f"""
            UPDATE promo_codes SET campaign_id = (%s::bigint[])[1 + (hashint8(id)::bigint & 2147483647) %% {shards}]
            WHERE campaign_id = %s""", [ids, campaign_id])
        recount_codes(conn)
        conn.execute("DELETE FROM promo_campaigns WHERE id = %s", [campaign_id])
    return ids


def run(ctx: Context, wanted: set[str]) -> list[WorkloadResult]:
    cfg = ctx.config
    workers = cfg.workers
    n_codes = 2_000 if cfg.quick else 10_000
    url = ctx.databases.fresh("bench_redeem")
    container = container_for(url)
    log(f"redeem: seeding {n_codes} codes of distinct campaigns")
    codes = seed_campaigns(container, _spec("bench-distinct"), n_codes)
    # A fresh hot code (of a campaign of its own) for every domain run and every pgbench run (and one for the
    # statement capture): one row updated tens of thousands of times in a minute slows down as its dead versions
    # pile up.
    hots = seed_campaigns(container, _spec("bench-hot", HOT_CAP), 1 + 2 * cfg.runs, code_cap=HOT_CAP) \
        if HOT in wanted else []
    giveaways: list[tuple[tuple[int, Codes], tuple[int, Codes]]] = []
    extra: dict[str, tuple[int, Codes]] = {}
    if GIVEAWAY in wanted:
        # Enough single-use codes that no run can use them up: 4,000/s per domain run (redeem_distinct's best is
        # ~2,700/s here), 12,000/s per pgbench run (1/16 of them per client).
        per_domain = int(cfg.duration * 4_000)
        per_pgbench = int(cfg.duration * 12_000)
        log(f"redeem: seeding {cfg.runs} x 2 giveaway campaigns ({per_domain:,} single-use codes through the bulk "
            f"service / {per_pgbench:,} by SQL for pgbench)")
        extra["capture"] = _giveaway(container, "bench-giveaway-capture", 200)
        for i in range(cfg.runs):
            giveaways.append((_giveaway(container, f"bench-giveaway-{i}", per_domain),
                              _sql_giveaway(url, extra["capture"][0], f"bench-giveaway-pgbench-{i}", per_pgbench)))
        extra["shards"] = _giveaway(container, "bench-giveaway-shards", per_domain)
        extra["profile"] = _giveaway(container, "bench-giveaway-profile", 16_000)
        extra["race"] = _giveaway(container, "bench-giveaway-race", 1_200, budget=300)
    services = [container.redemption_service() for _ in range(workers)]
    execute(url, "ANALYZE")

    # Warm-up: fill the pool, let psycopg prepare the statements, touch the indexes; then statistics of tables
    # that hold rows (a live database's are: plans made on empty tables would scan them).
    drive(workers, 2.0 if not cfg.quick else 1.0,
          lambda w, s: services[w].redeem(_uid_base() + s, codes[(s * workers + w) % n_codes][1],
                                          f"warm-{os.getpid()}-{w}-{s}-{next(_uid_block)}").accepted)
    execute(url, "ANALYZE")

    results: list[WorkloadResult] = []
    if DISTINCT in wanted or GIVEAWAY in wanted:
        results += _distinct_and_giveaway(ctx, url, services, codes, giveaways, extra, wanted)
    if HOT in wanted:
        results.append(_hot(ctx, url, services, hots))
    close(container)
    return results


# --- distinct codes and the giveaway, interleaved ---------------------------------------------------------


def _distinct_and_giveaway(ctx: Context, url: str, services: list[RedemptionService], codes: Codes,
                           giveaways: list[tuple[tuple[int, Codes], tuple[int, Codes]]],
                           extra: dict[str, tuple[int, Codes]], wanted: set[str]) -> list[WorkloadResult]:
    """Per run: the distinct codes through the domain service, the same statements by pgbench, the giveaway
    through the domain service and the giveaway's statements by pgbench, one after the other."""
    cfg = ctx.config
    res = WorkloadResult(DISTINCT, f"Redeem via the domain service, PostgreSQL, {cfg.workers} workers, distinct "
                                   "codes of distinct campaigns")
    give = WorkloadResult(GIVEAWAY, f"Redeem, {cfg.workers} workers, distinct single-use codes of ONE campaign "
                                    "with a budget and per_user_limit 1 (a giveaway)")
    _, cap_code = codes[-1]
    uid, idem = 7_000_000_000_123, "bench-capture-distinct"
    cap, out = _capture(services[0], cap_code, uid, idem)
    offset = campaign_offset(url, codes[0][0], codes[-1][0])
    contiguous = codes[-1][0] - codes[0][0] + 1 == len(codes)
    if not contiguous:
        raise RuntimeError("the distinct codes' ids are not contiguous: pgbench's random(first, last) would miss")
    if offset is not None:
        sets = [f"\\set cid random({codes[0][0]}, {codes[-1][0]})", f"\\set camp :cid + {offset}"]
        camp = ":camp"
    else:
        sets = [f"\\set cid random({codes[0][0]}, {codes[-1][0]})"]
        camp = "(SELECT campaign_id FROM promo_codes WHERE id = :cid)"
    script = _script(cap, out, uid, idem, sets, camp)
    res.notes.append(f"One redeem (PERCENT_DISCOUNT, accepted) issues {len(cap.statements)} SQL statements and "
                     f"{cap.transactions} BEGIN/COMMIT pair(s) (a statement outside BEGIN is a transaction of its "
                     f"own): {cap.round_trips()} round trips.")
    res.notes.append("Statements of one redeem: " + " | ".join(cap.describe()))
    res.notes.append("Every code is the only code of its campaign (10,000 campaigns), so no two workers share a row; "
                     "pgbench draws the code id at random and derives its campaign id (campaign id - code id is one "
                     f"constant here: {offset}), and looks the code up by the hash of that code, as the service does.")

    give_cap: tuple[Capture, RedeemOutcome] | None = None
    if GIVEAWAY in wanted:
        _, gcodes = extra["capture"]
        give_cap = _capture(services[0], gcodes[0][1], 7_000_000_000_789, "bench-capture-giveaway")

    d_tp: list[float] = []
    d_p99: list[float] = []
    b_tp: list[float] = []
    b_p99: list[float] = []
    shares: list[float] = []
    g_tp: list[float] = []
    g_ratio: list[float] = []
    gb_tp: list[float] = []
    failures: Counter[str] = Counter()
    g_failures: Counter[str] = Counter()
    last_per_stmt: list[tuple[float, str]] = []
    g_last_per_stmt: list[tuple[float, str]] = []
    g_script = ""
    for i in range(cfg.runs):
        log(f"{DISTINCT}: run {i + 1}/{cfg.runs} domain")
        run_d, bad = _load(ctx, services, url, codes, cfg.duration, f"d{i}")
        failures.update(bad)
        res.runs.append(run_d.summary())
        d_tp.append(run_d.throughput)
        d_p99.append(run_d.summary()["p99_ms"])
        if DISTINCT in wanted:
            log(f"{DISTINCT}: run {i + 1}/{cfg.runs} pgbench")
            pg = run_pgbench(ctx.services, url, script, cfg.workers, cfg.duration)
            last_per_stmt = pg.per_statement_ms
            res.baseline_runs.append(pg.run.summary())
            b_tp.append(pg.run.throughput)
            b_p99.append(pg.run.summary()["p99_ms"])
            shares.append(run_d.throughput / pg.run.throughput if pg.run.throughput else 0.0)
        if GIVEAWAY in wanted and give_cap is not None:
            (_, g_codes), (pg_campaign, pg_codes) = giveaways[i]
            log(f"{GIVEAWAY}: run {i + 1}/{cfg.runs} domain (one campaign, {len(g_codes):,} single-use codes)")
            run_g, bad = _load(ctx, services, url, g_codes, cfg.duration, f"g{i}", once=True, warm_codes=codes)
            g_failures.update(bad)
            give.runs.append(run_g.summary() | {"distinct_same_run_per_s": round(run_d.throughput, 1)})
            g_tp.append(run_g.throughput)
            g_ratio.append(run_g.throughput / run_d.throughput if run_d.throughput else 0.0)
            log(f"{GIVEAWAY}: run {i + 1}/{cfg.runs} pgbench")
            per_client = len(pg_codes) // cfg.workers
            g_script = _script(*give_cap, 7_000_000_000_789, "bench-capture-giveaway",
                               ["\\set n :n + 1",
                                f"\\set cid {pg_codes[0][0]} + :client_id * {per_client} + :n"],
                               str(pg_campaign))
            if pg_codes[-1][0] - pg_codes[0][0] + 1 != len(pg_codes):
                raise RuntimeError("the giveaway's code ids are not contiguous")
            pg = run_pgbench(ctx.services, url, g_script, cfg.workers, cfg.duration, defines={"n": 0})
            g_last_per_stmt = pg.per_statement_ms
            give.baseline_runs.append(pg.run.summary())
            gb_tp.append(pg.run.throughput)

    out_results: list[WorkloadResult] = []
    if DISTINCT in wanted:
        _finish_distinct(ctx, url, services, codes, res, script, d_tp, d_p99, b_tp, b_p99, shares, failures,
                         last_per_stmt)
        out_results.append(res)
    if GIVEAWAY in wanted:
        _finish_giveaway(ctx, url, services, codes, giveaways, extra, give, g_tp, d_tp, g_ratio, gb_tp, b_tp,
                         g_failures, g_last_per_stmt, g_script, res.runs)
        out_results.append(give)
    return out_results


def _finish_distinct(ctx: Context, url: str, services: list[RedemptionService], codes: Codes, res: WorkloadResult,
                     script: str, d_tp: list[float], d_p99: list[float], b_tp: list[float], b_p99: list[float],
                     shares: list[float], failures: Counter[str], last_per_stmt: list[tuple[float, str]]) -> None:
    cfg = ctx.config
    label = f"pgbench, same statements, {cfg.workers} clients"
    res.checks = [
        Check("throughput", "redemptions/s", ">=", 1500, d_tp, label, b_tp),
        Check("p99 latency", "ms", "<=", 20, d_p99, label, b_p99),
        Check("share of the pgbench rate", "x", ">=", 0.5, shares),
    ]
    if failures:
        res.notes.append(f"Non-accepted results during the runs: {dict(failures)}")
    res.notes.append("pgbench per-statement latency (ms, last run): "
                     + "; ".join(f"{ms:.3f} {sql[:70]}" for ms, sql in last_per_stmt))
    if cfg.procs > 1:
        log(f"{DISTINCT}: one more run with all {cfg.workers} workers in one process (for comparison)")
        alt, _ = _run_domain(services, _picker(codes, cfg.workers, False), cfg.duration, "single")
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


def _finish_giveaway(ctx: Context, url: str, services: list[RedemptionService], codes: Codes,
                     giveaways: list[tuple[tuple[int, Codes], tuple[int, Codes]]],
                     extra: dict[str, tuple[int, Codes]], give: WorkloadResult, g_tp: list[float],
                     d_tp: list[float], g_ratio: list[float], gb_tp: list[float], b_tp: list[float],
                     failures: Counter[str], last_per_stmt: list[tuple[float, str]], script: str,
                     distinct_runs: list[dict[str, Any]]) -> None:
    cfg = ctx.config
    # Correctness under contention (not timed): a budget smaller than the codes and users who come back.
    race_id, race_codes = extra["race"]
    log(f"{GIVEAWAY}: race to the budget (300 units, 1,200 codes, 400 users, {cfg.workers} workers)")
    race = _race(services, race_codes, users=400)
    # Emulated budget slots (one run, not in the medians): the same giveaway, its budget split over SHARDS
    # campaign rows and its codes spread over them at random.
    shard_id, shard_codes = extra["shards"]
    shard_ids = _spread_over(url, shard_id, SHARDS)
    execute(url, "ANALYZE promo_codes")
    log(f"{GIVEAWAY}: one run with the budget over {SHARDS} rows (emulated budget slots, for comparison)")
    run_s, _ = _load(ctx, services, url, shard_codes, cfg.duration, "gs", once=True, warm_codes=codes)
    log(f"{GIVEAWAY}: one more distinct run right after it (the same machine state)")
    run_sd, _ = _load(ctx, services, url, codes, cfg.duration, "gsd")

    campaign_ids = [g[0][0] for g in giveaways] + [g[1][0] for g in giveaways] + [race_id, extra["capture"][0],
                                                                                   extra["profile"][0], *shard_ids]
    over_budget, over_limit, lines = _giveaway_invariants(url, campaign_ids)
    give.checks = [
        Check(f"rate ÷ redeem_distinct's rate in the same run (medians {median(g_tp):,.0f}/s and "
              f"{median(d_tp):,.0f}/s)", "x", ">=", 0.8, g_ratio),
        Check("over-budget", "units", "<=", 0, [float(over_budget)]),
        Check("users over per_user_limit", "users", "<=", 0, [float(over_limit)]),
    ]
    give.notes.append("Each run's ratio pairs the giveaway run with the redeem_distinct run just before it "
                      "(distinct_same_run_per_s); the figure is the median of those ratios. Ratio of the medians: "
                      f"{median(g_tp) / median(d_tp) if median(d_tp) else 0:.2f}.")
    vs_distinct = (f" vs {median(b_tp):,.0f}/s for the distinct codes: {median(gb_tp) / median(b_tp):.2f} of it"
                   if b_tp else "")
    give.notes.append(f"Database limit, pgbench on the giveaway's statements (each client its own run of "
                      f"single-use codes, one campaign): median {median(gb_tp):,.0f}/s{vs_distinct}.")
    if failures:
        give.notes.append(f"Non-accepted results during the timed runs: {dict(failures)} (expected none: every "
                          "code is fresh, every user new, the budget equals the codes).")
    d_waits = _column(distinct_runs, "pg_lock_waits")
    g_waits = _column(give.runs, "pg_lock_waits")
    g_tuples = _column(give.runs, "tuple_locks_campaigns")
    if d_waits and g_waits:
        lw = median(g_waits)
        rate = median(g_tp)
        give.notes.append(
            f"Row-lock waits (pg_stat_activity sampled every 50 ms during each domain run): of the {cfg.workers} "
            f"backends, on average {lw:.2f} wait for a lock in the giveaway "
            f"(tuple locks on promo_campaigns rows: {median(g_tuples):.2f}) against "
            f"{median(d_waits):.2f} for distinct campaigns; by Little's law each giveaway "
            f"redeem waits ~{lw / rate * 1000 if rate else float('nan'):.2f} ms for the campaign row.")
    sm_s, sm_sd = run_s.summary(), run_sd.summary()
    give.notes.append(
        f"Emulated budget slots (one run each, not in the medians): the giveaway with its budget split over "
        f"{SHARDS} campaign rows (codes spread over them at random) ran at {sm_s['throughput_per_s']:,}/s "
        f"(lock waits {sm_s.get('pg_lock_waits')}), a distinct run right after at {sm_sd['throughput_per_s']:,}/s "
        f"(lock waits {sm_sd.get('pg_lock_waits')}): "
        f"{sm_s['throughput_per_s'] / sm_sd['throughput_per_s'] if sm_sd['throughput_per_s'] else 0:.2f} of it.")
    give.notes.append(f"Race to the budget (not timed): {race}.")
    give.notes.append("Giveaway campaigns after the runs (used_total <= max_total_uses and == live redemptions; "
                      "no (campaign, user) with more than per_user_limit live redemptions): " + "; ".join(lines) + ".")
    if over_budget or over_limit:
        give.error = f"giveaway invariant broken: over-budget {over_budget}, users over the limit {over_limit}"
    if cfg.profile:
        log(f"{GIVEAWAY}: profiling one thread while {cfg.workers - 1} others redeem the same campaign")
        give.profile = _profile_under_load(services, extra["profile"][1], cfg.quick)
    give.notes.append(f"pgbench script (giveaway, last run):\n{script}")
    give.notes.append("pgbench per-statement latency (ms, last giveaway run): "
                      + "; ".join(f"{ms:.3f} {sql[:70]}" for ms, sql in last_per_stmt))


def _column(runs: list[dict[str, Any]], name: str) -> list[float]:
    return [float(r[name]) for r in runs if r.get(name) is not None]


def _race(services: list[RedemptionService], codes: Codes, users: int) -> str:
    """Every code once, by a user drawn from a pool of ``users`` (who therefore come back for a second code of
    the campaign), all workers at once until the codes are used up. What was answered."""
    base = _uid_base()
    total = len(services)
    results: Counter[str] = Counter()
    lock = threading.Lock()
    rng = random.Random(1234)
    who = [base + rng.randrange(users) for _ in codes]

    def worker(w: int) -> None:
        mine: Counter[str] = Counter()
        for i in range(w, len(codes), total):
            mine[services[w].redeem(who[i], codes[i][1], f"race-{base}-{i}").result.value] += 1
        with lock:
            results.update(mine)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(total)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (f"{len(codes):,} single-use codes, budget 300, {users} users drawn at random (so many come back for a "
            f"second code), {total} workers: answers {dict(sorted(results.items()))}")


def _giveaway_invariants(url: str, campaign_ids: list[int]) -> tuple[int, int, list[str]]:
    rows = query(url, """
        SELECT c.id, c.name, c.max_total_uses, c.used_total,
               (SELECT count(*) FROM promo_redemptions r WHERE r.campaign_id = c.id AND r.status <> 'EXPIRED'),
               (SELECT coalesce(sum(p.used_total), 0) FROM promo_codes p WHERE p.campaign_id = c.id),
               (SELECT count(*) FROM promo_codes p WHERE p.campaign_id = c.id AND p.used_total > p.max_total_uses)
        FROM promo_campaigns c WHERE c.id = ANY(%s) ORDER BY c.id""", [campaign_ids])
    over_budget = 0
    lines = []
    slots: list[tuple[int, int, int]] = []
    for _, name, budget, used, live, code_sum, codes_over in rows:
        over_budget += max(0, used - (budget if budget is not None else used)) + abs(used - live) \
            + abs(code_sum - live) + codes_over
        if " slot " in name:
            slots.append((used, budget or 0, live))
        else:
            lines.append(f"{name}: used_total {used} of {budget}, live {live}")
    if slots:
        lines.append(f"bench-giveaway-shards ({len(slots)} rows): used_total {sum(s[0] for s in slots)} of "
                     f"{sum(s[1] for s in slots)}, live {sum(s[2] for s in slots)}, every row within its own budget")
    over_limit = query(url, """
        SELECT count(*) FROM (
            SELECT r.campaign_id, r.user_id FROM promo_redemptions r JOIN promo_campaigns c ON c.id = r.campaign_id
            WHERE r.status <> 'EXPIRED' GROUP BY r.campaign_id, r.user_id, c.per_user_limit
            HAVING count(*) > c.per_user_limit) AS over""")[0][0]
    return over_budget, int(over_limit), lines


def _profile_under_load(services: list[RedemptionService], codes: Codes, quick: bool) -> str:
    """pyinstrument on one thread redeeming giveaway codes while the other workers redeem codes of the same
    campaign: where a giveaway redeem's wall time goes under contention."""
    others = services[1:]
    mine, theirs = codes[:500], codes[500:]
    stop = threading.Event()
    base = _uid_base()
    pick = _picker(theirs, len(others), True)

    def background(w: int) -> None:
        seq = 0
        while not stop.is_set():
            try:
                code = pick(w, seq)
            except RuntimeError:
                return
            others[w].redeem(base + (w + 1) * 10**9 + seq, code, f"profbg-{base}-{w}-{seq}")
            seq += 1

    threads = [threading.Thread(target=background, args=(w,), daemon=True) for w in range(len(others))]
    for t in threads:
        t.start()
    try:
        calls = min(len(mine), 200 if quick else 500)
        return profile_calls(lambda i: services[0].redeem(base + i, mine[i][1], f"prof-{base}-{i}"), calls)
    finally:
        stop.set()
        for t in threads:
            t.join()


# --- one hot code ----------------------------------------------------------------------------------------


def _hot(ctx: Context, url: str, services: list[RedemptionService], hots: Codes) -> WorkloadResult:
    cfg = ctx.config
    res = WorkloadResult(HOT, f"Redeem, {cfg.workers} workers all on one code (one hot row)")
    _, capture_code = hots[0]
    uid, idem = 7_000_000_000_456, "bench-capture-hot"
    cap, out = _capture(services[0], capture_code, uid, idem)
    tp: list[float] = []
    base_tp: list[float] = []
    over = 0
    checked: list[str] = []
    failures: Counter[str] = Counter()
    for i in range(cfg.runs):
        domain_row, pgbench_row = hots[1 + 2 * i], hots[2 + 2 * i]
        log(f"{HOT}: run {i + 1}/{cfg.runs} domain")
        run_d, bad = _load(ctx, services, url, [domain_row], cfg.duration, f"hd{i}")
        failures.update(bad)
        log(f"{HOT}: run {i + 1}/{cfg.runs} pgbench")
        pg_campaign = query(url, "SELECT campaign_id FROM promo_codes WHERE id = %s", [pgbench_row[0]])[0][0]
        script = _script(cap, out, uid, idem, [f"\\set cid {pgbench_row[0]}"], str(pg_campaign))
        pg = run_pgbench(ctx.services, url, script, cfg.workers, cfg.duration)
        res.runs.append(run_d.summary())
        res.baseline_runs.append(pg.run.summary())
        tp.append(run_d.throughput)
        base_tp.append(pg.run.throughput)
        hot_id = domain_row[0]
        code_used, code_cap, campaign_used, budget = query(url, """
            SELECT p.used_total, p.max_total_uses, c.used_total, c.max_total_uses
            FROM promo_codes p JOIN promo_campaigns c ON c.id = p.campaign_id WHERE p.id = %s""", [hot_id])[0]
        live = query(url, "SELECT count(*) FROM promo_redemptions WHERE promo_code_id = %s "
                          "AND status IN ('RESERVED', 'APPLIED', 'REVOKED')", [hot_id])[0][0]
        rows = query(url, "SELECT count(*) FROM promo_redemptions WHERE promo_code_id = %s", [hot_id])[0][0]
        accepted_calls = run_d.ok + int(run_d.extra.get("warm_up_accepted", 0))
        over += (max(0, code_used - live) + max(0, campaign_used - live) + max(0, code_used - (code_cap or code_used))
                 + max(0, campaign_used - (budget or campaign_used)) + abs(rows - accepted_calls))
        checked.append(f"run {i + 1}: code used_total={code_used}, campaign used_total={campaign_used}, "
                       f"live={live}, accepted={accepted_calls}, rows={rows}")
    res.checks = [
        Check("throughput", "redemptions/s", ">=", 800, tp, f"pgbench, same statements, {cfg.workers} clients, "
                                                             "one row", base_tp),
        Check("over-redemption", "units", "<=", 0, [float(over)]),
    ]
    res.notes.append("Each redeem updates two shared rows: the code's (its cap) and its campaign's (the budget). "
                     "Each domain run and each pgbench run starts on a fresh code of a fresh campaign (same tables, "
                     "same indexes): a row updated tens of thousands of times within a minute slows down as its "
                     "dead versions pile up, and sharing one row would charge that to whichever runs last.")
    res.notes.append("Hot rows after the runs (used_total of the code and of the campaign == live redemptions and "
                     "accepted calls == rows: zero over-redemption): " + "; ".join(checked) + ".")
    if failures:
        res.notes.append(f"Non-accepted results during the runs: {dict(failures)}")
    res.notes.append(f"Median domain p99 {median([r['p99_ms'] for r in res.runs]):.2f} ms, pgbench p99 "
                     f"{median([r['p99_ms'] for r in res.baseline_runs]):.2f} ms.")
    return res


def _check_invariants(url: str, res: WorkloadResult) -> None:
    """SPEC 4: used_total equals the live (RESERVED/APPLIED/REVOKED) redemptions, for every code and every
    campaign."""
    bad = query(url, """
        SELECT (SELECT count(*) FROM promo_codes c
                LEFT JOIN (SELECT promo_code_id, count(*) AS n FROM promo_redemptions
                           WHERE status IN ('RESERVED', 'APPLIED', 'REVOKED') GROUP BY promo_code_id) r
                  ON r.promo_code_id = c.id
                WHERE c.used_total <> coalesce(r.n, 0))
             + (SELECT count(*) FROM promo_campaigns c
                LEFT JOIN (SELECT campaign_id, count(*) AS n FROM promo_redemptions
                           WHERE status IN ('RESERVED', 'APPLIED', 'REVOKED') GROUP BY campaign_id) r
                  ON r.campaign_id = c.id
                WHERE c.used_total <> coalesce(r.n, 0))""")[0][0]
    res.notes.append(f"Invariant used_total == live redemptions: {'holds' if bad == 0 else f'BROKEN on {bad}'} "
                     "for every code and every campaign after the runs.")
    if bad:
        res.error = f"invariant broken: used_total differs from live redemptions on {bad} codes/campaigns"
