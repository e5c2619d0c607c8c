"""The in-memory adapters under real threads (SPEC 13's races, on the adapter tests and other projects use):
no over-redemption at either level, one redemption per key, at most ``per_user_limit`` per user and campaign."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from typing import TypeVar

import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain.campaigns import CampaignService, CampaignSpec
from domain.maintenance import MaintenanceService
from domain.model import LIVE_REDEMPTION_STATUSES, PromoType, RedeemResult, RedemptionStatus
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedeemOutcome, RedemptionService
from tests.unit.promo_setup import add_codes, create

DISCOUNT = CampaignSpec(name="rush", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=30)
GRANT = CampaignSpec(name="gift", promo_type=PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM", grant_days=7)
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


def all_at_once(n_threads: int, tasks: list[Callable[[], T]]) -> list[T]:
    """Run ``tasks`` on ``n_threads`` threads released together by a barrier."""
    barrier = threading.Barrier(n_threads)
    chunks = [tasks[i::n_threads] for i in range(n_threads)]

    def worker(chunk: list[Callable[[], T]]) -> list[T]:
        barrier.wait()
        return [task() for task in chunk]

    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        return [result for chunk_results in pool.map(worker, chunks) for result in chunk_results]


def assert_counts_match_redemptions(store: MemoryStore) -> None:
    """SPEC 4: each code's and each campaign's ``used_total`` is its RESERVED + APPLIED + REVOKED redemptions."""
    live = [r for r in store.redemptions.values() if r.status in LIVE_REDEMPTION_STATUSES]
    by_code, by_campaign = Counter(r.promo_code_id for r in live), Counter(r.campaign_id for r in live)
    assert {i: c.used_total for i, c in store.codes.items()} == {i: by_code[i] for i in store.codes}
    assert {i: c.used_total for i, c in store.campaigns.items()} == {i: by_campaign[i] for i in store.campaigns}


@pytest.mark.parametrize("spec", [DISCOUNT, GRANT], ids=["discount", "grant"])
@pytest.mark.parametrize("capped_by", ["code cap", "campaign budget"])
def test_32_threads_of_distinct_users_on_a_code_capped_at_25_get_exactly_25_accepted(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore, spec: CampaignSpec,
    capped_by: str,
) -> None:
    if capped_by == "code cap":
        campaign, code = create(campaigns, "RUSH2026", spec, code_cap=25)
    else:
        campaign, code = create(campaigns, "RUSH2026", spec, max_total_uses=25)
    users = range(1, 321)  # 10 users per thread

    def attempt(user_id: int) -> Callable[[], RedeemOutcome]:
        return lambda: redemptions.redeem(user_id, "RUSH2026", f"u{user_id}")

    outcomes = all_at_once(32, [attempt(u) for u in users])
    counts = Counter(o.result for o in outcomes)
    assert counts == {RedeemResult.ACCEPTED: 25, RedeemResult.DEPLETED: 320 - 25}
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 25  # type: ignore[index]
    assert len(store.redemptions) == 25
    assert len({r.user_id for r in store.redemptions.values()}) == 25
    assert len(store.attempts) == 320
    assert_counts_match_redemptions(store)
    if spec is GRANT:
        assert len(store.ledger) == 25 and len(store.entitlements) == 25


def test_50_users_racing_50_codes_of_a_campaign_with_a_budget_of_10_get_exactly_10(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    plain = [f"GIVEAWAY{i:02d}" for i in range(50)]
    campaign, _ = create(campaigns, plain[0], max_total_uses=10, code_cap=1)
    add_codes(codes, campaign, *plain[1:], cap=1)
    outcomes = all_at_once(50, [partial(redemptions.redeem, u + 1, plain[u], f"u{u}") for u in range(50)])
    assert Counter(o.result for o in outcomes) == {RedeemResult.ACCEPTED: 10, RedeemResult.DEPLETED: 40}
    assert store.campaigns[campaign.id].used_total == 10  # type: ignore[index]
    assert sum(c.used_total for c in store.codes.values()) == 10
    assert len(store.redemptions) == 10
    assert_counts_match_redemptions(store)


@pytest.mark.parametrize("limit", [1, 3])
def test_one_user_racing_20_codes_of_a_campaign_gets_exactly_per_user_limit(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore, limit: int
) -> None:
    plain = [f"MINE{i:02d}XY" for i in range(20)]
    campaign, _ = create(campaigns, plain[0], per_user_limit=limit)
    add_codes(codes, campaign, *plain[1:])
    outcomes = all_at_once(20, [partial(redemptions.redeem, 7, c, f"key-{c}") for c in plain])
    counts = Counter(o.result for o in outcomes)
    assert counts[RedeemResult.ACCEPTED] == limit
    # The rest are ALREADY_USED, or RATE_LIMITED once five of those failures are recorded.
    assert counts[RedeemResult.ALREADY_USED] + counts[RedeemResult.RATE_LIMITED] == 20 - limit
    assert counts[RedeemResult.ALREADY_USED] >= 5
    held = [r for r in store.redemptions.values() if r.user_id == 7]
    assert len(held) == limit and sorted(r.user_slot for r in held) == list(range(1, limit + 1))
    assert store.campaigns[campaign.id].used_total == limit  # type: ignore[index]
    assert_counts_match_redemptions(store)


def test_one_key_racing_itself_from_20_threads_makes_one_redemption_and_identical_answers(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "SAMEKEY1", DISCOUNT, max_total_uses=100, per_user_limit=5)
    outcomes = all_at_once(20, [lambda: redemptions.redeem(7, "SAMEKEY1", "tg:7:1")] * 20)
    assert {o.result for o in outcomes} == {RedeemResult.ACCEPTED}
    assert len({o.redemption for o in outcomes}) == 1
    assert sum(not o.replayed for o in outcomes) == 1
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]
    assert len(store.redemptions) == 1
    assert len(store.attempts) == 1  # replays record nothing


def test_one_user_racing_many_keys_gets_exactly_one_redemption(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "MANYKEYS", DISCOUNT, per_user_limit=5)
    outcomes = all_at_once(16, [partial(redemptions.redeem, 7, "MANYKEYS", f"key-{k}") for k in range(16)])
    # Each failure counts for throttling; after five of them the rest are RATE_LIMITED.
    counts = Counter(o.result for o in outcomes)
    assert counts[RedeemResult.ACCEPTED] == 1
    assert counts[RedeemResult.ALREADY_USED] + counts[RedeemResult.RATE_LIMITED] == 15
    # A failed attempt is written in its own transaction after the decision, so a concurrent request may
    # still read four failures: the throttle may let a few more through, never fewer.
    assert counts[RedeemResult.ALREADY_USED] >= 5
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]


def test_redeems_racing_the_expiry_job_keep_used_total_exact_at_both_levels(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService,
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, store: MemoryStore,
) -> None:
    campaign, _ = create(campaigns, "CHURN1", DISCOUNT, max_total_uses=10, code_cap=6)
    add_codes(codes, campaign, "CHURN2", cap=6)
    job = MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=5))
    stop = threading.Event()

    def expiry_job() -> None:
        while not stop.is_set():
            job.expire_reservations()

    runner = threading.Thread(target=expiry_job)
    runner.start()
    try:
        for round_ in range(5):
            all_at_once(8, [partial(redemptions.redeem, u, f"CHURN{u % 2 + 1}", f"r{round_}u{u}")
                            for u in range(1, 41)])
            clock.advance(timedelta(minutes=16))
    finally:
        stop.set()
        runner.join()
    assert_counts_match_redemptions(store)
    assert store.campaigns[campaign.id].used_total <= 10  # type: ignore[index]
    assert all(c.used_total <= 6 for c in store.codes.values())
    job.expire_reservations()  # whatever the job had not reached yet
    # Every reservation expired and gave its unit back to its code and its campaign exactly once.
    assert {r.status for r in store.redemptions.values()} == {RedemptionStatus.EXPIRED}
    assert len(store.redemptions) >= 10
    assert store.campaigns[campaign.id].used_total == 0  # type: ignore[index]
    assert {c.used_total for c in store.codes.values()} == {0}
