"""Jobs and admin changes racing redemptions on PostgreSQL (expiry, rollover, pauses, budget changes: no deadlock,
no failure, every unit given back once), racing checkouts, and the books after all of it."""

from __future__ import annotations

import contextlib
import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from adapters.memory import ManualClock
from adapters.sql.engine import EngineHolder
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from domain.campaigns import CampaignService
from domain.checkout import CheckoutService
from domain.errors import CheckoutError, DomainError, InvalidChange, InvalidTransition
from domain.maintenance import MaintenanceService
from domain.model import CampaignChanges, CampaignStatus, CodeFilter, PromoType, RedeemResult
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedeemOutcome, RedemptionService
from tests.builders import make_code
from tests.conftest import T0
from tests.integration.pg_races.races import (
    ACCEPTED,
    ACTOR,
    ALREADY_USED,
    DEPLETED,
    assert_books_balance,
    make_campaign,
    numbered,
    race,
    redeeming,
    results,
    scalar,
    used,
)

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


def test_code_counts_stay_exact_while_codes_are_added_paused_resumed_and_expired_at_once(
    engines: EngineHolder, uow_factory: SqlUnitOfWorkFactory, campaigns: CampaignService, codes: CodeService,
    clock: ManualClock,
) -> None:
    """``promo_code_counts`` against its writers at once: bulk inserts (the generate/import path) and single adds,
    pauses and resumes of single codes, and rollover expiring a campaign whose codes are being added and paused.
    No error, and afterwards every count equals the codes (``live_units_mismatch`` compares them)."""
    launch = make_campaign(campaigns, codes, "launch", numbered("LNCH", 20))
    ending = make_campaign(campaigns, codes, "ending", numbered("ENDS", 20), valid_until=T0 + timedelta(minutes=5))
    assert launch.id is not None and ending.id is not None
    code_ids = [c.id for c in codes.list_codes(CodeFilter(campaign_id=launch.id), limit=50).items
                + codes.list_codes(CodeFilter(campaign_id=ending.id), limit=50).items if c.id is not None]
    jobs = MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=5))

    def bulk(n: int) -> Callable[[], None]:
        def call() -> None:
            with uow_factory() as uow:
                uow.promo_codes.add_many([make_code(launch, f"{n:032x}{i:032x}") for i in range(60)])
                uow.commit()
        return call

    def toggle(n: int) -> Callable[[], None]:
        def call() -> None:
            rng = random.Random(n)
            for _ in range(5):
                with contextlib.suppress(InvalidTransition):
                    codes.set_status(rng.choice(code_ids), rng.choice([CampaignStatus.PAUSED, CampaignStatus.ACTIVE]),
                                     actor=ACTOR)
        return call

    def add_one(n: int) -> Callable[[], None]:
        def call() -> None:
            with contextlib.suppress(DomainError):  # refused when the campaign expired first
                codes.add(ending.id or 0, f"LATE{n:04d}", actor=ACTOR)
        return call

    def expire() -> None:
        clock.advance(minutes=10)
        jobs.rollover_campaign_statuses()

    race([bulk(n) for n in range(6)] + [toggle(n) for n in range(16)] + [add_one(n) for n in range(6)] + [expire])
    assert scalar(engines, "SELECT count(*) FROM promo_codes WHERE campaign_id = :id", id=launch.id) == 20 + 6 * 60
    assert_books_balance(engines)
    with uow_factory() as uow:
        counted = uow.campaigns.code_counts([launch.id, ending.id])
    assert sum(counted[launch.id].values()) == 380 and counted[launch.id][CampaignStatus.PAUSED] > 0
    assert counted[ending.id][CampaignStatus.EXPIRED] >= 20
