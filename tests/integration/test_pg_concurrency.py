"""SPEC 4 and 13 on real PostgreSQL: racing redeems resolve through the database's constraints into the
SPEC results, exact counts, and ``used_total`` always equals the live redemptions (checked in SQL)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

import pytest
import sqlalchemy as sa

from adapters.memory import ManualClock
from adapters.sql.engine import EngineHolder
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from domain.campaigns import CampaignService, CampaignSpec
from domain.checkout import CheckoutService
from domain.codes import CodeHasher
from domain.errors import CheckoutError
from domain.maintenance import MaintenanceService
from domain.model import Campaign, CampaignStatus, PromoType, RedeemResult
from domain.policy import PromoPolicy
from domain.redemption import RedeemOutcome, RedemptionService
from tests.conftest import PEPPER, T0
from tests.sql import live_units_mismatch, pg_engines, truncate_all

T = TypeVar("T")
WORKERS = 24


@pytest.fixture(scope="module")
def engines() -> Iterator[EngineHolder]:
    with pg_engines("starpromo_race", pool_size=WORKERS) as holder:
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
def redemptions(uow_factory: SqlUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher) -> RedemptionService:
    return RedemptionService(uow_factory, clock, hasher, PromoPolicy(fail_limit=1000))


def race(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call at once: the threads wait at one gate that opens when all are queued."""
    gate = threading.Event()

    def go(call: Callable[[], T]) -> T:
        gate.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(go, call) for call in calls]
        gate.set()
        return [f.result() for f in futures]


def scalar(engines: EngineHolder, sql: str, **params: object) -> int:
    with engines.engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one())


def discount(campaigns: CampaignService, code: str, max_uses: int | None) -> Campaign:
    return campaigns.create(CampaignSpec(campaign_name=f"race {code}", promo_type=PromoType.PERCENT_DISCOUNT,
                                         discount_percent=25, max_total_uses=max_uses), code)


def test_150_users_racing_for_25_units_get_exactly_25_accepted_and_the_rest_depleted(
    engines: EngineHolder, campaigns: CampaignService, redemptions: RedemptionService,
) -> None:
    c = campaigns.create(CampaignSpec(campaign_name="hot", promo_type=PromoType.PREMIUM_GRANT,
                                      grant_plan_code="PREMIUM", grant_days=7, max_total_uses=25), "HOTCODE25")
    outcomes = race([lambda u=u: redemptions.redeem(u, "HOTCODE25", f"race-{u}") for u in range(1, 161)])
    results = Counter(o.result for o in outcomes)
    assert results == {RedeemResult.ACCEPTED: 25, RedeemResult.DEPLETED: 135}
    assert scalar(engines, "SELECT used_total FROM promo_codes WHERE id = :id", id=c.id) == 25
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE status = 'APPLIED'") == 25
    assert scalar(engines, "SELECT count(*) FROM entitlements") == 25
    assert scalar(engines, "SELECT count(*) FROM entitlement_ledger") == 25
    assert scalar(engines, "SELECT count(*) FROM promo_attempts") == 160
    assert live_units_mismatch(engines) == []


def test_one_user_racing_20_keys_gets_exactly_one_acceptance(
    engines: EngineHolder, campaigns: CampaignService, redemptions: RedemptionService,
) -> None:
    discount(campaigns, "ONEUSER20", max_uses=None)
    outcomes = race([lambda k=k: redemptions.redeem(7, "ONEUSER20", f"key-{k}") for k in range(20)])
    results = Counter(o.result for o in outcomes)
    assert results == {RedeemResult.ACCEPTED: 1, RedeemResult.ALREADY_USED: 19}
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions") == 1
    assert scalar(engines, "SELECT used_total FROM promo_codes") == 1
    assert live_units_mismatch(engines) == []


def test_one_key_racing_itself_20_times_makes_one_redemption_and_identical_answers(
    engines: EngineHolder, campaigns: CampaignService, redemptions: RedemptionService,
) -> None:
    discount(campaigns, "SAMEKEY20", max_uses=5)
    outcomes: list[RedeemOutcome] = race([lambda: redemptions.redeem(9, "SAMEKEY20", "tg:9:100")] * 20)
    assert {o.result for o in outcomes} == {RedeemResult.ACCEPTED}
    assert {o.redemption.id for o in outcomes if o.redemption} == {outcomes[0].redemption.id if outcomes[0].redemption
                                                                   else -1}
    assert sum(1 for o in outcomes if not o.replayed) == 1
    assert len({(o.redemption.id, o.redemption.status, o.redemption.reserved_until)
                for o in outcomes if o.redemption}) == 1
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions") == 1
    assert scalar(engines, "SELECT used_total FROM promo_codes") == 1
    assert live_units_mismatch(engines) == []


def test_jobs_running_alongside_redemptions_keep_used_total_equal_to_the_live_redemptions(
    engines: EngineHolder, uow_factory: SqlUnitOfWorkFactory, campaigns: CampaignService,
    redemptions: RedemptionService, clock: ManualClock,
) -> None:
    codes = [f"JOBRACE{i}" for i in range(4)]
    for code in codes:
        discount(campaigns, code, max_uses=30)
    checkout = CheckoutService(uow_factory, clock)
    jobs = [MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=7)) for _ in range(2)]
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
            out = redemptions.redeem(user, codes[user % 4], f"u{user}-r{round_}")
            if out.accepted and out.redemption is not None and user % 3 == 0:
                try:
                    checkout.init(user, "PREMIUM_30D", out.redemption.id)  # bound: must not expire
                except CheckoutError as exc:  # another thread moved the clock past the reservation,
                    # and a job may already have expired it
                    assert exc.code in ("PROMO_RESERVATION_EXPIRED", "PROMO_NOT_RESERVED")
            if user % 5 == 0:
                clock.advance(minutes=8)  # reservations fall due while others redeem

    threads = [threading.Thread(target=run_jobs, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(user_round, range(1, 121)))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert job_errors == []
    clock.advance(minutes=20)
    for job in jobs:
        job.expire_reservations()
    assert live_units_mismatch(engines) == []
    # A reservation bound to an open purchase never expires.
    assert scalar(engines, """SELECT count(*) FROM promo_redemptions r JOIN purchases p ON p.id = r.purchase_id
                              WHERE p.status IN ('CREATED', 'INVOICE_SENT') AND r.status = 'EXPIRED'""") == 0
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE status = 'EXPIRED'") > 0
    assert scalar(engines, "SELECT max(used_total - max_total_uses) FROM promo_codes") <= 0


def test_two_expiry_jobs_at_once_give_each_unit_back_exactly_once(
    engines: EngineHolder, uow_factory: SqlUnitOfWorkFactory, campaigns: CampaignService,
    redemptions: RedemptionService, clock: ManualClock,
) -> None:
    cs = [discount(campaigns, f"EXPIRY{i}", max_uses=None) for i in range(5)]
    for user in range(1, 301):
        assert redemptions.redeem(user, f"EXPIRY{user % 5}", f"e{user}").accepted
    clock.advance(minutes=16)
    jobs = [MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=25), max_batches=100)
            for _ in range(4)]
    summaries = race([j.expire_reservations for j in jobs])
    assert sum(s.expired for s in summaries) == 300
    assert scalar(engines, "SELECT sum(used_total) FROM promo_codes") == 0
    assert [c.status for c in cs] == [CampaignStatus.ACTIVE] * 5
    assert live_units_mismatch(engines) == []


def test_racing_checkouts_of_one_product_make_one_open_purchase(
    engines: EngineHolder, uow_factory: SqlUnitOfWorkFactory, campaigns: CampaignService,
    redemptions: RedemptionService, clock: ManualClock,
) -> None:
    discount(campaigns, "CHECKOUT1", max_uses=None)
    out = redemptions.redeem(5, "CHECKOUT1", "c1")
    assert out.redemption is not None
    checkout = CheckoutService(uow_factory, clock)
    rid = out.redemption.id
    purchases = race([lambda: checkout.init(5, "PREMIUM_90D", rid)] * 12)
    assert len({p.id for p in purchases}) == 1
    assert scalar(engines, "SELECT count(*) FROM purchases") == 1
    clock.advance(timedelta(minutes=20))
    assert live_units_mismatch(engines) == []
