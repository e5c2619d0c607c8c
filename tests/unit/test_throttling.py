"""SPEC 4 throttling: F >= 5 failures (not ACCEPTED, not RATE_LIMITED) in the trailing 24 h block the
user until 60 minutes after the latest of them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService
from domain.codes import CodeHasher
from domain.model import Attempt, CampaignStatus, RedeemResult
from domain.policy import PromoPolicy
from domain.redemption import RedemptionService
from domain.throttling import blocked_until
from tests.unit.promo_setup import ACTOR, create

USER = 1


class Keys:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"key-{self.n}"


@pytest.fixture
def key() -> Keys:
    return Keys()


def fail(redemptions: RedemptionService, key: Keys, user_id: int = USER) -> None:
    assert redemptions.redeem(user_id, "NOSUCHCODE", key()).result is RedeemResult.INVALID


def probe(redemptions: RedemptionService, campaigns: CampaignService, key: Keys, user_id: int = USER) -> RedeemResult:
    """Redeem a fresh valid code: ACCEPTED when not blocked (and ACCEPTED never counts as a failure)."""
    code = f"PROBE{key.n + 1}X"
    create(campaigns, code)
    return redemptions.redeem(user_id, code, key()).result


def add_attempts(uow_factory: InMemoryUnitOfWorkFactory, result: RedeemResult, at: list[datetime]) -> None:
    with uow_factory() as uow:
        for t in at:
            uow.attempts.add(Attempt(user_id=USER, normalized_code_hash=None, code_prefix=None, result=result,
                                     attempted_at=t))
        uow.commit()


def test_four_failures_do_not_block(
    redemptions: RedemptionService, campaigns: CampaignService, key: Keys
) -> None:
    for _ in range(4):
        fail(redemptions, key)
    assert probe(redemptions, campaigns, key) is RedeemResult.ACCEPTED


def test_fifth_failure_blocks_for_sixty_minutes_after_the_latest_failure(
    redemptions: RedemptionService, campaigns: CampaignService, clock: ManualClock, key: Keys
) -> None:
    for _ in range(5):
        fail(redemptions, key)
        clock.advance(minutes=2)
    latest = clock.now() - timedelta(minutes=2)
    out = redemptions.redeem(USER, "NOSUCHCODE", key())
    assert out.result is RedeemResult.RATE_LIMITED
    assert out.retry_after == latest + timedelta(minutes=60)
    clock.set(latest + timedelta(minutes=60) - timedelta(microseconds=1))
    assert probe(redemptions, campaigns, key) is RedeemResult.RATE_LIMITED
    clock.set(latest + timedelta(minutes=60))
    assert probe(redemptions, campaigns, key) is RedeemResult.ACCEPTED


def test_rate_limited_attempts_neither_count_nor_extend_the_block(
    redemptions: RedemptionService, campaigns: CampaignService, clock: ManualClock, key: Keys,
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    for _ in range(5):
        fail(redemptions, key)
    ends = clock.now() + timedelta(minutes=60)
    for _ in range(10):
        clock.advance(minutes=5)
        out = redemptions.redeem(USER, "NOSUCHCODE", key())
        assert (out.result, out.retry_after) == (RedeemResult.RATE_LIMITED, ends)
    # Every blocked call is recorded as RATE_LIMITED ...
    assert [a.result for a in uow_factory.store.attempts].count(RedeemResult.RATE_LIMITED) == 10
    # ... and the block still ends on time.
    clock.set(ends)
    assert probe(redemptions, campaigns, key) is RedeemResult.ACCEPTED


def test_accepted_attempts_do_not_count(
    redemptions: RedemptionService, campaigns: CampaignService, key: Keys
) -> None:
    for _ in range(4):
        fail(redemptions, key)
    for _ in range(5):
        assert probe(redemptions, campaigns, key) is RedeemResult.ACCEPTED
    fail(redemptions, key)  # the fifth failure
    assert probe(redemptions, campaigns, key) is RedeemResult.RATE_LIMITED


@pytest.mark.parametrize(
    "result",
    [RedeemResult.PAUSED, RedeemResult.EXPIRED, RedeemResult.NOT_APPLICABLE, RedeemResult.DEPLETED,
     RedeemResult.ALREADY_USED, RedeemResult.INVALID],
)
def test_every_non_accepted_result_counts_as_a_failure(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, policy: PromoPolicy, result: RedeemResult
) -> None:
    add_attempts(uow_factory, result, [clock.now()] * 5)
    with uow_factory() as uow:
        assert blocked_until(uow.attempts, USER, clock.now(), policy) == clock.now() + timedelta(minutes=60)


def test_failures_from_every_result_add_up_through_redeem(
    redemptions: RedemptionService, campaigns: CampaignService, key: Keys, uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    paused, _ = create(campaigns, "PAUSED1")
    assert paused.id is not None
    campaigns.set_status(paused.id, CampaignStatus.PAUSED, actor=ACTOR)
    create(campaigns, "USED1")
    assert redemptions.redeem(USER, "USED1", key()).accepted
    assert redemptions.redeem(USER, "PAUSED1", key()).result is RedeemResult.PAUSED
    assert redemptions.redeem(USER, "USED1", key()).result is RedeemResult.ALREADY_USED
    assert redemptions.redeem(USER, "ab", key()).result is RedeemResult.INVALID
    assert redemptions.redeem(USER, "A" * 300, key()).result is RedeemResult.INVALID
    assert probe(redemptions, campaigns, key) is RedeemResult.ACCEPTED  # 4 failures so far
    assert redemptions.redeem(USER, "PAUSED1", key()).result is RedeemResult.PAUSED
    assert probe(redemptions, campaigns, key) is RedeemResult.RATE_LIMITED


def test_failures_older_than_the_window_do_not_count(
    redemptions: RedemptionService, campaigns: CampaignService, clock: ManualClock, key: Keys
) -> None:
    t0 = clock.now()
    for _ in range(4):
        fail(redemptions, key)
    clock.set(t0 + timedelta(hours=24))
    fail(redemptions, key)  # the 4 at t0 are exactly 24 h old: still inside the trailing window
    assert probe(redemptions, campaigns, key) is RedeemResult.RATE_LIMITED
    clock.set(t0 + timedelta(hours=24, microseconds=1))  # now they have left the window
    assert probe(redemptions, campaigns, key) is RedeemResult.ACCEPTED


def test_five_failures_spread_over_a_day_still_block(
    redemptions: RedemptionService, campaigns: CampaignService, clock: ManualClock, key: Keys
) -> None:
    for _ in range(5):
        fail(redemptions, key)
        clock.advance(hours=5)
    # 25 h later: the first failure has left the window, the latest is 5 h old -> not blocked ...
    assert probe(redemptions, campaigns, key) is RedeemResult.ACCEPTED
    # ... and one more failure makes five inside the trailing 24 h again.
    fail(redemptions, key)
    assert probe(redemptions, campaigns, key) is RedeemResult.RATE_LIMITED


def test_block_is_per_user(
    redemptions: RedemptionService, campaigns: CampaignService, key: Keys
) -> None:
    for _ in range(5):
        fail(redemptions, key, user_id=1)
    assert probe(redemptions, campaigns, key, user_id=1) is RedeemResult.RATE_LIMITED
    assert probe(redemptions, campaigns, key, user_id=2) is RedeemResult.ACCEPTED


def test_limits_are_configurable(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher,
    campaigns: CampaignService, key: Keys,
) -> None:
    policy = PromoPolicy(fail_limit=2, fail_window_hours=1, block_minutes=10)
    redemptions = RedemptionService(uow_factory, clock, hasher, policy)
    fail(redemptions, key)
    clock.advance(minutes=61)
    fail(redemptions, key)  # the first one is out of the 1 h window
    assert probe(redemptions, campaigns, key) is RedeemResult.ACCEPTED
    fail(redemptions, key)
    latest = clock.now()
    out = redemptions.redeem(USER, "NOSUCHCODE", key())
    assert (out.result, out.retry_after) == (RedeemResult.RATE_LIMITED, latest + timedelta(minutes=10))
    clock.advance(minutes=10)
    assert probe(redemptions, campaigns, key) is RedeemResult.ACCEPTED


def test_blocked_until_reads_only_the_users_failures(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, policy: PromoPolicy
) -> None:
    now = clock.now()
    add_attempts(uow_factory, RedeemResult.RATE_LIMITED, [now] * 20)
    add_attempts(uow_factory, RedeemResult.ACCEPTED, [now] * 20)
    with uow_factory() as uow:
        assert blocked_until(uow.attempts, USER, now, policy) is None
        uow.attempts.add(Attempt(user_id=2, normalized_code_hash=None, code_prefix=None,
                                 result=RedeemResult.INVALID, attempted_at=now))
        assert blocked_until(uow.attempts, USER, now, policy) is None
    add_attempts(uow_factory, RedeemResult.INVALID, [now - timedelta(minutes=m) for m in (50, 40, 30, 20, 10)])
    with uow_factory() as uow:
        assert blocked_until(uow.attempts, USER, now, policy) == now + timedelta(minutes=50)
