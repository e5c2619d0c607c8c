"""The ops console's pages (SPEC 12, SPEC 14) over 1,000,000 codes and 1,000,000 attempts: median server time
<= 300 ms each.

The data has the shape of a real deployment a week after a launch: one big giveaway campaign (70 % of the codes,
single-use, 200,000 of them redeemed over the last 7 days, most paid), a partner campaign (29 %) whose first code is
an influencer's code redeemed 20,000 times, 10,000 small campaigns of one code each, 1,000,000 attempts, all in the
last 24 hours (bench/maint.py's seeding, as the dashboard row: the worst case for the default window; the accepted
and already-used ones name the campaigns above), and one user with a history made through the domain services
(redemptions, purchases, refunds, typos).

Each page is requested in-process through Flask's test client by a signed-in admin (``create_app`` over a container
on the bench database with ``OPS_SESSION_SECRET``); the time measured is the request's time inside the process,
around ``client.get``/``client.post`` (the access log's ``duration_ms`` is shown beside it). The limit beside each
page is its own SQL (captured from one request) replayed through a bare psycopg connection: what the page costs
the database alone.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from dependency_injector import providers
from flask.testing import FlaskClient

from adapters.memory.clock import ManualClock
from adapters.passwords import Argon2Passwords
from bench.app import ACTOR, close, execute, query, recount_codes, seed_campaigns, seed_codes
from bench.core import PEPPER, TOKEN, BenchConfig, Check, Context, WorkloadResult, libpq_url, log, percentile
from bench.maint import _seed_attempts
from bench.pgbench import StatementCapture, replay_raw, replay_timed
from bench.profiling import profile_calls
from domain.campaigns import CampaignSpec
from domain.checkout import CheckoutService
from domain.codes import CodeHasher
from domain.errors import DomainError
from domain.maintenance import MaintenanceService
from domain.model import PromoType, RedeemResult
from domain.operators import OperatorExists
from domain.redemption import RedemptionService
from entrypoints.container import Container, build_container
from entrypoints.http import create_app
from entrypoints.settings import Settings

NAME = "console_pages"
TARGET_MS = 300.0

CODES = 1_000_000
ATTEMPTS = 1_000_000
OPERATOR = "bench-admin"
PASSWORD = "bench console password 0123"
SESSION_SECRET = "bench-ops-session-secret-0123456789abcdef"
USER_ID = 777_000_001
SPREAD_DAYS = 7  # the launch's redemptions (and their purchases) spread over the last week
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Seeded:
    url: str
    big_id: int
    partner_id: int
    small_ids: tuple[int, int]
    influencer_id: int
    influencer_code: str
    big_prefix: str
    user_id: int
    summary: str


@dataclass(frozen=True)
class Page:
    label: str
    path: str
    data: dict[str, str] | None = None  # a POST's form (the CSRF token is added)
    expect: int = 200
    check: bool = True  # a SPEC 12 check (else measured for the record only)


# --- data ----------------------------------------------------------------------------------------------


def _spec(name: str, percent: int, since: datetime, budget: int | None = None) -> CampaignSpec:
    return CampaignSpec(name=name, promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=percent,
                        valid_from=since, max_total_uses=budget, per_user_limit=1)


def _seed_redemptions(url: str, campaign_id: int, count: int, one_code: int | None, users_from: int) -> None:
    """``count`` redemptions created over the last ``SPREAD_DAYS`` days (evenly): on the first ``count`` codes of
    the campaign (one each), or all on ``one_code``; 60 % APPLIED, the rest EXPIRED, the newest 1 % RESERVED."""
    codes = ("SELECT id, campaign_id, row_number() OVER (ORDER BY id) AS k FROM promo_codes "
             f"WHERE campaign_id = {int(campaign_id)} ORDER BY id LIMIT {int(count)}" if one_code is None else
             f"SELECT c.id, c.campaign_id, g AS k FROM promo_codes c, generate_series(1, {int(count)}) AS g "
             f"WHERE c.id = {int(one_code)}")
    execute(url, f"""
        INSERT INTO promo_redemptions (promo_code_id, campaign_id, user_id, idempotency_key, status, discount_percent,
                                       reserved_until, created_at, updated_at, user_slot)
        SELECT p.id, p.campaign_id, {int(users_from)} + p.k, 'bench-console-' || p.id || '-' || p.k,
               CASE WHEN p.k > {count} - {max(1, count // 100)} THEN 'RESERVED'
                    WHEN p.k % 10 < 6 THEN 'APPLIED' ELSE 'EXPIRED' END,
               cmp.discount_percent, t.at + interval '15 minutes', t.at, t.at, 1
        FROM ({codes}) AS p
        JOIN promo_campaigns cmp ON cmp.id = p.campaign_id
        CROSS JOIN LATERAL (SELECT now() - (1 - p.k::double precision / {count}) * interval '{SPREAD_DAYS} days'
                                       - interval '1 minute' AS at) AS t""")


def _seed_purchases(url: str) -> None:
    """A paid purchase (PREMIUM_30D, 150 Stars less the discount) for every APPLIED seeded redemption, bound to it."""
    execute(url, """
        INSERT INTO purchases (user_id, product_code, base_stars_amount, discount_stars_amount, final_stars_amount,
                               promo_redemption_id, campaign_id, status, telegram_payment_charge_id, created_at,
                               updated_at, paid_at)
        SELECT r.user_id, 'PREMIUM_30D', 150, 150 * r.discount_percent / 100, 150 - 150 * r.discount_percent / 100,
               r.id, r.campaign_id, 'PAID', 'bench-console-charge-' || r.id, r.created_at + interval '1 minute',
               r.created_at + interval '2 minutes', r.created_at + interval '2 minutes'
        FROM promo_redemptions r WHERE r.status = 'APPLIED' AND r.idempotency_key LIKE 'bench-console-%'""")
    execute(url, """
        UPDATE promo_redemptions r SET purchase_id = p.id, applied_purchase_id = p.id, updated_at = p.paid_at
        FROM purchases p WHERE p.promo_redemption_id = r.id AND r.idempotency_key LIKE 'bench-console-%'""")


def _settle_counters(url: str, big_id: int) -> None:
    """``used_total`` of codes and campaigns = their live redemptions; single-use codes fully applied DEPLETED (as
    the rollover leaves them); 1 % of the big campaign's unused codes paused by hand; then the codes counted by
    status again (``promo_code_counts``: these statuses were changed with plain SQL)."""
    execute(url, """
        UPDATE promo_codes c SET used_total = r.live,
               status = CASE WHEN c.max_total_uses IS NOT NULL AND r.applied >= c.max_total_uses THEN 'DEPLETED'
                             ELSE c.status END
        FROM (SELECT promo_code_id, count(*) FILTER (WHERE status <> 'EXPIRED') AS live,
                     count(*) FILTER (WHERE status = 'APPLIED') AS applied
              FROM promo_redemptions GROUP BY promo_code_id) r
        WHERE r.promo_code_id = c.id""")
    execute(url, """
        UPDATE promo_campaigns c SET used_total = r.live
        FROM (SELECT campaign_id, count(*) FILTER (WHERE status <> 'EXPIRED') AS live
              FROM promo_redemptions GROUP BY campaign_id) r
        WHERE r.campaign_id = c.id""")
    execute(url, f"""
        UPDATE promo_codes SET status = 'PAUSED', paused_reason = 'MANUAL'
        WHERE campaign_id = {int(big_id)} AND status = 'ACTIVE' AND used_total = 0 AND id % 100 = 0""")
    with psycopg.connect(libpq_url(url)) as conn:
        recount_codes(conn)


def _user_history(container: Container, codes: list[str], typo_base: str, now: datetime) -> str:
    """One user's last 3 days through the domain services on a clock moved through them: a redeem of each of
    ``codes`` (most followed by a paid purchase), a few refunds (one rolled back), and typos (some in the last
    hour). Returns a summary."""
    rng = random.Random(16)
    clock = ManualClock(now - timedelta(days=3))
    uow_factory, policy, hasher = container.uow_factory(), container.policy(), container.hasher()
    assert isinstance(hasher, CodeHasher)
    products = container.products()
    redeem = RedemptionService(uow_factory, clock, hasher, policy)
    checkout = CheckoutService(uow_factory, clock, products, policy)
    maintenance = MaintenanceService(uow_factory, clock, policy, container.notifier(), container.alert_policy())
    step = timedelta(days=3) / (len(codes) + 1)
    accepted = paid = refunded = typos = 0
    purchases: list[int] = []
    for i, code in enumerate(codes):
        clock.set(now - timedelta(days=3) + step * (i + 1))
        if i % 4 == 3:  # a typo before the right code
            typos += 1
            redeem.redeem(USER_ID, typo_base[:-2] + "ZZ", f"bench-user-typo-{i}")
        outcome = redeem.redeem(USER_ID, code, f"bench-user-{i}")
        if outcome.result is not RedeemResult.ACCEPTED or outcome.redemption is None:
            continue
        accepted += 1
        if rng.random() < 0.75:
            clock.advance(minutes=3)
            try:
                purchase = checkout.init(USER_ID, rng.choice(products.codes), outcome.redemption.id)
                assert purchase.id is not None
                checkout.mark_invoice_sent(purchase.id)
                checkout.precheckout(purchase.id, purchase.final_stars_amount)
                checkout.successful_payment(purchase.id, f"bench-user-charge-{purchase.id}",
                                            purchase.final_stars_amount)
            except DomainError:
                continue
            paid += 1
            purchases.append(purchase.id)
    for purchase_id in purchases[::12]:
        checkout.mark_refunded(purchase_id, actor=ACTOR)
        refunded += 1
    if purchases:
        maintenance.rollback_refund(purchases[0], actor=ACTOR)
    for i in range(6):  # a burst of typos in the last hour
        clock.set(now - timedelta(minutes=50 - i * 5))
        redeem.redeem(USER_ID, typo_base[:-2] + "Z" + "23456789"[i], f"bench-user-late-typo-{i}")
        typos += 1
    return (f"user {USER_ID}: {len(codes)} redeems ({accepted} accepted), {paid} paid purchases, {refunded} refunded "
            f"(one rolled back), {typos} typos (6 of them in the last hour)")


def seed(ctx: Context) -> Seeded:
    quick = ctx.config.quick
    n_codes = CODES // 10 if quick else CODES
    n_attempts = ATTEMPTS // 10 if quick else ATTEMPTS
    big_n, partner_n = n_codes * 7 // 10, n_codes * 29 // 100
    small_n = n_codes - big_n - partner_n - 3  # _seed_attempts adds 3 attacked codes
    url = ctx.databases.fresh("bench_console")
    container = _container(url)
    now = container.clock().now()
    since = now - timedelta(days=30)
    t0 = time.perf_counter()
    log(f"{NAME}: seeding {big_n:,} + {partner_n:,} codes of two campaigns and {small_n:,} one-code campaigns")
    big_id, big_codes = seed_codes(container, _spec("bench-console: launch giveaway", 30, since, big_n), big_n, 1)
    partner_id, partner_codes = seed_codes(container, _spec("bench-console: partner codes", 15, since), partner_n)
    small = seed_campaigns(container, _spec("bench-console: shop", 10, since), small_n)
    lo, hi = query(url, "SELECT min(campaign_id), max(campaign_id) FROM promo_codes WHERE id BETWEEN %s AND %s",
                   [small[0][0], small[-1][0]])[0]
    influencer_id, influencer_code = partner_codes[0]
    middle = big_codes[len(big_codes) // 2][0]
    big_prefix = query(url, "SELECT code_prefix FROM promo_codes WHERE id = %s", [middle])[0][0]
    log(f"{NAME}: codes in {time.perf_counter() - t0:.0f} s; seeding {n_attempts:,} attempts")
    # The accepted and already-used attempts name a campaign: 60 % the launch, 20 % the partner, 20 % the shops.
    campaign_sql = (f"(CASE WHEN g % 10 < 6 OR g % 10 = 8 THEN CASE WHEN g % 5 < 3 THEN {big_id} "
                    f"WHEN g % 5 = 3 THEN {partner_id} ELSE {lo} + g % {hi - lo + 1} END END)::bigint")
    _seed_attempts(url, n_attempts, campaign_sql)
    redeemed = n_codes // 5
    influencer_uses = n_codes // 50
    log(f"{NAME}: seeding {redeemed:,} redemptions of the launch and {influencer_uses:,} of one partner code")
    _seed_redemptions(url, big_id, redeemed, None, 3_000_000)
    _seed_redemptions(url, partner_id, influencer_uses, influencer_id, 4_000_000)
    _seed_purchases(url)
    _settle_counters(url, big_id)
    log(f"{NAME}: the user's history through the domain services")
    user = _user_history(container, [c for _, c in small[:56]] + [partner_codes[1][1], big_codes[-1][1]],
                         small[-1][1], now)
    close(container)
    execute(url, "VACUUM ANALYZE")
    counts = query(url, """SELECT (SELECT count(*) FROM promo_codes), (SELECT count(*) FROM promo_campaigns),
                                  (SELECT count(*) FROM promo_attempts), (SELECT count(*) FROM promo_redemptions),
                                  (SELECT count(*) FROM purchases)""")[0]
    summary = (f"{counts[0]:,} codes in {counts[1]:,} campaigns (launch giveaway {big_n:,} single-use codes, "
               f"partner campaign {partner_n:,}, {small_n:,} one-code campaigns), {counts[2]:,} attempts over the "
               f"last 24 h, {counts[3]:,} redemptions over the last {SPREAD_DAYS} days ({redeemed:,} of the launch, "
               f"{influencer_uses:,} of one influencer code), {counts[4]:,} purchases; {user}. Seeded in "
               f"{time.perf_counter() - t0:.0f} s (not timed), then VACUUM ANALYZE.")
    log(f"{NAME}: {summary}")
    return Seeded(url, big_id, partner_id, (int(lo), int(hi)), influencer_id, influencer_code, str(big_prefix),
                  USER_ID, summary)


# --- the app -------------------------------------------------------------------------------------------


def _container(url: str) -> Container:
    settings = Settings(database_url=url, promo_secret_pepper=PEPPER, internal_api_token=TOKEN,
                        ops_session_secret=SESSION_SECRET)
    container = build_container(settings)
    # A cheap hash: sign-in is not what is measured.
    container.password_hasher.override(providers.Object(Argon2Passwords(time_cost=1, memory_cost=8, parallelism=1)))
    return container


def _token(html: str) -> str:
    match = CSRF_FIELD.search(html)
    if not match:
        raise RuntimeError("no CSRF token on the console page")
    return match.group(1)


def _sign_in(client: FlaskClient) -> str:
    """Sign the bench operator in through the form; the CSRF token for later POSTs."""
    token = _token(client.get("/ops/sign-in").get_data(as_text=True))
    response = client.post("/ops/sign-in", data={"name": OPERATOR, "password": PASSWORD, "csrf_token": token})
    if response.status_code != 302:
        raise RuntimeError(f"sign-in failed: {response.status_code}")
    return _token(client.get("/ops/codes/lookup").get_data(as_text=True))


class AccessLog(logging.Handler):
    """Keeps the ``duration_ms`` of each access-log line (the app's own measure, before_request..after_request)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.durations: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        value = getattr(record, "duration_ms", None)
        if isinstance(value, int | float):
            self.durations.append(float(value))


def pages(s: Seeded) -> list[Page]:
    return [
        Page("overview", "/ops/"),
        Page("overview, 7-day window (every seeded redemption and purchase in it)", "/ops/?window_hours=168",
             check=False),
        Page("campaigns", "/ops/campaigns"),
        Page("campaigns, search and filter", "/ops/campaigns?name=launch&status=ACTIVE&promo_type=PERCENT_DISCOUNT"),
        Page("campaign detail (the launch)", f"/ops/campaigns/{s.big_id}"),
        Page("campaign detail, codes by prefix and status",
             f"/ops/campaigns/{s.big_id}?code_prefix={s.big_prefix}&code_status=ACTIVE"),
        Page("code lookup (POST)", "/ops/codes/lookup", {"code": s.influencer_code}, 303),
        Page("code page (after the lookup)", f"/ops/codes/{s.influencer_id}"),
        Page("user", f"/ops/users/{s.user_id}"),
    ]


def _requester(client: FlaskClient, page: Page, token: str) -> Callable[[], int]:
    def call() -> int:
        if page.data is None:
            response = client.get(page.path)
        else:
            response = client.post(page.path, data={**page.data, "csrf_token": token})
        response.get_data()
        response.close()
        return response.status_code

    return call


def _p95(values: list[float]) -> float:
    return percentile(sorted(values), 95)


def run(ctx: Context) -> WorkloadResult:
    s = seed(ctx)
    try:
        return measure(ctx.config, s)
    finally:
        ctx.databases.drop("bench_console")


def measure(cfg: BenchConfig, s: Seeded) -> WorkloadResult:
    """Time every page of ``pages(s)`` over the seeded database ``s``."""
    res = WorkloadResult(NAME, "Ops console pages with 1,000,000 codes and 1,000,000 attempts (server time per page)")
    res.notes.append(s.summary)
    container = _container(s.url)
    with contextlib.suppress(OperatorExists):  # measured again over the same database
        container.operator_service().add(OPERATOR, "admin", PASSWORD, actor=ACTOR)
    app = create_app(container)
    access = AccessLog()
    logger = logging.getLogger("starpromo.http.access")
    old_level, old_propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(access)
    try:
        client = app.test_client()
        token = _sign_in(client)
        the_pages = pages(s)
        calls = {p.label: _requester(client, p, token) for p in the_pages}
        first: dict[str, float] = {}
        for p in the_pages:  # warm: templates compiled, the hourly rollup folded, pages in the buffer cache
            t0 = time.perf_counter()
            status = calls[p.label]()
            first[p.label] = (time.perf_counter() - t0) * 1000.0
            if status != p.expect:
                raise RuntimeError(f"{p.label}: {p.path} answered {status}, expected {p.expect}")
        per_request = 5 if cfg.quick else 15
        medians: dict[str, list[float]] = {p.label: [] for p in the_pages}
        app_medians: dict[str, list[float]] = {p.label: [] for p in the_pages}
        raw: dict[str, list[float]] = {p.label: [] for p in the_pages}
        captures = {}
        for p in the_pages:
            with StatementCapture() as cap:
                calls[p.label]()
            captures[p.label] = cap
        for run_no in range(1, cfg.runs + 1):
            log(f"{NAME}: run {run_no}/{cfg.runs}, {per_request} requests per page")
            for p in the_pages:
                ms: list[float] = []
                access.durations.clear()
                for _ in range(per_request):
                    t0 = time.perf_counter()
                    status = calls[p.label]()
                    ms.append((time.perf_counter() - t0) * 1000.0)
                    if status != p.expect:
                        raise RuntimeError(f"{p.label}: answered {status}, expected {p.expect}")
                logged = list(access.durations)
                sql = [replay_raw(s.url, captures[p.label]) for _ in range(3)]
                medians[p.label].append(statistics.median(ms))
                app_medians[p.label].append(statistics.median(logged) if logged else float("nan"))
                raw[p.label].append(statistics.median(sql))
                res.runs.append({"round": run_no, "page": p.label, "requests": per_request,
                                 "median_ms": round(statistics.median(ms), 1), "p95_ms": round(_p95(ms), 1),
                                 "max_ms": round(max(ms), 1),
                                 "access_log_median_ms": round(statistics.median(logged), 1) if logged else None,
                                 "own_sql_raw_ms": round(statistics.median(sql), 1)})
        for p in the_pages:
            if p.check:
                res.checks.append(Check(f"median server time: {p.label}", "ms", "<=", TARGET_MS, medians[p.label],
                                        "its own SQL replayed raw (psycopg)", raw[p.label]))
            all_ms = [r["p95_ms"] for r in res.runs if r["page"] == p.label]
            cap = captures[p.label]
            slowest = replay_timed(s.url, cap)[:3]
            res.notes.append(
                ("" if p.check else f"Not a check (median {statistics.median(medians[p.label]):.0f} ms): ")
                + f"{p.label} (`{'POST' if p.data else 'GET'} {p.path}`): p95 of the runs "
                f"{', '.join(f'{x:.0f}' for x in all_ms)} ms; access log median "
                f"{statistics.median(app_medians[p.label]):.0f} ms; {len(cap.statements)} statements, slowest raw: "
                + "; ".join(f"{ms:.1f} ms {' '.join(sql.split())[:110]}" for ms, sql in slowest))
        res.notes.append("The first request of each page (not timed above; the overview's folds the attempts of "
                         "the complete hours of its window into the hourly rollup, which later requests read): "
                         + "; ".join(f"{label} {ms:,.0f} ms" for label, ms in first.items()) + ".")
        res.notes.append("Time per request: around `client.get`/`client.post` of Flask's test client in this process "
                         "(routing, the session check, the services, the SQL, the template; no socket). The access "
                         "log's `duration_ms` (before_request to after_request) is the app's own figure for the "
                         "same requests. The limit: the statements of one request (captured) replayed through a "
                         "bare psycopg connection, median of 3.")
        if cfg.profile:
            slowest_page = max(the_pages, key=lambda p: statistics.median(medians[p.label]))
            res.profile = (f"The slowest page, {slowest_page.label}:\n"
                           + profile_calls(lambda _: calls[slowest_page.label](), 5))
    finally:
        logger.removeHandler(access)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
        close(container)
    return res
