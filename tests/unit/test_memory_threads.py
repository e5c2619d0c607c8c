"""The in-memory adapters under real threads: no over-redemption, one redemption per key, per user."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

import attrs
import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.model import LIVE_REDEMPTION_STATUSES, PromoType, RedeemResult, RedemptionStatus
from domain.redemption import RedeemOutcome, RedemptionService

DISCOUNT = CampaignSpec(campaign_name="rush", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=30)
GRANT = CampaignSpec(
    campaign_name="gift", promo_type=PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM", grant_days=7
)
T = TypeVar("T")


@pytest.fixture(autouse=True)
def eager_thread_switching() -> Iterator[None]:
    # Switch threads far more often than the default 5 ms so that interleavings actually happen.
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def _capped(spec: CampaignSpec, cap: int) -> CampaignSpec:
    return attrs.evolve(spec, max_total_uses=cap)


def all_at_once(n_threads: int, tasks: list[Callable[[], T]]) -> list[T]:
    """Run ``tasks`` on ``n_threads`` threads released together by a barrier."""
    barrier = threading.Barrier(n_threads)
    chunks = [tasks[i::n_threads] for i in range(n_threads)]

    def worker(chunk: list[Callable[[], T]]) -> list[T]:
        barrier.wait()
        return [task() for task in chunk]

    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        return [result for chunk_results in pool.map(worker, chunks) for result in chunk_results]


@pytest.mark.parametrize("spec", [DISCOUNT, GRANT], ids=["discount", "grant"])
def test_32_threads_of_distinct_users_on_a_campaign_capped_at_25_get_exactly_25_accepted(
    campaigns: CampaignService, redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory,
    spec: CampaignSpec,
) -> None:
    c = campaigns.create(_capped(spec, 25), "RUSH2026")
    users = range(1, 321)  # 10 users per thread

    def attempt(user_id: int) -> Callable[[], RedeemOutcome]:
        return lambda: redemptions.redeem(user_id, "RUSH2026", f"u{user_id}")

    outcomes = all_at_once(32, [attempt(u) for u in users])
    counts = Counter(o.result for o in outcomes)
    assert counts == {RedeemResult.ACCEPTED: 25, RedeemResult.DEPLETED: 320 - 25}
    store = uow_factory.store
    assert c.id is not None and store.campaigns[c.id].used_total == 25
    assert len(store.redemptions) == 25
    assert len({r.user_id for r in store.redemptions.values()}) == 25
    assert len(store.attempts) == 320
    if spec is GRANT:
        assert len(store.ledger) == 25 and len(store.entitlements) == 25


def test_one_key_racing_itself_from_20_threads_makes_one_redemption_and_identical_answers(
    campaigns: CampaignService, redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    c = campaigns.create(_capped(DISCOUNT, 100), "SAMEKEY1")
    outcomes = all_at_once(20, [lambda: redemptions.redeem(7, "SAMEKEY1", "tg:7:1")] * 20)
    assert {o.result for o in outcomes} == {RedeemResult.ACCEPTED}
    assert len({o.redemption for o in outcomes}) == 1
    assert sum(not o.replayed for o in outcomes) == 1
    store = uow_factory.store
    assert c.id is not None and store.campaigns[c.id].used_total == 1
    assert len(store.redemptions) == 1
    assert len(store.attempts) == 1  # replays record nothing


def test_one_user_racing_many_keys_gets_exactly_one_redemption(
    campaigns: CampaignService, redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    c = campaigns.create(DISCOUNT, "MANYKEYS")
    outcomes = all_at_once(16, [lambda k=k: redemptions.redeem(7, "MANYKEYS", f"key-{k}") for k in range(16)])
    # Each failure counts for throttling; after five of them the rest are RATE_LIMITED.
    counts = Counter(o.result for o in outcomes)
    assert counts[RedeemResult.ACCEPTED] == 1
    assert counts[RedeemResult.ALREADY_USED] + counts[RedeemResult.RATE_LIMITED] == 15
    # A failed attempt is written in its own transaction after the decision, so a concurrent request may
    # still read four failures: the throttle may let a few more through, never fewer.
    assert counts[RedeemResult.ALREADY_USED] >= 5
    assert c.id is not None and uow_factory.store.campaigns[c.id].used_total == 1


def test_redeems_racing_the_expiry_job_keep_used_total_exact(
    campaigns: CampaignService, redemptions: RedemptionService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock,
) -> None:
    c = campaigns.create(_capped(DISCOUNT, 10), "CHURN1")
    assert c.id is not None
    stop = threading.Event()

    def expire_due() -> None:
        with uow_factory() as uow:
            now = clock.now()
            for r in uow.redemptions.due_for_expiry(now, 5):
                assert r.id is not None
                if uow.redemptions.expire(r.id, now) is not None:
                    uow.promo_codes.release_capacity(r.promo_code_id, now)
            uow.commit()

    def expiry_job() -> None:
        while not stop.is_set():
            expire_due()

    job = threading.Thread(target=expiry_job)
    job.start()
    try:
        for round_ in range(5):
            all_at_once(8, [lambda u=u, r=round_: redemptions.redeem(u, "CHURN1", f"r{r}u{u}") for u in range(1, 41)])
            clock.advance(timedelta(minutes=16))
    finally:
        stop.set()
        job.join()
    store = uow_factory.store
    live = sum(1 for r in store.redemptions.values() if r.status in LIVE_REDEMPTION_STATUSES)
    assert store.campaigns[c.id].used_total == live <= 10
    for _ in range(20):  # whatever the job had not reached yet
        expire_due()
    # Every reservation expired and gave its unit back exactly once.
    assert {r.status for r in store.redemptions.values()} == {RedemptionStatus.EXPIRED}
    assert len(store.redemptions) >= 10
    assert store.campaigns[c.id].used_total == 0
