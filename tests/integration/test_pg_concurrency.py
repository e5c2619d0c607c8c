"""SPEC 4 and 13 on real PostgreSQL: racing redeems resolve through the database's constraints into the SPEC
results with exact counts and no error, at both levels of the model (a code's cap, its campaign's budget and
per-user limit), and ``used_total`` always equals the live redemptions of every code and every campaign
(checked in SQL, ``tests.sql.live_units_mismatch``).

Every race runs the real services on real SQL units of work, one thread per caller, released together.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from adapters.memory import ManualClock
from adapters.sql.engine import EngineHolder
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from domain.campaigns import CampaignService, CampaignSpec
from domain.checkout import CheckoutService
from domain.codes import CodeHasher
from domain.errors import CheckoutError, InvalidChange, InvalidTransition
from domain.maintenance import MaintenanceService
from domain.model import Campaign, CampaignChanges, CampaignStatus, CodeFilter, PromoType, RedeemResult
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedeemOutcome, RedemptionService
from tests.conftest import PEPPER, T0
from tests.sql import live_units_mismatch, pg_engines, truncate_all

T = TypeVar("T")
# The largest race below (50 users on 50 codes) runs every caller on its own connection at once.
MAX_THREADS = 50
ACTOR = "test:race"
ACCEPTED, DEPLETED, ALREADY_USED = RedeemResult.ACCEPTED, RedeemResult.DEPLETED, RedeemResult.ALREADY_USED


@pytest.fixture(scope="module")
def engines() -> Iterator[EngineHolder]:
    with pg_engines("starpromo_race", pool_size=MAX_THREADS) as holder:
        yield holder


@pytest.fixture
def uow_factory(engines: EngineHolder) -> SqlUnitOfWorkFactory:
    truncate_all(engines)
    return SqlUnitOfWorkFactory(engines)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def hasher() -> CodeHasher:
    return CodeHasher(PEPPER)


@pytest.fixture
def campaigns(uow_factory: SqlUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher) -> CampaignService:
    return CampaignService(uow_factory, clock, hasher)


@pytest.fixture
def codes(uow_factory: SqlUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher) -> CodeService:
    return CodeService(uow_factory, clock, hasher)


@pytest.fixture
def redemptions(uow_factory: SqlUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher) -> RedemptionService:
    # Throttling would turn a racing user's ALREADY_USED answers into RATE_LIMITED ones: not what is measured.
    return RedemptionService(uow_factory, clock, hasher, PromoPolicy(fail_limit=1000))


@pytest.fixture
def checkout(uow_factory: SqlUnitOfWorkFactory, clock: ManualClock) -> CheckoutService:
    return CheckoutService(uow_factory, clock)


@pytest.fixture
def jobs(uow_factory: SqlUnitOfWorkFactory, clock: ManualClock) -> MaintenanceService:
    return MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=7))


def race(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call at once, each on its own thread (up to ``MAX_THREADS``): the threads wait at one gate that
    opens when all are queued. An exception in any call fails the race."""
    gate = threading.Event()

    def go(call: Callable[[], T]) -> T:
        gate.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(min(len(calls), MAX_THREADS)) as pool:
        futures = [pool.submit(go, call) for call in calls]
        gate.set()
        return [f.result(timeout=120) for f in futures]


def redeeming(service: RedemptionService, user_id: int, code: str, key: str) -> Callable[[], RedeemOutcome]:
    return lambda: service.redeem(user_id, code, key)


def results(outcomes: list[RedeemOutcome]) -> Counter[RedeemResult]:
    return Counter(o.result for o in outcomes)


def scalar(engines: EngineHolder, sql: str, **params: object) -> int:
    with engines.engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one() or 0)


def used(engines: EngineHolder, campaign: Campaign) -> tuple[int, int]:
    """(the campaign's ``used_total``, the sum of its codes' ``used_total``), read in SQL."""
    return (scalar(engines, "SELECT used_total FROM promo_campaigns WHERE id = :id", id=campaign.id),
            scalar(engines, "SELECT sum(used_total) FROM promo_codes WHERE campaign_id = :id", id=campaign.id))


def users_over_their_limit(engines: EngineHolder) -> int:
    """(campaign, user) pairs holding more live redemptions than the campaign's ``per_user_limit``, or two live
    redemptions of one code: both impossible while no limit is lowered."""
    return scalar(engines, """
        SELECT count(*) FROM (
            SELECT r.campaign_id, r.user_id, count(*) AS live, count(DISTINCT r.promo_code_id) AS codes,
                   count(DISTINCT r.user_slot) AS slots
            FROM promo_redemptions r WHERE r.status <> 'EXPIRED' GROUP BY r.campaign_id, r.user_id
        ) held JOIN promo_campaigns k ON k.id = held.campaign_id
        WHERE held.live > k.per_user_limit OR held.codes <> held.live OR held.slots <> held.live""")


def assert_books_balance(engines: EngineHolder) -> None:
    """SPEC 4 at both levels, in SQL: every code's and every campaign's ``used_total`` equals its RESERVED +
    APPLIED + REVOKED redemptions and stays within its cap / budget; no user above a per-user limit."""
    assert live_units_mismatch(engines) == []
    assert users_over_their_limit(engines) == 0


def make_campaign(campaigns: CampaignService, codes: CodeService, name: str, plaintexts: list[str], *,
                  promo_type: PromoType = PromoType.PERCENT_DISCOUNT, budget: int | None = None,
                  per_user_limit: int = 1, code_cap: int | None = None, **terms: Any) -> Campaign:
    """A campaign with the given codes (each with its own cap ``code_cap``), made through the services."""
    kinds: dict[PromoType, dict[str, Any]] = {PromoType.PERCENT_DISCOUNT: {"discount_percent": 25},
                            PromoType.STARS_DISCOUNT: {"discount_stars": 40},
                            PromoType.PREMIUM_GRANT: {"grant_plan_code": "PREMIUM", "grant_days": 7}}
    kind = kinds[promo_type]
    spec = CampaignSpec(name=name, promo_type=promo_type, max_total_uses=budget, per_user_limit=per_user_limit,
                        **{**kind, **terms})
    campaign, _ = campaigns.create(spec, actor=ACTOR, code=plaintexts[0], code_max_total_uses=code_cap)
    assert campaign.id is not None
    for plaintext in plaintexts[1:]:
        codes.add(campaign.id, plaintext, code_cap, actor=ACTOR)
    return campaign


def numbered(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


# --- many racing redeems on one capped code -----------------------------------------------------------------


@pytest.mark.parametrize("cap_on", ["code", "campaign"])
def test_160_users_racing_for_25_uses_of_one_code_get_exactly_25_accepted_and_the_rest_depleted(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    cap_on: str,
) -> None:
    """The 25 units are the code's own cap, or its campaign's budget: the same exact count either way."""
    hot = make_campaign(campaigns, codes, "hot", ["HOTCODE25"], promo_type=PromoType.PREMIUM_GRANT,
                        code_cap=25 if cap_on == "code" else None, budget=25 if cap_on == "campaign" else None)
    outcomes = race([redeeming(redemptions, u, "HOTCODE25", f"race-{u}") for u in range(1, 161)])
    assert results(outcomes) == {ACCEPTED: 25, DEPLETED: 135}
    assert used(engines, hot) == (25, 25)
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE status = 'APPLIED'") == 25
    assert scalar(engines, "SELECT count(*) FROM entitlements") == 25
    assert scalar(engines, "SELECT count(*) FROM entitlement_ledger") == 25
    assert scalar(engines, "SELECT count(*) FROM promo_attempts") == 160
    assert scalar(engines, "SELECT count(*) FROM promo_attempts WHERE result = 'DEPLETED' AND campaign_id = :id",
                  id=hot.id) == 135
    assert_books_balance(engines)


# --- a giveaway: single-use codes of one campaign with a budget ------------------------------------------------


@pytest.mark.parametrize("promo_type", [PromoType.PERCENT_DISCOUNT, PromoType.PREMIUM_GRANT])
def test_50_users_racing_50_single_use_codes_of_a_campaign_with_budget_10_get_exactly_10_accepted(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    jobs: MaintenanceService, clock: ManualClock, promo_type: PromoType,
) -> None:
    plaintexts = numbered("GIVE", 50)
    giveaway = make_campaign(campaigns, codes, "giveaway", plaintexts, promo_type=promo_type, budget=10, code_cap=1)
    outcomes = race([redeeming(redemptions, 1000 + u, plaintexts[u], f"give-{u}") for u in range(50)])
    assert results(outcomes) == {ACCEPTED: 10, DEPLETED: 40}
    assert used(engines, giveaway) == (10, 10)
    assert scalar(engines, "SELECT count(*) FROM promo_codes WHERE used_total = 1") == 10
    assert scalar(engines, "SELECT count(*) FROM promo_codes WHERE used_total = 0") == 40
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions") == 10
    # Each acceptance is the winning user's own code.
    winners = {o.redemption.user_id: o.code.id for o in outcomes
               if o.accepted and o.redemption is not None and o.code is not None}
    assert len(winners) == 10 and len(set(winners.values())) == 10
    assert_books_balance(engines)

    jobs.rollover_campaign_statuses()
    if promo_type is PromoType.PREMIUM_GRANT:
        # Nothing RESERVED is left to give a unit back: the budget is spent, and so is each used code's cap.
        assert scalar(engines, "SELECT count(*) FROM promo_campaigns WHERE status = 'DEPLETED'") == 1
        assert scalar(engines, "SELECT count(*) FROM promo_codes WHERE status = 'DEPLETED'") == 10
    else:
        # Reservations may still expire and give their units back: nothing is DEPLETED yet ...
        assert scalar(engines, "SELECT count(*) FROM promo_campaigns WHERE status = 'DEPLETED'") == 0
        clock.advance(minutes=16)
        assert jobs.expire_reservations().expired == 10
        # ... and once they did, the budget and the caps are free again.
        assert used(engines, giveaway) == (0, 0)
        again = race([redeeming(redemptions, 2000 + u, plaintexts[u], f"give2-{u}") for u in range(50)])
        assert results(again) == {ACCEPTED: 10, DEPLETED: 40}
        assert used(engines, giveaway) == (10, 10)
    assert_books_balance(engines)


# --- one user, many codes of one campaign: the per-user limit ------------------------------------------------


@pytest.mark.parametrize("promo_type", [PromoType.PERCENT_DISCOUNT, PromoType.PREMIUM_GRANT])
@pytest.mark.parametrize("limit", [1, 3])
def test_one_user_racing_20_codes_of_a_campaign_gets_exactly_its_per_user_limit(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    jobs: MaintenanceService, clock: ManualClock, limit: int, promo_type: PromoType,
) -> None:
    plaintexts = numbered("MINE", 20)
    mine = make_campaign(campaigns, codes, f"per user {limit}", plaintexts, promo_type=promo_type,
                         per_user_limit=limit)
    outcomes = race([redeeming(redemptions, 7, plaintexts[i], f"mine-{i}") for i in range(20)])
    assert results(outcomes) == {ACCEPTED: limit, ALREADY_USED: 20 - limit}
    assert used(engines, mine) == (limit, limit)
    held = sa.text("SELECT user_slot FROM promo_redemptions WHERE user_id = 7 AND status <> 'EXPIRED' "
                   "ORDER BY user_slot")
    with engines.engine.connect() as conn:
        assert [int(s) for s, in conn.execute(held)] == list(range(1, limit + 1))
    assert scalar(engines, "SELECT count(DISTINCT promo_code_id) FROM promo_redemptions") == limit
    if promo_type is PromoType.PREMIUM_GRANT:
        assert scalar(engines, "SELECT count(*) FROM entitlement_ledger WHERE user_id = 7") == limit
    assert_books_balance(engines)

    # Another user is not limited by this one's slots.
    assert redemptions.redeem(8, plaintexts[0], "other-user").accepted

    if promo_type is PromoType.PERCENT_DISCOUNT:
        # Expired reservations free the user's slots: the same race again gets exactly the limit again.
        clock.advance(minutes=16)
        jobs.expire_reservations()
        again = race([redeeming(redemptions, 7, plaintexts[i], f"mine-again-{i}") for i in range(20)])
        assert results(again) == {ACCEPTED: limit, ALREADY_USED: 20 - limit}
        assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE user_id = 7 AND status = 'RESERVED'"
                      ) == limit
    assert_books_balance(engines)


# --- one user, many keys, one code ----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3])
def test_one_user_racing_20_keys_on_one_code_gets_exactly_one_acceptance(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    limit: int,
) -> None:
    """One live redemption per user and code, whatever the campaign's per-user limit allows across its codes."""
    one = make_campaign(campaigns, codes, "one user", ["ONEUSER20"], per_user_limit=limit)
    outcomes = race([redeeming(redemptions, 7, "ONEUSER20", f"key-{k}") for k in range(20)])
    assert results(outcomes) == {ACCEPTED: 1, ALREADY_USED: 19}
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions") == 1
    assert used(engines, one) == (1, 1)
    assert_books_balance(engines)


# --- one key racing itself --------------------------------------------------------------------------------------


def test_one_key_racing_itself_20_times_makes_one_redemption_and_identical_answers(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
) -> None:
    same = make_campaign(campaigns, codes, "same key", ["SAMEKEY20"], budget=5, code_cap=3)
    outcomes: list[RedeemOutcome] = race([redeeming(redemptions, 9, "SAMEKEY20", "tg:9:100")] * 20)
    assert results(outcomes) == {ACCEPTED: 20}
    assert sum(1 for o in outcomes if not o.replayed) == 1
    answers = {(o.redemption.id, o.redemption.status, o.redemption.reserved_until, o.redemption.user_slot)
               for o in outcomes if o.redemption is not None}
    assert len(answers) == 1
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions") == 1
    assert scalar(engines, "SELECT count(*) FROM promo_attempts") == 1  # replays write no attempt
    assert used(engines, same) == (1, 1)
    assert_books_balance(engines)


def test_one_key_raced_by_two_users_belongs_to_one_of_them_and_the_other_gets_key_reused(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
) -> None:
    shared = make_campaign(campaigns, codes, "shared key", ["SHAREKEY1"])
    outcomes = race([redeeming(redemptions, u, "SHAREKEY1", "tg:shared:1") for u in (11, 12) * 10])
    by_user = {u: {o.result for o, v in zip(outcomes, (11, 12) * 10, strict=True) if v == u} for u in (11, 12)}
    assert sorted(map(sorted, by_user.values())) == [[ACCEPTED], [RedeemResult.IDEMPOTENCY_KEY_REUSED]]
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions") == 1
    assert used(engines, shared) == (1, 1)
    assert_books_balance(engines)


# --- jobs and admin changes racing redemptions ------------------------------------------------------------------


def test_jobs_running_alongside_redemptions_keep_used_total_equal_to_the_live_redemptions(
    engines: EngineHolder, uow_factory: SqlUnitOfWorkFactory, campaigns: CampaignService, codes: CodeService,
    redemptions: RedemptionService, checkout: CheckoutService, clock: ManualClock,
) -> None:
    plaintexts = [f"JOBRACE{i}" for i in range(4)]
    # Two campaigns of two codes each: a budget on one, caps on the codes of the other.
    make_campaign(campaigns, codes, "jobs a", plaintexts[:2], budget=40, per_user_limit=2)
    make_campaign(campaigns, codes, "jobs b", plaintexts[2:], code_cap=25)
    workers = [MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=7)) for _ in range(2)]
    stop = threading.Event()
    job_errors: list[BaseException] = []

    def run_jobs(job: MaintenanceService) -> None:
        while not stop.is_set():
            try:
                job.expire_reservations()
                job.rollover_campaign_statuses()
                job.expire_stale_invoices()
            except BaseException as exc:  # collected and asserted below
                job_errors.append(exc)
                return

    def user_round(user: int) -> None:
        for round_ in range(3):
            out = redemptions.redeem(user, plaintexts[(user + round_) % 4], f"u{user}-r{round_}")
            if out.accepted and out.redemption is not None and out.redemption.id is not None and user % 3 == 0:
                try:
                    checkout.init(user, "PREMIUM_30D", out.redemption.id)  # bound: must not expire
                except CheckoutError as exc:  # another thread moved the clock past the reservation,
                    # and a job may already have expired it
                    assert exc.code in ("PROMO_RESERVATION_EXPIRED", "PROMO_NOT_RESERVED"), exc.code
            if user % 5 == 0:
                clock.advance(minutes=8)  # reservations fall due while others redeem

    threads = [threading.Thread(target=run_jobs, args=(j,)) for j in workers]
    for t in threads:
        t.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(user_round, range(1, 121)))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert job_errors == []
    clock.advance(minutes=20)
    for job in workers:
        job.expire_reservations()
    assert_books_balance(engines)
    # A reservation bound to an open purchase never expires.
    assert scalar(engines, """SELECT count(*) FROM promo_redemptions r JOIN purchases p ON p.id = r.purchase_id
                              WHERE p.status IN ('CREATED', 'INVOICE_SENT') AND r.status = 'EXPIRED'""") == 0
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE status = 'EXPIRED'") > 0


def test_two_expiry_jobs_at_once_give_each_unit_back_exactly_once_at_both_levels(
    engines: EngineHolder, uow_factory: SqlUnitOfWorkFactory, campaigns: CampaignService, codes: CodeService,
    redemptions: RedemptionService, clock: ManualClock,
) -> None:
    plaintexts = [f"EXPIRY{i}" for i in range(6)]
    made = [make_campaign(campaigns, codes, f"expiry {i}", plaintexts[3 * i:3 * i + 3], budget=300)
            for i in range(2)]
    for user in range(1, 301):
        assert redemptions.redeem(user, plaintexts[user % 6], f"e{user}").accepted
    assert [used(engines, c) for c in made] == [(150, 150), (150, 150)]
    clock.advance(minutes=16)
    jobs = [MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=25), max_batches=100)
            for _ in range(4)]
    summaries = race([j.expire_reservations for j in jobs])
    assert sum(s.expired for s in summaries) == 300
    assert [used(engines, c) for c in made] == [(0, 0), (0, 0)]
    assert scalar(engines, "SELECT count(*) FROM promo_campaigns WHERE status = 'ACTIVE'") == 2
    assert_books_balance(engines)


def test_redeems_racing_pauses_budget_changes_and_rollover_never_deadlock_or_fail(
    engines: EngineHolder, uow_factory: SqlUnitOfWorkFactory, campaigns: CampaignService, codes: CodeService,
    redemptions: RedemptionService, clock: ManualClock,
) -> None:
    """While 16 threads redeem the codes of two campaigns, others pause and resume the campaigns and single codes,
    move the budget up and down, rename a campaign and move its ``valid_until`` (which rewrites its codes'
    copies), and run expiry and rollover — until rollover expires one campaign mid-race. No thread may see an
    error (PostgreSQL reports a deadlock as one) other than the refusals the SPEC names; the books balance."""
    first = numbered("BUSY", 12)
    second = numbered("CALM", 12)
    busy = make_campaign(campaigns, codes, "busy", first, budget=60, per_user_limit=2, code_cap=8,
                         valid_until=T0 + timedelta(minutes=40))
    calm = make_campaign(campaigns, codes, "calm", second, promo_type=PromoType.PREMIUM_GRANT, budget=80)
    assert busy.id is not None and calm.id is not None
    busy_id, calm_id = busy.id, calm.id
    code_ids = [c.id for c in codes.list_codes(CodeFilter(campaign_id=busy_id), limit=50).items if c.id is not None]
    jobs = MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=5))
    stop = threading.Event()
    errors: list[BaseException] = []
    answers: Counter[RedeemResult] = Counter()
    lock = threading.Lock()
    refused = (InvalidTransition, InvalidChange)  # the SPEC's answers to a change that no longer fits

    def guarded(body: Callable[[random.Random], None], seed: int) -> Callable[[], None]:
        def loop() -> None:
            rng = random.Random(seed)
            while not stop.is_set():
                try:
                    body(rng)
                except refused:
                    pass
                except BaseException as exc:  # asserted below
                    errors.append(exc)
                    return
        return loop

    def redeemer(n: int) -> Callable[[], None]:
        def one(rng: random.Random) -> None:
            user = rng.randrange(1, 400)
            code = rng.choice(first + second)
            out = redemptions.redeem(user, code, f"busy-{n}-{rng.getrandbits(48)}")
            with lock:
                answers[out.result] += 1
        return guarded(one, n)

    def pauser(rng: random.Random) -> None:
        status = rng.choice([CampaignStatus.PAUSED, CampaignStatus.ACTIVE])
        if rng.random() < 0.5:
            campaigns.set_status(rng.choice([busy_id, calm_id]), status, actor=ACTOR)
        else:
            codes.set_status(rng.choice(code_ids), status, actor=ACTOR)

    def changer(rng: random.Random) -> None:
        target = rng.choice([busy_id, calm_id])
        current = campaigns.get(target).campaign
        roll = rng.random()
        if roll < 0.6:
            budget = current.used_total + rng.randrange(0, 15) if rng.random() < 0.9 else None
            campaigns.change(target, CampaignChanges(max_total_uses=budget), actor=ACTOR)
        elif roll < 0.8:
            campaigns.change(target, CampaignChanges(name=f"{'busy' if target == busy_id else 'calm'} "
                                                          f"{rng.randrange(1000)}"), actor=ACTOR)
        elif target == busy_id:
            # Later, never earlier than the end the test counts on (only moved for its codes' copies).
            later = (current.valid_until or T0) + timedelta(seconds=1)
            campaigns.change(target, CampaignChanges(valid_until=later), actor=ACTOR)

    def janitor(rng: random.Random) -> None:
        clock.advance(seconds=rng.randrange(30, 90))
        jobs.expire_reservations()
        jobs.rollover_campaign_statuses()

    loops = [redeemer(n) for n in range(16)] + [guarded(pauser, 101), guarded(changer, 102), guarded(janitor, 103)]
    threads = [threading.Thread(target=loop) for loop in loops]
    for t in threads:
        t.start()
    try:
        # Until rollover has expired the busy campaign (its valid_until passes as the janitor moves the clock).
        for _ in range(1200):
            if stop.wait(0.1) or errors:
                break
            if campaigns.get(busy_id).campaign.status is CampaignStatus.EXPIRED and sum(answers.values()) > 500:
                break
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hangs: a lock never released"
    assert errors == [], errors
    assert campaigns.get(busy_id).campaign.status is CampaignStatus.EXPIRED
    assert scalar(engines, "SELECT count(*) FROM promo_codes WHERE campaign_id = :id AND status <> 'EXPIRED'",
                  id=busy_id) == 0
    assert answers[ACCEPTED] > 0 and answers[RedeemResult.PAUSED] > 0, answers
    assert_books_balance(engines)
    clock.advance(minutes=20)
    jobs.expire_reservations()
    jobs.rollover_campaign_statuses()
    assert_books_balance(engines)


def test_racing_checkouts_of_one_product_make_one_open_purchase(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    checkout: CheckoutService, clock: ManualClock,
) -> None:
    make_campaign(campaigns, codes, "checkout", ["CHECKOUT1"])
    out = redemptions.redeem(5, "CHECKOUT1", "c1")
    assert out.redemption is not None and out.redemption.id is not None
    rid = out.redemption.id
    purchases = race([lambda: checkout.init(5, "PREMIUM_90D", rid)] * 12)
    assert len({p.id for p in purchases}) == 1
    assert scalar(engines, "SELECT count(*) FROM purchases") == 1
    clock.advance(timedelta(minutes=20))
    assert_books_balance(engines)


# --- all of it: the sums after races, settlement, refund rollback and expiry ----------------------------------


def test_after_every_race_expiry_and_refund_rollback_the_books_balance_at_both_levels(
    engines: EngineHolder, campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    checkout: CheckoutService, jobs: MaintenanceService, clock: ManualClock,
) -> None:
    """The races above into one database, then part of the accepted reservations settled and paid, some of those
    refunded and rolled back (REVOKED keeps its unit), the rest left to expire (EXPIRED gives it back): every
    code's and every campaign's ``used_total`` equals its RESERVED + APPLIED + REVOKED redemptions."""
    give = numbered("GIFT", 30)
    mine = numbered("SELF", 20)
    giveaway = make_campaign(campaigns, codes, "giveaway", give, promo_type=PromoType.STARS_DISCOUNT, budget=10,
                             code_cap=1)
    per_user = make_campaign(campaigns, codes, "per user", mine, per_user_limit=3)
    hot = make_campaign(campaigns, codes, "hot", ["HOTCODE99"], code_cap=15)
    calls: list[Callable[[], RedeemOutcome]] = []
    calls += [redeeming(redemptions, 100 + u, give[u], f"g-{u}") for u in range(30)]
    calls += [redeeming(redemptions, 7, mine[i], f"s-{i}") for i in range(20)]
    calls += [redeeming(redemptions, 200 + u, "HOTCODE99", f"h-{u}") for u in range(40)]
    calls += [redeeming(redemptions, 9, "HOTCODE99", "tg:9:1")] * 10
    outcomes = race(calls)
    assert results(outcomes[:30]) == {ACCEPTED: 10, DEPLETED: 20}
    assert results(outcomes[30:50]) == {ACCEPTED: 3, ALREADY_USED: 17}
    # The hot code's 15 units went to 15 distinct requests; the key racing itself is one of them or got DEPLETED,
    # and all its answers agree (a request that lost the key to its twin replays the twin's answer).
    hot_answers = outcomes[50:]
    assert len({o.redemption.id for o in hot_answers if o.accepted and o.redemption is not None}) == 15
    assert {o.result for o in hot_answers} == {ACCEPTED, DEPLETED}
    twins = outcomes[90:]
    assert len({o.result for o in twins}) == 1
    assert len({o.redemption.id for o in twins if o.redemption is not None}) <= 1
    assert used(engines, hot) == (15, 15)
    assert_books_balance(engines)

    # Settle every accepted Stars reservation of the giveaway: 150 - 40 = 110 Stars each.
    accepted = [o.redemption for o in outcomes[:30] if o.accepted and o.redemption is not None]
    paid: list[int] = []
    for n, r in enumerate(accepted[:6]):
        assert r.id is not None
        p = checkout.init(r.user_id, "PREMIUM_30D", r.id)
        assert (p.base_stars_amount, p.discount_stars_amount, p.final_stars_amount) == (150, 40, 110)
        assert p.id is not None
        checkout.mark_invoice_sent(p.id)
        assert checkout.precheckout(p.id, 110).ok
        checkout.successful_payment(p.id, f"race-charge-{n}", 110)
        paid.append(p.id)
    for purchase_id in paid[:3]:
        checkout.mark_refunded(purchase_id)
    assert jobs.rollback_refunded_promos().revoked == 3
    clock.advance(minutes=16)
    expired = jobs.expire_reservations().expired
    # 4 unpaid giveaway reservations, 3 of the per-user campaign, 15 of the hot code.
    assert expired == 4 + 3 + 15
    assert used(engines, giveaway) == (6, 6)  # 3 APPLIED + 3 REVOKED keep their units
    assert used(engines, per_user) == (0, 0)
    assert used(engines, hot) == (0, 0)
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE status = 'REVOKED'") == 3
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE status = 'APPLIED'") == 3
    jobs.rollover_campaign_statuses()
    assert_books_balance(engines)
