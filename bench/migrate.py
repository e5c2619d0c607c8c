"""Migration of a database holding 1,000,000 codes to the campaign model (Alembic 0002 -> head), as ops run it:
``starpromo db upgrade`` (a subprocess) against a copy of a database at revision 0002.

The 0002 database is built once (``command.upgrade`` to 0002, then COPY of generated rows with the keys and indexes
dropped and built again after the load, then VACUUM ANALYZE as a live database would have), and every run migrates
a fresh copy of it. Its data is shaped like production:
large batches of single-use codes sharing a campaign_name and terms, 2,000 partner campaigns of 100 multi-use
codes, 99,990 single-code campaigns, names whose codes carry two sets of terms (the migration makes two
campaigns and suffixes the second name, one of them colliding with an existing name), 200,000 redemptions (a
user holding two codes of one campaign among them), 50,000 purchases and 600,000 attempts.

Baseline (the limit, measured on another fresh copy in the same run): rewriting the three tables the migration
rewrites (``CREATE TABLE AS SELECT`` of promo_codes, promo_redemptions and promo_attempts) and building as many
indexes of the same kinds on them, in one transaction, with the migration's work_mem settings -- the data
movement any migration that rebuilds those tables pays, without grouping, joining or naming anything.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.app import query
from bench.core import Check, Context, WorkloadResult, app_env, libpq_url, log, run_measured, starpromo_cmd

NAME = "migration_1m"
TEMPLATE = "bench_m0002"
TARGET_S = 60.0
CHUNK = 50_000

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
VALID_FROM = NOW - timedelta(days=60)


def _ts(moment: datetime | None) -> str:
    return "\\N" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S+00")


def _hash(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def _nul(value: object) -> str:
    return "\\N" if value is None else str(value)


# --- the shape of the 0002 data ----------------------------------------------------------------------------


def _code_terms(code_id: int, total: int) -> tuple[str, str, str | None, int | None, int | None, str, str,
                                                    datetime | None, int | None, str, str | None]:
    """(campaign_name, promo_type, grant_plan_code, grant_days, discount_percent, applicable_products,
    target_scope, valid_until, max_total_uses, status, paused_reason) of code ``code_id`` (1-based, of
    ``total``, scaled from the 1,000,000 layout)."""
    f = total / 1_000_000
    launch, news, news2, trial, partners = (int(x * f) for x in (400_000, 550_000, 600_000, 700_000, 900_000))
    if code_id <= launch:  # one giveaway batch of single-use codes
        return ("launch-2026", "PERCENT_DISCOUNT", None, None, 15, "[]", "ALL", NOW + timedelta(days=90), 1,
                "ACTIVE", None)
    if code_id <= news2:  # one name, two sets of terms: two campaigns, the second named "newsletter-q4 (2)"
        return ("newsletter-q4", "PERCENT_DISCOUNT", None, None, 10 if code_id <= news else 12, "[]", "ALL",
                NOW + timedelta(days=30), 1, "ACTIVE", None)
    if code_id <= trial:
        return ("premium-trial", "PREMIUM_GRANT", "premium", 30, None, "[]", "ALL", None, 1, "ACTIVE", None)
    if code_id <= partners:  # 100 codes per partner; every 20th partner's last 30 codes on other terms
        k, j = divmod(code_id - trial - 1, 100)
        until = NOW + timedelta(days=45) if k % 20 == 0 and j >= 70 else None
        return (f"partner-{k:04d}", "PERCENT_DISCOUNT", None, None, 5 + k % 40,
                '["premium_month"]' if k % 2 else "[]", "FIRST_PURCHASE_ONLY" if k % 3 == 0 else "ALL", until,
                None, "ACTIVE", None)
    if code_id <= total - 10:  # single-code campaigns; some expired, some paused
        if code_id % 10 == 0:
            return (f"influencer-{code_id}", "PERCENT_DISCOUNT", None, None, 20, "[]", "ALL",
                    NOW - timedelta(days=5), None, "EXPIRED", None)
        return (f"influencer-{code_id}", "PERCENT_DISCOUNT", None, None, 20, "[]", "ALL", None, None,
                "PAUSED" if code_id % 100 == 1 else "ACTIVE", "MANUAL" if code_id % 100 == 1 else None)
    # A campaign whose name is the suffixed name the migration would give partner-0020's second set of terms.
    return ("partner-0020 (2)", "PERCENT_DISCOUNT", None, None, 7, "[]", "ALL", None, None, "ACTIVE", None)


def _redemptions(total: int) -> Iterator[tuple[int, int, int, str, int | None]]:
    """(redemption id, promo_code_id, user_id, status, discount_percent) of every 0002 redemption."""
    f = total / 1_000_000
    rid = 0
    user = 50_000_000
    for j in range(int(120_000 * f)):  # launch codes; every 10th user comes back for a second code
        rid += 1
        if j % 10 != 1:
            user += 1
        status = "APPLIED" if j % 10 < 7 else "RESERVED" if j % 10 == 7 else "EXPIRED"
        yield rid, 1 + j, user, status, 15
    trial = int(600_000 * f)
    for j in range(int(40_000 * f)):  # premium grants
        rid += 1
        user += 1
        yield rid, trial + 1 + j, user, "APPLIED", None
    partners = int(700_000 * f)
    for j in range(int(40_000 * f)):  # two users per partner code
        rid += 1
        user += 1
        code_id = partners + 1 + j // 2
        k = (code_id - partners - 1) // 100
        yield rid, code_id, user, "EXPIRED" if j % 10 == 9 else "APPLIED", 5 + k % 40


def _copy(conn: psycopg.Connection[Any], table: str, columns: str, lines: Iterator[str]) -> int:
    t0 = time.perf_counter()
    n = _copy_rows(conn, table, columns, lines)
    log(f"{NAME}: COPY {n:,} rows into {table} in {time.perf_counter() - t0:.1f} s")
    return n


def _copy_rows(conn: psycopg.Connection[Any], table: str, columns: str, lines: Iterator[str]) -> int:
    n = 0
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= CHUNK:
                copy.write("".join(chunk))
                n += len(chunk)
                chunk.clear()
        if chunk:
            copy.write("".join(chunk))
            n += len(chunk)
    return n


def _drop_keys(conn: psycopg.Connection[Any], tables: tuple[str, ...]) -> list[str]:
    """Drop the keys and indexes of ``tables`` (and the foreign keys into them) for a bulk load; the statements
    that create exactly those again (same names, same definitions), in an order that works."""
    names = list(tables)
    fks = conn.execute("""
        SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE contype = 'f' AND (conrelid::regclass::text = ANY(%s) OR confrelid::regclass::text = ANY(%s))""",
                       [names, names]).fetchall()
    keys = conn.execute("""
        SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE contype IN ('p', 'u') AND conrelid::regclass::text = ANY(%s) ORDER BY contype""", [names]).fetchall()
    key_names = [k[0] for k in keys]
    indexes = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
                           "AND NOT indexname = ANY(%s)", [names, key_names]).fetchall()
    for name, table, _ in fks:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, table, _ in keys:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    return ([f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, table, definition in keys]
            + [definition for _, definition in indexes]
            + [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, table, definition in fks])


def build_0002(url: str, total: int) -> dict[str, int]:
    """Schema at 0002 (Alembic, as the application ran it) and the rows, by COPY. Row counts by table."""
    from adapters.sql.engine import EngineHolder
    from adapters.sql.migrations import upgrade

    engines = EngineHolder(url, pool_size=1)
    upgrade(engines, "0002")
    engines.dispose()

    planned = list(_redemptions(total))
    live: Counter[int] = Counter(r[1] for r in planned if r[3] != "EXPIRED")
    applied_single = {r[1] for r in planned if r[3] == "APPLIED"}
    purchases = [r for r in planned if r[3] == "APPLIED" and r[4] == 15][: int(50_000 * total / 1_000_000)]
    purchase_of = {r[0]: i + 1 for i, r in enumerate(purchases)}

    created_at = [_ts(VALID_FROM + timedelta(minutes=m)) for m in range(1440)]
    valid_from = _ts(VALID_FROM)
    # The text of a group's shared columns, formatted once per group (the rows of a group differ in a few).
    shared: dict[tuple[Any, ...], tuple[str, str, str, str]] = {}

    def codes() -> Iterator[str]:
        for code_id in range(1, total + 1):
            terms = _code_terms(code_id, total)
            text = shared.get(terms)
            if text is None:
                name, ptype, plan, days, pct, products, scope, until, cap, status, reason = terms
                text = shared[terms] = (
                    name, f"{ptype}\t{_nul(plan)}\t{_nul(days)}\t{_nul(pct)}\t{products}\t{scope}",
                    f"{_nul(reason)}\t{valid_from}\t{_ts(until)}\t{_nul(cap)}", status)
            name, head, tail, status = text
            used = live.get(code_id, 0)
            if used and terms[8] is not None and used >= terms[8] and code_id in applied_single:
                status = "DEPLETED"
            h = _hash(f"m-{code_id}")
            created = created_at[code_id % 1440]
            yield (f"{code_id}\t{name}\t{h}\t{h[:4].upper()}\t{head}\t{status}\t{tail}\t{used}\t{created}\t"
                   f"{created}\n")

    def redemptions() -> Iterator[str]:
        for rid, code_id, user, status, pct in planned:
            at = NOW - timedelta(minutes=rid % 40_000)
            until = NOW + timedelta(minutes=10) if status == "RESERVED" else \
                at + timedelta(minutes=15) if pct is not None else None
            pid = purchase_of.get(rid)
            yield (f"{rid}\t{code_id}\t{user}\tm-{rid}\t{status}\t{_nul(pct)}\t{_ts(until)}\t{_nul(pid)}\t"
                   f"{_nul(pid)}\t{_ts(at)}\t{_ts(at)}\t\\N\n")

    def purchase_rows() -> Iterator[str]:
        for pid, (rid, _, user, _, _) in enumerate(purchases, 1):
            at = NOW - timedelta(minutes=rid % 40_000) + timedelta(minutes=1)
            yield (f"{pid}\t{user}\tpremium_month\t100\t15\t85\t{rid}\tPAID\tch-{pid}\t{_ts(at)}\t{_ts(at)}\t"
                   f"{_ts(at)}\t\\N\t\\N\n")

    def attempts() -> Iterator[str]:
        aid = 0
        for rid, code_id, user, _, _ in planned:  # one ACCEPTED attempt per redemption
            aid += 1
            h = _hash(f"m-{code_id}")
            yield f"{aid}\t{user}\t{h}\t{h[:4].upper()}\tACCEPTED\t{_ts(NOW - timedelta(minutes=rid % 40_000))}\n"
        f = total / 1_000_000
        for j in range(int(300_000 * f)):  # guesses: hashes of no code
            aid += 1
            h = _hash(f"junk-{j}")
            yield (f"{aid}\t{60_000_000 + j % 5_000}\t{h}\t{h[:4].upper()}\tINVALID\t"
                   f"{_ts(NOW - timedelta(seconds=j * 7))}\n")
        for j in range(int(100_000 * f)):  # a used code tried again
            aid += 1
            h = _hash(f"m-{1 + j}")
            yield (f"{aid}\t{70_000_000 + j}\t{h}\t{h[:4].upper()}\tALREADY_USED\t"
                   f"{_ts(NOW - timedelta(seconds=j * 11))}\n")

    counts = {}
    with psycopg.connect(libpq_url(url)) as conn:
        restore = _drop_keys(conn, ("promo_codes", "promo_redemptions", "purchases", "promo_attempts"))
        counts["promo_codes"] = _copy(conn, "promo_codes", (
            "id, campaign_name, code_hash, code_prefix, promo_type, grant_plan_code, grant_days, discount_percent, "
            "applicable_products, target_scope, status, paused_reason, valid_from, valid_until, max_total_uses, "
            "used_total, created_at, updated_at"), codes())
        counts["promo_redemptions"] = _copy(conn, "promo_redemptions", (
            "id, promo_code_id, user_id, idempotency_key, status, discount_percent, reserved_until, purchase_id, "
            "applied_purchase_id, created_at, updated_at, revoked_at"), redemptions())
        counts["purchases"] = _copy(conn, "purchases", (
            "id, user_id, product_code, base_stars_amount, discount_stars_amount, final_stars_amount, "
            "promo_redemption_id, status, telegram_payment_charge_id, created_at, updated_at, paid_at, refunded_at, "
            "review_reason"), purchase_rows())
        counts["promo_attempts"] = _copy(conn, "promo_attempts",
                                         "id, user_id, normalized_code_hash, code_prefix, result, attempted_at",
                                         attempts())
        for table in counts:
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        t0 = time.perf_counter()
        for sql in restore:
            conn.execute(sql)
        log(f"{NAME}: keys and indexes of the 0002 schema built again in {time.perf_counter() - t0:.1f} s")
        conn.commit()
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return counts


# --- what must hold after the migration -----------------------------------------------------------------------


_TERMS = ("campaign_name, promo_type, grant_plan_code, grant_days, discount_percent, applicable_products, "
          "target_scope, valid_from, valid_until")


def expected(url: str) -> dict[str, int]:
    """What the 0002 database says the migrated one must hold."""
    row = query(url, f"""
        SELECT (SELECT count(*) FROM promo_codes),
               (SELECT count(*) FROM (SELECT DISTINCT {_TERMS} FROM promo_codes) AS groups),
               (SELECT coalesce(sum(used_total), 0) FROM promo_codes),
               (SELECT count(*) FROM promo_redemptions),
               (SELECT count(*) FROM promo_attempts),
               (SELECT count(*) FROM promo_attempts a WHERE EXISTS
                    (SELECT 1 FROM promo_codes c WHERE c.code_hash = a.normalized_code_hash)),
               (SELECT count(*) FROM purchases),
               (SELECT count(DISTINCT campaign_name) FROM promo_codes)""")[0]
    keys = ("codes", "campaigns", "used_total", "redemptions", "attempts", "attempts_with_code", "purchases",
            "names")
    return dict(zip(keys, (int(v) for v in row), strict=True))


def verify(url: str, want: dict[str, int]) -> tuple[list[str], dict[str, int]]:
    """Problems (empty: the migration kept every row) and what was found."""
    row = query(url, """
        SELECT (SELECT count(*) FROM promo_codes),
               (SELECT count(*) FROM promo_campaigns),
               (SELECT coalesce(sum(used_total), 0) FROM promo_codes),
               (SELECT coalesce(sum(used_total), 0) FROM promo_campaigns),
               (SELECT count(*) FROM promo_redemptions),
               (SELECT count(*) FROM promo_attempts),
               (SELECT count(*) FROM promo_attempts WHERE campaign_id IS NOT NULL),
               (SELECT count(*) FROM purchases),
               (SELECT count(*) FROM promo_redemptions r JOIN promo_codes c ON c.id = r.promo_code_id
                 WHERE r.campaign_id <> c.campaign_id),
               (SELECT count(*) FROM promo_redemptions WHERE user_slot > 1),
               (SELECT count(*) FROM promo_campaigns WHERE name LIKE '% (%)'),
               (SELECT count(*) FROM promo_codes c JOIN promo_campaigns k ON k.id = c.campaign_id
                 WHERE c.campaign_name <> k.name)""")[0]
    keys = ("codes", "campaigns", "used_total", "campaign_used_total", "redemptions", "attempts",
            "attempts_with_campaign", "purchases", "redemptions_wrong_campaign", "slot_2_or_more", "suffixed_names",
            "codes_wrong_name")
    got = dict(zip(keys, (int(v) for v in row), strict=True))
    revision = query(url, "SELECT version_num FROM alembic_version")[0][0]
    from adapters.sql.migrations import head_revision

    problems = []
    for mine, theirs in (("codes", "codes"), ("campaigns", "campaigns"), ("used_total", "used_total"),
                         ("campaign_used_total", "used_total"), ("redemptions", "redemptions"),
                         ("attempts", "attempts"), ("attempts_with_campaign", "attempts_with_code"),
                         ("purchases", "purchases")):
        if got[mine] != want[theirs]:
            problems.append(f"{mine} {got[mine]} != {want[theirs]} before")
    for zero in ("redemptions_wrong_campaign", "codes_wrong_name"):
        if got[zero]:
            problems.append(f"{zero} = {got[zero]}")
    if revision != head_revision():
        problems.append(f"revision {revision}, not head {head_revision()}")
    return problems, got


# --- the limit --------------------------------------------------------------------------------------------------


LIMIT_TABLES = """
CREATE TABLE l_codes AS SELECT * FROM promo_codes;
CREATE TABLE l_redemptions AS SELECT * FROM promo_redemptions;
CREATE TABLE l_attempts AS SELECT * FROM promo_attempts
"""
# As many indexes, of the same kinds (unique, plain, partial; one, two and five columns), as the migration builds
# on the three rebuilt tables -- over the columns the 0002 rows have.
LIMIT_INDEXES = """
ALTER TABLE l_codes ADD PRIMARY KEY (id);
ALTER TABLE l_codes ADD UNIQUE (code_hash);
CREATE INDEX ON l_codes (status, id);
CREATE INDEX ON l_codes (code_prefix, id);
CREATE INDEX ON l_codes (id) WHERE status = 'ACTIVE' AND max_total_uses IS NOT NULL AND used_total >= max_total_uses;
ALTER TABLE l_redemptions ADD PRIMARY KEY (id);
ALTER TABLE l_redemptions ADD UNIQUE (idempotency_key);
ALTER TABLE l_redemptions ADD FOREIGN KEY (promo_code_id) REFERENCES l_codes (id);
CREATE INDEX ON l_redemptions (created_at);
CREATE INDEX ON l_redemptions (reserved_until) WHERE status = 'RESERVED';
CREATE UNIQUE INDEX ON l_redemptions (promo_code_id, user_id) WHERE status <> 'EXPIRED';
CREATE UNIQUE INDEX ON l_redemptions (promo_code_id, user_id, id) WHERE status <> 'EXPIRED';
CREATE INDEX ON l_redemptions (promo_code_id, status);
CREATE INDEX ON l_redemptions (user_id, id);
ALTER TABLE l_attempts ADD PRIMARY KEY (id);
CREATE INDEX ON l_attempts (user_id, attempted_at);
CREATE INDEX ON l_attempts (attempted_at, result, normalized_code_hash, user_id, code_prefix);
CREATE INDEX ON l_attempts (user_id, attempted_at) WHERE result <> 'ACCEPTED'
"""


def limit(url: str) -> tuple[float, float]:
    """(seconds of the table copies, seconds of the index builds), one transaction, committed."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("SET LOCAL work_mem = '256MB'")
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        t0 = time.perf_counter()
        for sql in LIMIT_TABLES.strip().split(";\n"):
            conn.execute(sql)
        t1 = time.perf_counter()
        for sql in LIMIT_INDEXES.strip().split(";\n"):
            conn.execute(sql)
        conn.commit()
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1


# --- per-statement breakdown (the profile) ----------------------------------------------------------------------


def _breakdown(url: str) -> tuple[float, list[tuple[float, str]]]:
    """The same migration in this process, each statement timed: (total seconds, [(seconds, statement)])."""
    from adapters.sql.engine import EngineHolder
    from adapters.sql.migrations import upgrade

    timings: list[tuple[float, str]] = []
    started: list[float] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        started.append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if started:
            timings.append((time.perf_counter() - started.pop(), " ".join(statement.split())))

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    engines = EngineHolder(url, pool_size=1)
    try:
        t0 = time.perf_counter()
        upgrade(engines, "head")
        total = time.perf_counter() - t0
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)
        engines.dispose()
    return total, timings


def _render_breakdown(total: float, timings: list[tuple[float, str]], top: int = 25) -> str:
    timed = sum(s for s, _ in timings)
    lines = [f"The migration in-process with every statement timed: {total:.1f} s wall, {len(timings)} statements "
             f"({timed:.1f} s inside PostgreSQL round trips, {total - timed:.1f} s elsewhere: Alembic, Python).",
             "", "Slowest statements (seconds, share of the wall time, statement):"]
    for secs, sql in sorted(timings, reverse=True)[:top]:
        lines.append(f"{secs:7.2f} s {secs / total * 100:5.1f}%  {sql[:150]}")
    return "\n".join(lines)


# --- the workload -----------------------------------------------------------------------------------------------


def run(ctx: Context) -> WorkloadResult:
    cfg = ctx.config
    total = 100_000 if cfg.quick else 1_000_000
    res = WorkloadResult(NAME, f"Migration of a database holding {total:,} codes to the campaign model "
                               "(0002 -> head, starpromo db upgrade)")
    log(f"{NAME}: building the 0002 database with {total:,} codes (COPY)")
    t0 = time.perf_counter()
    template_url = ctx.databases.empty(TEMPLATE)
    counts = build_0002(template_url, total)
    want = expected(template_url)
    size = query(template_url, "SELECT pg_size_pretty(pg_database_size(current_database()))")[0][0]
    log(f"{NAME}: built in {time.perf_counter() - t0:.0f} s: {counts}, {size}")
    res.notes.append(f"The 0002 database ({size}): {', '.join(f'{n:,} {t}' for t, n in counts.items())}; "
                     f"{want['names']:,} campaign names, {want['campaigns']:,} distinct (name, terms) groups -> as "
                     f"many campaigns; {want['attempts_with_code']:,} attempts name a stored code. Built in "
                     f"{time.perf_counter() - t0:.0f} s (Alembic to 0002, COPY, VACUUM ANALYZE), not timed.")
    secs: list[float] = []
    base: list[float] = []
    got: dict[str, int] = {}
    for i in range(cfg.runs):
        url = ctx.databases.fresh("bench_migrate", template=TEMPLATE, file_copy=True)
        log(f"{NAME}: run {i + 1}/{cfg.runs} starpromo db upgrade")
        wall, peak, out, err, rc = run_measured([*starpromo_cmd(), "db", "upgrade"], app_env(url), timeout=1800)
        if rc != 0:
            raise RuntimeError(f"starpromo db upgrade failed (rc={rc}): {(err or out)[-2000:]}")
        problems, got = verify(url, want)
        if problems:
            raise RuntimeError("the migration lost or changed rows: " + "; ".join(problems))
        secs.append(wall)
        res.runs.append({"seconds": round(wall, 2), "peak_rss_mb": round(peak, 1), "codes": got["codes"],
                         "campaigns": got["campaigns"], "redemptions": got["redemptions"],
                         "attempts": got["attempts"], "output": out.strip()[-80:]})
        ctx.databases.drop("bench_migrate")
        url = ctx.databases.fresh("bench_migrate_limit", template=TEMPLATE, file_copy=True)
        log(f"{NAME}: run {i + 1}/{cfg.runs} limit: CREATE TABLE AS SELECT of the three tables + their indexes")
        copy_s, index_s = limit(url)
        base.append(copy_s + index_s)
        res.baseline_runs.append({"seconds": round(copy_s + index_s, 2), "table_copies_s": round(copy_s, 2),
                                  "index_builds_s": round(index_s, 2)})
        ctx.databases.drop("bench_migrate_limit")
    res.checks = [Check("wall time", "s", "<=", TARGET_S, secs,
                        "CREATE TABLE AS SELECT of the 3 rebuilt tables + as many indexes", base)]
    res.notes.append(f"Verified after every run: {got.get('codes', 0):,} codes, {got.get('campaigns', 0):,} campaigns "
                     f"(one per (name, terms) group), sum of used_total {got.get('used_total', 0):,} on the codes "
                     f"and on the campaigns alike, {got.get('redemptions', 0):,} redemptions each with its code's "
                     f"campaign ({got.get('slot_2_or_more', 0):,} holding user_slot 2+), {got.get('attempts', 0):,} "
                     f"attempts ({got.get('attempts_with_campaign', 0):,} with a campaign_id), "
                     f"{got.get('purchases', 0):,} purchases, {got.get('suffixed_names', 0):,} suffixed campaign "
                     "names, every code's campaign_name its campaign's, revision = head.")
    res.notes.append("Timed: `starpromo db upgrade` as a subprocess (Python start-up included) on a fresh copy of "
                     "the 0002 database (CREATE DATABASE ... STRATEGY FILE_COPY, not timed); the limit runs on "
                     "another fresh copy right after it.")
    if cfg.profile:
        url = ctx.databases.fresh("bench_migrate", template=TEMPLATE, file_copy=True)
        log(f"{NAME}: one more run in-process with every statement timed (the profile; not in the medians)")
        wall_in, timings = _breakdown(url)
        res.profile = _render_breakdown(wall_in, timings)
        ctx.databases.drop("bench_migrate")
    ctx.databases.drop(TEMPLATE)
    return res

