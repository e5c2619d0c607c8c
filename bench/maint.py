"""Maintenance and ops reads at scale: brute-force guard and dashboard over 1,000,000 attempt rows,
reservation expiry of 100,000 due reservations.

Baselines: the guard's and the dashboard's own SQL (captured from one call) replayed through a bare
psycopg connection; for expiry, one set-based ``UPDATE ... RETURNING`` + ``UPDATE ... FROM`` that
expires every due reservation and gives the units back in a single statement.
"""

from __future__ import annotations

import time

import psycopg

from bench.app import close, container_for, execute, query, seed_campaigns
from bench.core import Check, Context, WorkloadResult, libpq_url, log, median, time_call
from bench.pgbench import StatementCapture, replay_raw, replay_timed
from bench.profiling import profile_calls
from bench.redeem import _spec

GUARD = "bruteforce_guard"
DASHBOARD = "dashboard"
EXPIRY = "reservation_expiry"
NAMES = (GUARD, DASHBOARD, EXPIRY)

ATTEMPTS = 1_000_000
RESERVATIONS = 100_000


def _udt(url: str, table: str, column: str) -> str:
    rows = query(url, "SELECT udt_name FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
                 [table, column])
    if not rows:
        raise RuntimeError(f"{table}.{column} not found: has the schema changed?")
    return str(rows[0][0])


def _seed_attempts(url: str, n: int, campaign_sql: str = "NULL::bigint") -> list[str]:
    """``n`` attempts spread over the last 24 h (60 % accepted), plus three hashes of real codes (of three
    campaigns) under attack in the last 5 minutes (30 failures from 10 users each). Returns those hashes.
    ``campaign_sql``: the ``campaign_id`` of attempt number ``g`` (an SQL expression of ``g``; NULL: none)."""
    container = container_for(url)
    attacked = seed_campaigns(container, _spec("bench-attacked"), 3)
    close(container)
    hashes = [r[0] for r in query(url, "SELECT code_hash FROM promo_codes WHERE id = ANY(%s) ORDER BY id",
                                  [[i for i, _ in attacked]])]
    rtype = _udt(url, "promo_attempts", "result")
    execute(url, f"""
        INSERT INTO promo_attempts (user_id, normalized_code_hash, code_prefix, result, attempted_at, campaign_id)
        SELECT 1000 + (g % 50000),
               md5((g % 20000)::text) || md5((g % 20000)::text || 'x'),
               upper(substr(md5((g % 20000)::text), 1, 4)),
               (CASE WHEN g % 10 < 6 THEN 'ACCEPTED' WHEN g % 10 < 8 THEN 'INVALID'
                     WHEN g % 10 = 8 THEN 'ALREADY_USED' ELSE 'RATE_LIMITED' END)::{rtype},
               now() - (g::double precision / {n}) * interval '24 hours',
               {campaign_sql}
        FROM generate_series(1, {n - 90}) AS g""")
    execute(url, f"""
        INSERT INTO promo_attempts (user_id, normalized_code_hash, code_prefix, result, attempted_at, campaign_id)
        SELECT 900000 + (g %% 10), p.code_hash, 'ATCK', 'ALREADY_USED'::{rtype},
               now() - (g * interval '3 seconds'), p.campaign_id
        FROM generate_series(1, 90) AS g
        JOIN promo_codes p ON p.code_hash = (%s::text[])[1 + g %% 3]""", [hashes])
    execute(url, "ANALYZE")
    return hashes


def run_reads(ctx: Context, wanted: set[str]) -> list[WorkloadResult]:
    cfg = ctx.config
    url = ctx.databases.fresh("bench_attempts")
    log(f"guard/dashboard: seeding {ATTEMPTS:,} attempt rows")
    t0 = time.perf_counter()
    _seed_attempts(url, ATTEMPTS)
    seeded = query(url, "SELECT count(*) FROM promo_attempts")[0][0]
    log(f"guard/dashboard: {seeded:,} rows in {time.perf_counter() - t0:.1f} s")
    container = container_for(url)
    reps = 3 if cfg.quick else 7
    out: list[WorkloadResult] = []
    if GUARD in wanted:
        svc = container.maintenance_service()
        first = svc.run_bruteforce_guard()
        res = WorkloadResult(GUARD, f"Brute-force guard job with {seeded:,} attempt rows")
        res.notes.append(f"First run: {first.as_dict()} (the three attacked codes are paused by the hash rule).")
        out.append(_time_reads(res, url, reps, svc.run_bruteforce_guard, 100))
    if DASHBOARD in wanted:
        dash = container.dashboard_service()
        res = WorkloadResult(DASHBOARD, f"Dashboard (24 h window) with {seeded:,} attempt rows")
        doc = dash.metrics(24)
        res.notes.append(f"attempts_total={doc['conversion']['attempts_total']}, candidate hashes="
                         f"{len(doc['guard']['candidate_abusive_hashes'])}.")
        out.append(_time_reads(res, url, reps, lambda: dash.metrics(24), 300))
    close(container)
    return out


def _time_reads(res: WorkloadResult, url: str, reps: int, fn: object, target_ms: float) -> WorkloadResult:
    assert callable(fn)
    fn()  # warm: caches, prepared statements, buffers
    ms = []
    for _ in range(reps):
        elapsed, _ = time_call(fn)
        ms.append(elapsed)
    with StatementCapture() as cap:
        fn()
    raw = [replay_raw(url, cap) for _ in range(reps)]
    res.runs = [{"ms": round(x, 2)} for x in ms]
    res.baseline_runs = [{"ms": round(x, 2)} for x in raw]
    res.checks = [Check("duration", "ms", "<=", target_ms, ms, "its own SQL replayed raw (psycopg)", raw)]
    res.notes.append(f"{len(cap.statements)} statements per call: " + " | ".join(cap.describe()))
    res.notes.append("Its statements replayed raw one by one (median of 3, ms), slowest first: "
                     + "; ".join(f"{ms:.1f} {sql[:90]}" for ms, sql in replay_timed(url, cap)[:6]))
    return res


def _seed_reservations(ctx: Context, n: int, name: str = "bench_expiry_seed") -> str:
    """A template database with ``n`` RESERVED, unbound reservations past ``reserved_until`` spread
    over 1,000 codes of 1,000 campaigns whose ``used_total`` (of the code and of the campaign) counts them."""
    url = ctx.databases.fresh(name)
    container = container_for(url)
    seed_campaigns(container, _spec("bench-expiry"), 1000)
    close(container)
    stype = _udt(url, "promo_redemptions", "status")
    execute(url, f"""
        INSERT INTO promo_redemptions (promo_code_id, campaign_id, user_id, idempotency_key, status,
                                       discount_percent, reserved_until, purchase_id, applied_purchase_id,
                                       created_at, updated_at, user_slot)
        SELECT c.ids[1 + g % array_length(c.ids, 1)], c.campaigns[1 + g % array_length(c.ids, 1)], 5000000 + g,
               'bench-exp-' || g, 'RESERVED'::{stype}, 10, now() - interval '1 minute', NULL, NULL,
               now() - interval '16 minutes', now() - interval '16 minutes', 1
        FROM generate_series(1, {n}) AS g,
             (SELECT array_agg(id ORDER BY id) AS ids, array_agg(campaign_id ORDER BY id) AS campaigns
              FROM promo_codes) AS c""")
    execute(url, """
        UPDATE promo_codes c SET used_total = r.n
        FROM (SELECT promo_code_id, count(*) AS n FROM promo_redemptions GROUP BY promo_code_id) r
        WHERE r.promo_code_id = c.id""")
    execute(url, """
        UPDATE promo_campaigns c SET used_total = r.n
        FROM (SELECT campaign_id, count(*) AS n FROM promo_redemptions GROUP BY campaign_id) r
        WHERE r.campaign_id = c.id""")
    execute(url, "VACUUM ANALYZE")
    return name


SET_BASED_EXPIRY = """
WITH e AS (
    UPDATE promo_redemptions r SET status = 'EXPIRED', updated_at = now()
    WHERE r.status = 'RESERVED' AND r.reserved_until <= now() AND r.purchase_id IS NULL
    RETURNING r.promo_code_id, r.campaign_id),
codes AS (
    UPDATE promo_codes c SET used_total = c.used_total - e2.n, updated_at = now()
    FROM (SELECT promo_code_id, count(*) AS n FROM e GROUP BY promo_code_id) e2
    WHERE c.id = e2.promo_code_id RETURNING c.id)
UPDATE promo_campaigns c SET used_total = c.used_total - e3.n, updated_at = now()
FROM (SELECT campaign_id, count(*) AS n FROM e GROUP BY campaign_id) e3
WHERE c.id = e3.campaign_id"""


# What a set-based port method per bounded batch would issue (the job's batch size, its locks and order: the due
# rows in the order of the partial index on reserved_until): one statement per batch of 500, each its own
# transaction, until a batch finds nothing due. Unlike the job it does not lock the code and campaign rows in id
# order before updating them (the job does: two runs at once must not deadlock).
BATCHED_EXPIRY = """
WITH due AS (
    SELECT id FROM promo_redemptions
    WHERE status = 'RESERVED' AND purchase_id IS NULL AND reserved_until <= now()
    ORDER BY reserved_until LIMIT 500 FOR UPDATE SKIP LOCKED),
e AS (
    UPDATE promo_redemptions r SET status = 'EXPIRED', updated_at = now()
    FROM due WHERE r.id = due.id RETURNING r.promo_code_id, r.campaign_id),
u AS (
    UPDATE promo_codes c SET used_total = c.used_total - x.n, updated_at = now()
    FROM (SELECT promo_code_id, count(*) AS n FROM e GROUP BY promo_code_id) x
    WHERE c.id = x.promo_code_id RETURNING c.id),
v AS (
    UPDATE promo_campaigns c SET used_total = c.used_total - y.n, updated_at = now()
    FROM (SELECT campaign_id, count(*) AS n FROM e GROUP BY campaign_id) y
    WHERE c.id = y.campaign_id RETURNING c.id)
SELECT count(*) FROM e"""


def _batched_expiry(url: str) -> tuple[float, int]:
    """Seconds and batches for BATCHED_EXPIRY run to completion."""
    batches = 0
    with psycopg.connect(libpq_url(url)) as conn:
        t0 = time.perf_counter()
        while True:
            row = conn.execute(BATCHED_EXPIRY).fetchone()
            conn.commit()
            batches += 1
            if not row or not row[0]:
                break
        return time.perf_counter() - t0, batches


def run_expiry(ctx: Context) -> WorkloadResult:
    cfg = ctx.config
    n = 20_000 if cfg.quick else RESERVATIONS
    res = WorkloadResult(EXPIRY, f"Reservation expiry of {n:,} due reservations")
    log(f"{EXPIRY}: seeding {n:,} due reservations")
    template = _seed_reservations(ctx, n)
    secs: list[float] = []
    raw: list[float] = []
    for i in range(cfg.runs):
        url = ctx.databases.fresh("bench_expiry_run", template=template)
        container = container_for(url)
        svc = container.maintenance_service()
        log(f"{EXPIRY}: run {i + 1}/{cfg.runs} expire_reservations")
        elapsed, summary = time_call(svc.expire_reservations)
        close(container)
        left = query(url, "SELECT count(*) FROM promo_redemptions WHERE status = 'RESERVED'")[0][0]
        used = query(url, "SELECT (SELECT coalesce(sum(used_total), 0) FROM promo_codes) "
                          "+ (SELECT coalesce(sum(used_total), 0) FROM promo_campaigns)")[0][0]
        d = summary.as_dict()
        if d.get("expired") != n or left != 0 or used != 0:
            raise RuntimeError(f"expiry did not finish the work: summary={d}, still RESERVED={left}, used={used}")
        secs.append(elapsed / 1000.0)
        res.runs.append({"seconds": round(elapsed / 1000.0, 2), **d})
        ctx.databases.drop("bench_expiry_run")
        url = ctx.databases.fresh("bench_expiry_raw", template=template)
        log(f"{EXPIRY}: run {i + 1}/{cfg.runs} one set-based statement")
        t0 = time.perf_counter()
        execute(url, SET_BASED_EXPIRY)
        raw.append(time.perf_counter() - t0)
        ctx.databases.drop("bench_expiry_raw")
        url = ctx.databases.fresh("bench_expiry_raw", template=template)
        log(f"{EXPIRY}: run {i + 1}/{cfg.runs} set-based statement per bounded batch of 500")
        b_secs, b_count = _batched_expiry(url)
        left = query(url, "SELECT count(*) FROM promo_redemptions WHERE status = 'RESERVED'")[0][0]
        used = query(url, "SELECT (SELECT coalesce(sum(used_total), 0) FROM promo_codes) "
                          "+ (SELECT coalesce(sum(used_total), 0) FROM promo_campaigns)")[0][0]
        if left or used:
            raise RuntimeError(f"batched expiry baseline left {left} RESERVED, used_total sum {used}")
        res.baseline_runs.append({"seconds": round(raw[-1], 2), "batched_500_seconds": round(b_secs, 2),
                                  "batched_500_batches": b_count})
        ctx.databases.drop("bench_expiry_raw")
    ctx.databases.drop(template)
    if cfg.profile:
        small = 5_000
        log(f"{EXPIRY}: profiling one run over {small:,} due reservations")
        url = ctx.databases.url(_seed_reservations(ctx, small, "bench_expiry_profile"))
        container = container_for(url)
        with StatementCapture() as cap:
            container.maintenance_service().expire_reservations()
        res.notes.append(f"Statements of one job run over {small:,} due reservations: {len(cap.statements)} "
                         f"({len(cap.statements) / small:.2f} per reservation) in {cap.transactions} transactions.")
        close(container)
        ctx.databases.drop("bench_expiry_profile")
        url = ctx.databases.url(_seed_reservations(ctx, small, "bench_expiry_profile"))
        container = container_for(url)
        svc = container.maintenance_service()
        res.profile = profile_calls(lambda _: svc.expire_reservations(), 1)
        close(container)
        ctx.databases.drop("bench_expiry_profile")
    res.checks = [Check("duration", "s", "<=", 10, secs, "one set-based UPDATE (no batches)", raw)]
    batches = median([float(r.get("batches", 0)) for r in res.runs])
    res.notes.append("Second baseline (batched_500_seconds): one set-based statement per bounded batch of 500 (the "
                     "job's batch size, FOR UPDATE SKIP LOCKED, one transaction per batch), median "
                     f"{median([float(r['batched_500_seconds']) for r in res.baseline_runs]):.2f} s: the floor for "
                     "a job that keeps bounded batches (the job issues three statements per batch: the due rows "
                     "expired, then the units given back to the codes, then to the campaigns).")
    res.notes.append(f"Bounded batches: {batches:.0f} batches per run (PROMO_JOB_BATCH_SIZE default); every run "
                     "ends with no RESERVED row left and every used_total (codes and campaigns) back to 0.")
    return res
