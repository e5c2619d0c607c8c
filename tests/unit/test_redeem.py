"""SPEC 4: redeem — every result reached through the check order, idempotency, attempts,
PREMIUM_GRANT in one unit of work, PERCENT_DISCOUNT reservations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest

from adapters.memory import InMemoryUnitOfWork, InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain.campaigns import CampaignService, CampaignSpec
from domain.codes import CodeHasher
from domain.errors import ValidationError
from domain.model import (
    Attempt,
    Campaign,
    CampaignStatus,
    Entitlement,
    LedgerSource,
    PausedReason,
    PromoType,
    Purchase,
    PurchaseStatus,
    RedeemResult,
    RedemptionStatus,
    TargetScope,
)
from domain.policy import PromoPolicy
from domain.redemption import RedeemOutcome, RedemptionService, snapshot_by_parts
from tests.conftest import PEPPER

DISCOUNT = CampaignSpec(campaign_name="spring", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=20)
GRANT = CampaignSpec(
    campaign_name="gift", promo_type=PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM", grant_days=30
)
HASH = CodeHasher(PEPPER).hash


# --- helpers -------------------------------------------------------------------------------------------


def create(campaigns: CampaignService, code: str, spec: CampaignSpec = DISCOUNT, **changes: Any) -> Campaign:
    return campaigns.create(attrs.evolve(spec, **changes), code)


def force_status(store: MemoryStore, campaign: Campaign, status: CampaignStatus, **changes: Any) -> None:
    """Put a campaign into a state the way a job (rollover, guard) would."""
    assert campaign.id is not None
    with store.lock:
        store.campaigns[campaign.id] = attrs.evolve(store.campaigns[campaign.id], status=status, **changes)


def attempts(store: MemoryStore) -> list[Attempt]:
    return list(store.attempts)


def fail_times(redemptions: RedemptionService, clock: ManualClock, user_id: int, n: int, step: timedelta) -> None:
    for i in range(n):
        assert redemptions.redeem(user_id, "NOSUCHCODE", f"fail-{user_id}-{clock.now().timestamp()}-{i}").result \
            is RedeemResult.INVALID
        clock.advance(step)


def add_purchase(store: MemoryStore, user_id: int, status: PurchaseStatus, now: datetime) -> Purchase:
    factory = InMemoryUnitOfWorkFactory(store)
    with factory() as uow:
        p = uow.purchases.add(Purchase(
            id=None, user_id=user_id, product_code="PREMIUM_30D", base_stars_amount=150, discount_stars_amount=0,
            final_stars_amount=150, promo_redemption_id=None, status=status,
            telegram_payment_charge_id=f"charge-{user_id}" if status is not PurchaseStatus.CREATED else None,
            created_at=now, updated_at=now,
        ))
        uow.commit()
    return p


class _Override:
    """Delegates to a real in-memory repository except for the methods given."""

    def __init__(self, inner: Any, **methods: Callable[..., Any]) -> None:
        self._inner = inner
        self.__dict__.update(methods)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def patched_factory(store: MemoryStore, patch: Callable[[InMemoryUnitOfWork], None]) -> Callable[[], Any]:
    """A unit-of-work factory over ``store`` whose units of work get ``patch`` applied (fakes, not mocks)."""

    def make() -> InMemoryUnitOfWork:
        uow = InMemoryUnitOfWork(store)
        patch(uow)
        # The domain reads checks 1-7 through ``redeem_snapshot``: compose it from the (patched) single reads.
        repos = (uow.redemptions, uow.attempts, uow.promo_codes)
        uow.redemptions = _Override(uow.redemptions, redeem_snapshot=lambda *a: snapshot_by_parts(*repos, *a))
        return uow

    return make


@pytest.fixture
def store(uow_factory: InMemoryUnitOfWorkFactory) -> MemoryStore:
    return uow_factory.store


# --- ACCEPTED ----------------------------------------------------------------------------------------


def test_discount_code_is_accepted_as_a_reservation_for_fifteen_minutes(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    c = create(campaigns, "SPRING26", max_total_uses=10)
    out = redemptions.redeem(42, " spring-26 ", "key-1")
    assert out.result is RedeemResult.ACCEPTED and out.accepted and not out.replayed
    r = out.redemption
    assert r is not None and r.id is not None
    assert r.promo_code_id == c.id and r.user_id == 42 and r.idempotency_key == "key-1"
    assert r.status is RedemptionStatus.RESERVED
    assert r.discount_percent == 20
    assert r.reserved_until == clock.now() + timedelta(minutes=15)
    assert r.purchase_id is None and r.applied_purchase_id is None
    assert r.created_at == r.updated_at == clock.now()
    assert out.campaign is not None and out.campaign.used_total == 1
    assert store.campaigns[r.promo_code_id].used_total == 1
    assert store.redemptions[r.id] == r
    # A discount grants nothing by itself.
    assert store.entitlements == {} and store.ledger == []


def test_reservation_ttl_is_configurable(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher, campaigns: CampaignService
) -> None:
    create(campaigns, "SHORT1")
    service = RedemptionService(uow_factory, clock, hasher, PromoPolicy(reservation_ttl_minutes=3))
    r = service.redeem(1, "SHORT1", "k").redemption
    assert r is not None and r.reserved_until == clock.now() + timedelta(minutes=3)


def test_discount_percent_is_a_snapshot_of_the_campaign(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    c = create(campaigns, "SNAP1", discount_percent=35)
    r = redemptions.redeem(1, "SNAP1", "k").redemption
    assert r is not None and r.discount_percent == 35
    force_status(store, c, CampaignStatus.ACTIVE, discount_percent=50)
    assert store.redemptions[r.id].discount_percent == 35  # type: ignore[index]


def test_grant_code_is_applied_with_entitlement_and_ledger_entry(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    c = create(campaigns, "GIFT30", GRANT)
    out = redemptions.redeem(7, "gift30", "grant-1")
    assert out.result is RedeemResult.ACCEPTED
    r = out.redemption
    assert r is not None
    assert r.status is RedemptionStatus.APPLIED
    assert r.discount_percent is None and r.reserved_until is None
    assert store.entitlements[7] == Entitlement(7, "PREMIUM", clock.now() + timedelta(days=30), clock.now())
    [entry] = store.ledger
    assert (entry.user_id, entry.plan_code, entry.days, entry.source) == (7, "PREMIUM", 30, LedgerSource.PROMO_GRANT)
    assert entry.promo_redemption_id == r.id and entry.purchase_id is None
    assert entry.expires_at_after == clock.now() + timedelta(days=30)
    assert store.campaigns[c.id].used_total == 1  # type: ignore[index]


def test_grant_extends_an_active_entitlement_from_its_end(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    ends = clock.now() + timedelta(days=10)
    store.entitlements[7] = Entitlement(7, "PREMIUM", ends, clock.now())
    create(campaigns, "GIFT30", GRANT)
    assert redemptions.redeem(7, "GIFT30", "k").accepted
    assert store.entitlements[7].expires_at == ends + timedelta(days=30)
    assert store.ledger[0].expires_at_after == ends + timedelta(days=30)


def test_grant_starts_from_now_when_the_old_entitlement_has_ended(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    store.entitlements[7] = Entitlement(7, "PREMIUM", clock.now() - timedelta(days=3), clock.now())
    create(campaigns, "GIFT30", GRANT)
    assert redemptions.redeem(7, "GIFT30", "k").accepted
    assert store.entitlements[7].expires_at == clock.now() + timedelta(days=30)


def test_crash_after_the_capacity_claim_leaves_nothing_behind(
    campaigns: CampaignService, clock: ManualClock, hasher: CodeHasher, store: MemoryStore
) -> None:
    c = create(campaigns, "GIFT30", GRANT, max_total_uses=5)
    assert c.id is not None

    def boom(*args: Any) -> Any:
        raise RuntimeError("database went away")

    def ledger_fails(uow: InMemoryUnitOfWork) -> None:
        uow.ledger = _Override(uow.ledger, add=boom)

    crashing = RedemptionService(patched_factory(store, ledger_fails), clock, hasher)
    with pytest.raises(RuntimeError, match="went away"):
        crashing.redeem(7, "GIFT30", "k1")
    # Capacity claim, redemption, entitlement (all written before the ledger) were rolled back together.
    assert store.campaigns[c.id].used_total == 0
    assert store.redemptions == {}
    assert store.entitlements == {} and store.ledger == []
    assert not store.lock._is_owned()  # type: ignore[attr-defined]
    # The same request succeeds once the fault is gone.
    healthy = RedemptionService(InMemoryUnitOfWorkFactory(store), clock, hasher)
    out = healthy.redeem(7, "GIFT30", "k1")
    assert out.accepted and not out.replayed
    assert store.campaigns[c.id].used_total == 1 and len(store.ledger) == 1


def test_crash_while_granting_the_entitlement_rolls_back_claim_and_redemption(
    campaigns: CampaignService, clock: ManualClock, hasher: CodeHasher, store: MemoryStore
) -> None:
    c = create(campaigns, "GIFT30", GRANT)

    def entitlements_fail(uow: InMemoryUnitOfWork) -> None:
        def put(ent: Entitlement) -> None:
            raise ConnectionError("lost")

        uow.entitlements = _Override(uow.entitlements, put=put)

    with pytest.raises(ConnectionError):
        RedemptionService(patched_factory(store, entitlements_fail), clock, hasher).redeem(7, "GIFT30", "k1")
    assert store.campaigns[c.id].used_total == 0  # type: ignore[index]
    assert store.redemptions == {} and store.entitlements == {} and store.ledger == [] and store.attempts == []


# --- IDEMPOTENCY (check 1) ------------------------------------------------------------------------------


def test_second_redeem_with_same_key_returns_the_first_redemption(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    create(campaigns, "SPRING26", max_total_uses=5)
    first = redemptions.redeem(1, "SPRING26", "k")
    clock.advance(minutes=3)
    again = redemptions.redeem(1, "spring 26", "k")  # same code, other spelling
    assert again.result is RedeemResult.ACCEPTED and again.replayed
    assert again.redemption == first.redemption
    assert store.campaigns[first.redemption.promo_code_id].used_total == 1  # type: ignore[union-attr]
    assert len(store.redemptions) == 1
    assert len(attempts(store)) == 1  # the replay wrote no attempt


def test_replay_is_returned_unchanged_whatever_happened_since(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    c = create(campaigns, "SPRING26", valid_until=clock.now() + timedelta(hours=1), max_total_uses=1)
    first = redemptions.redeem(1, "SPRING26", "k")
    assert first.accepted
    # The campaign is now used up, then paused, then past valid_until, and the user gets blocked.
    force_status(store, c, CampaignStatus.PAUSED, paused_reason=PausedReason.MANUAL)
    clock.advance(hours=2)
    fail_times(redemptions, clock, 1, 5, timedelta(seconds=1))
    assert redemptions.redeem(1, "SPRING26", "other-key").result is RedeemResult.RATE_LIMITED
    before = len(attempts(store))
    again = redemptions.redeem(1, "SPRING26", "k")
    assert again.replayed and again.result is RedeemResult.ACCEPTED
    assert again.redemption == first.redemption
    assert len(attempts(store)) == before


def test_replay_of_a_grant_grants_nothing_again(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    create(campaigns, "GIFT30", GRANT)
    first = redemptions.redeem(7, "GIFT30", "k")
    ends = store.entitlements[7].expires_at
    assert redemptions.redeem(7, "GIFT30", "k").redemption == first.redemption
    assert store.entitlements[7].expires_at == ends and len(store.ledger) == 1


@pytest.mark.parametrize(
    ("user_id", "code"),
    [(2, "SPRING26"), (1, "OTHER26"), (1, "NOSUCHCODE"), (1, "x!"), (2, "OTHER26")],
    ids=["other-user", "other-code", "unknown-code", "malformed-code", "other-user-and-code"],
)
def test_same_key_for_another_user_or_code_is_idempotency_key_reused(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore, user_id: int, code: str
) -> None:
    create(campaigns, "SPRING26")
    create(campaigns, "OTHER26")
    assert redemptions.redeem(1, "SPRING26", "k").accepted
    before = (len(attempts(store)), dict(store.campaigns), dict(store.redemptions))
    out = redemptions.redeem(user_id, code, "k")
    assert out == RedeemOutcome(RedeemResult.IDEMPOTENCY_KEY_REUSED)
    # Nothing recorded: no attempt, no redemption, no capacity.
    assert (len(attempts(store)), dict(store.campaigns), dict(store.redemptions)) == before


def test_key_reuse_is_reported_even_to_a_blocked_user(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock
) -> None:
    create(campaigns, "SPRING26")
    assert redemptions.redeem(1, "SPRING26", "k").accepted
    fail_times(redemptions, clock, 2, 5, timedelta(seconds=1))
    assert redemptions.redeem(2, "SPRING26", "fresh").result is RedeemResult.RATE_LIMITED
    assert redemptions.redeem(2, "SPRING26", "k").result is RedeemResult.IDEMPOTENCY_KEY_REUSED


def test_a_key_that_only_produced_a_failure_can_be_used_again(
    campaigns: CampaignService, redemptions: RedemptionService
) -> None:
    assert redemptions.redeem(1, "SPRING26", "k").result is RedeemResult.INVALID
    create(campaigns, "SPRING26")
    out = redemptions.redeem(1, "SPRING26", "k")
    assert out.accepted and not out.replayed


def test_replay_after_the_reservation_expired_returns_that_redemption(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock,
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    create(campaigns, "SPRING26")
    first = redemptions.redeem(1, "SPRING26", "k").redemption
    assert first is not None and first.id is not None
    clock.advance(minutes=16)
    with uow_factory() as uow:
        expired = uow.redemptions.expire(first.id, clock.now())
        uow.commit()
    again = redemptions.redeem(1, "SPRING26", "k")
    assert again.replayed and again.redemption == expired
    assert again.redemption is not None and again.redemption.id == first.id


def test_lost_idempotency_race_replays_the_winner(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, hasher: CodeHasher,
    store: MemoryStore,
) -> None:
    c = create(campaigns, "SPRING26", max_total_uses=5)
    winner = redemptions.redeem(1, "SPRING26", "k").redemption
    units = {"seen": 0}

    def stale_key_lookup(uow: InMemoryUnitOfWork) -> None:
        units["seen"] += 1
        if units["seen"] == 1:
            # The first unit of work misses the rows a concurrent request with the same key has just
            # inserted, so it gets as far as the insert and hits the unique key.
            none = lambda *a: None  # noqa: E731
            uow.redemptions = _Override(uow.redemptions, get_by_idempotency_key=none, get_live=none)

    loser = RedemptionService(patched_factory(store, stale_key_lookup), clock, hasher).redeem(1, "SPRING26", "k")
    assert loser.replayed and loser.redemption == winner
    assert store.campaigns[c.id].used_total == 1  # type: ignore[index]  # the loser's claim was rolled back
    assert len(store.redemptions) == 1
    assert len(attempts(store)) == 1  # only the winner's
    assert units["seen"] == 2  # tried again from the top, as a replay


# --- RATE_LIMITED (check 2) ---------------------------------------------------------------------------


def test_blocked_user_gets_rate_limited_even_for_a_valid_code(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    c = create(campaigns, "SPRING26")
    fail_times(redemptions, clock, 1, 5, timedelta(minutes=1))
    latest = clock.now() - timedelta(minutes=1)
    out = redemptions.redeem(1, "SPRING26", "k")
    assert out.result is RedeemResult.RATE_LIMITED
    assert out.retry_after == latest + timedelta(minutes=60)
    assert out.redemption is None
    assert store.campaigns[c.id].used_total == 0  # type: ignore[index]
    last = attempts(store)[-1]
    assert (last.result, last.normalized_code_hash, last.code_prefix) == (
        RedeemResult.RATE_LIMITED, HASH("SPRING26"), "SPRI")
    # Another user is not affected.
    assert redemptions.redeem(2, "SPRING26", "k2").accepted


# --- INVALID (check 3) ----------------------------------------------------------------------------------


def test_unknown_code_is_invalid_and_its_attempt_carries_the_hash(
    redemptions: RedemptionService, store: MemoryStore, clock: ManualClock
) -> None:
    out = redemptions.redeem(1, "no-such-code", "k")
    assert out == RedeemOutcome(RedeemResult.INVALID)
    [a] = attempts(store)
    assert a.user_id == 1 and a.result is RedeemResult.INVALID and a.attempted_at == clock.now()
    assert a.normalized_code_hash == HASH("NOSUCHCODE") and a.code_prefix == "NOSU"


@pytest.mark.parametrize(("raw", "normalized"), [("ab", "AB"), ("ABCD!", "ABCD!"), ("A" * 40, "A" * 40)])
def test_malformed_code_is_invalid_and_its_attempt_carries_the_hash_of_the_normalized_input(
    redemptions: RedemptionService, store: MemoryStore, raw: str, normalized: str
) -> None:
    assert redemptions.redeem(1, raw, "k").result is RedeemResult.INVALID
    [a] = attempts(store)
    assert a.normalized_code_hash == HASH(normalized) and a.code_prefix == normalized[:4]


@pytest.mark.parametrize("raw", ["A" * 257, "ABCD" + " " * 300, "", "  --  "])
def test_input_that_does_not_normalize_is_invalid_with_a_null_hash(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore, raw: str
) -> None:
    create(campaigns, "ABCD")  # even a too-long input that would normalize to a real code
    assert redemptions.redeem(1, raw, "k").result is RedeemResult.INVALID
    [a] = attempts(store)
    assert a.normalized_code_hash is None and a.code_prefix is None and a.result is RedeemResult.INVALID


# --- PAUSED (check 4) -------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [PausedReason.MANUAL, PausedReason.AUTO_BRUTEFORCE])
def test_paused_campaign_is_paused(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore, reason: PausedReason
) -> None:
    c = create(campaigns, "SPRING26")
    force_status(store, c, CampaignStatus.PAUSED, paused_reason=reason)
    assert redemptions.redeem(1, "SPRING26", "k").result is RedeemResult.PAUSED
    assert attempts(store)[-1].result is RedeemResult.PAUSED


def test_paused_beats_expired_and_not_yet_valid_and_depleted(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    late = create(campaigns, "LATE1", valid_until=clock.now() + timedelta(minutes=1))
    early = create(campaigns, "EARLY1", valid_from=clock.now() + timedelta(days=1))
    full = create(campaigns, "FULL1", max_total_uses=1)
    assert redemptions.redeem(9, "FULL1", "k9").accepted
    for c in (late, early, full):
        force_status(store, c, CampaignStatus.PAUSED, paused_reason=PausedReason.MANUAL)
    clock.advance(minutes=5)
    assert [redemptions.redeem(1, code, f"k-{code}").result for code in ("LATE1", "EARLY1", "FULL1")] == [
        RedeemResult.PAUSED] * 3


def test_paused_beats_already_used(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    c = create(campaigns, "SPRING26")
    assert redemptions.redeem(1, "SPRING26", "k1").accepted
    force_status(store, c, CampaignStatus.PAUSED, paused_reason=PausedReason.MANUAL)
    assert redemptions.redeem(1, "SPRING26", "k2").result is RedeemResult.PAUSED


# --- EXPIRED / NOT_APPLICABLE by validity (check 5) ---------------------------------------------------------


def test_code_is_expired_from_valid_until_on(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock
) -> None:
    until = clock.now() + timedelta(hours=1)
    create(campaigns, "LATE1", valid_until=until)
    clock.set(until - timedelta(microseconds=1))
    assert redemptions.redeem(1, "LATE1", "k1").accepted
    clock.set(until)
    assert redemptions.redeem(2, "LATE1", "k2").result is RedeemResult.EXPIRED


def test_campaign_in_status_expired_is_expired(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    c = create(campaigns, "OLD1")
    force_status(store, c, CampaignStatus.EXPIRED)
    assert redemptions.redeem(1, "OLD1", "k").result is RedeemResult.EXPIRED


def test_code_is_not_applicable_before_valid_from(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    starts = clock.now() + timedelta(days=1)
    create(campaigns, "EARLY1", valid_from=starts)
    assert redemptions.redeem(1, "EARLY1", "k1").result is RedeemResult.NOT_APPLICABLE
    assert attempts(store)[-1].result is RedeemResult.NOT_APPLICABLE
    clock.set(starts)
    assert redemptions.redeem(1, "EARLY1", "k2").accepted


def test_expired_beats_not_yet_valid(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    c = create(campaigns, "ODD1", valid_from=clock.now() + timedelta(days=1))
    force_status(store, c, CampaignStatus.EXPIRED)
    assert redemptions.redeem(1, "ODD1", "k").result is RedeemResult.EXPIRED


def test_expired_beats_depleted(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    c = create(campaigns, "FULL1", max_total_uses=1, valid_until=clock.now() + timedelta(hours=1))
    assert redemptions.redeem(9, "FULL1", "k9").accepted
    clock.advance(hours=1)
    assert redemptions.redeem(1, "FULL1", "k1").result is RedeemResult.EXPIRED
    force_status(store, c, CampaignStatus.DEPLETED)
    assert redemptions.redeem(1, "FULL1", "k2").result is RedeemResult.EXPIRED


def test_not_yet_valid_beats_depleted(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    c = create(campaigns, "EARLY1", valid_from=clock.now() + timedelta(days=1))
    force_status(store, c, CampaignStatus.DEPLETED)
    assert redemptions.redeem(1, "EARLY1", "k").result is RedeemResult.NOT_APPLICABLE


def test_expired_beats_already_used(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock
) -> None:
    create(campaigns, "LATE1", valid_until=clock.now() + timedelta(hours=1))
    assert redemptions.redeem(1, "LATE1", "k1").accepted
    clock.advance(hours=2)
    assert redemptions.redeem(1, "LATE1", "k2").result is RedeemResult.EXPIRED


# --- DEPLETED (check 6 and the lost race of check 9) --------------------------------------------------------


def test_capped_campaign_is_depleted_after_its_last_use(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    c = create(campaigns, "FEW1", max_total_uses=2)
    assert redemptions.redeem(1, "FEW1", "k1").accepted
    assert redemptions.redeem(2, "FEW1", "k2").accepted
    assert redemptions.redeem(3, "FEW1", "k3").result is RedeemResult.DEPLETED
    assert store.campaigns[c.id].used_total == 2  # type: ignore[index]
    assert attempts(store)[-1].result is RedeemResult.DEPLETED


def test_campaign_in_status_depleted_is_depleted_even_with_capacity_left(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    c = create(campaigns, "DRY1", max_total_uses=100)
    force_status(store, c, CampaignStatus.DEPLETED)
    assert redemptions.redeem(1, "DRY1", "k").result is RedeemResult.DEPLETED


def test_depleted_beats_already_used(
    campaigns: CampaignService, redemptions: RedemptionService
) -> None:
    create(campaigns, "ONE1", max_total_uses=1)
    assert redemptions.redeem(1, "ONE1", "k1").accepted
    assert redemptions.redeem(1, "ONE1", "k2").result is RedeemResult.DEPLETED


@pytest.mark.parametrize("concurrent_change", ["used-up", "paused"])
def test_losing_the_capacity_race_is_depleted(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, hasher: CodeHasher,
    store: MemoryStore, concurrent_change: str,
) -> None:
    c = create(campaigns, "RACE1", max_total_uses=1)
    if concurrent_change == "used-up":
        assert redemptions.redeem(9, "RACE1", "k9").accepted
    else:
        force_status(store, c, CampaignStatus.PAUSED, paused_reason=PausedReason.MANUAL)

    def stale_campaign_read(uow: InMemoryUnitOfWork) -> None:
        real = uow.promo_codes

        def get_by_hashes(hashes: Any) -> Campaign | None:
            # What this request read before the other writer committed.
            found = real.get_by_hashes(hashes)
            return attrs.evolve(found, status=CampaignStatus.ACTIVE, used_total=0) if found else None

        uow.promo_codes = _Override(real, get_by_hashes=get_by_hashes)

    out = RedemptionService(patched_factory(store, stale_campaign_read), clock, hasher).redeem(1, "RACE1", "k1")
    assert out.result is RedeemResult.DEPLETED
    assert store.campaigns[c.id].used_total == (1 if concurrent_change == "used-up" else 0)  # type: ignore[index]
    assert [r.user_id for r in store.redemptions.values()] == ([9] if concurrent_change == "used-up" else [])
    assert attempts(store)[-1].result is RedeemResult.DEPLETED


# --- ALREADY_USED (check 7) -------------------------------------------------------------------------------


def test_second_redemption_by_the_same_user_with_a_new_key_is_already_used(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    c = create(campaigns, "SPRING26")
    assert redemptions.redeem(1, "SPRING26", "k1").accepted
    assert redemptions.redeem(1, "spring-26", "k2").result is RedeemResult.ALREADY_USED
    assert store.campaigns[c.id].used_total == 1  # type: ignore[index]
    assert attempts(store)[-1].result is RedeemResult.ALREADY_USED


@pytest.mark.parametrize("status", [RedemptionStatus.APPLIED, RedemptionStatus.REVOKED])
def test_applied_or_revoked_redemption_still_counts_as_used(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore, status: RedemptionStatus
) -> None:
    create(campaigns, "SPRING26")
    r = redemptions.redeem(1, "SPRING26", "k1").redemption
    assert r is not None and r.id is not None
    store.redemptions[r.id] = attrs.evolve(r, status=status)
    assert redemptions.redeem(1, "SPRING26", "k2").result is RedeemResult.ALREADY_USED


def test_user_may_redeem_again_once_the_reservation_expired(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock,
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    c = create(campaigns, "SPRING26", max_total_uses=1)
    first = redemptions.redeem(1, "SPRING26", "k1").redemption
    assert first is not None and first.id is not None and c.id is not None
    clock.advance(minutes=15)
    with uow_factory() as uow:  # what the expiry job does
        assert uow.redemptions.expire(first.id, clock.now()) is not None
        uow.promo_codes.release_capacity(c.id, clock.now())
        uow.commit()
    second = redemptions.redeem(1, "SPRING26", "k2")
    assert second.accepted and second.redemption is not None and second.redemption.id != first.id


def test_already_used_beats_first_purchase_only(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    create(campaigns, "WELCOME1", target_scope=TargetScope.FIRST_PURCHASE_ONLY)
    assert redemptions.redeem(1, "WELCOME1", "k1").accepted
    add_purchase(store, 1, PurchaseStatus.PAID, clock.now())
    assert redemptions.redeem(1, "WELCOME1", "k2").result is RedeemResult.ALREADY_USED


def test_lost_race_for_the_live_redemption_is_already_used_and_the_claim_is_undone(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, hasher: CodeHasher,
    store: MemoryStore,
) -> None:
    c = create(campaigns, "SPRING26", max_total_uses=5)
    assert redemptions.redeem(1, "SPRING26", "k1").accepted

    def stale_live_read(uow: InMemoryUnitOfWork) -> None:
        uow.redemptions = _Override(uow.redemptions, get_live=lambda *a: None)

    out = RedemptionService(patched_factory(store, stale_live_read), clock, hasher).redeem(1, "SPRING26", "k2")
    assert out.result is RedeemResult.ALREADY_USED
    assert store.campaigns[c.id].used_total == 1  # type: ignore[index]
    assert len(store.redemptions) == 1
    # The failed attempt survives the rolled-back redemption transaction.
    assert attempts(store)[-1].result is RedeemResult.ALREADY_USED


# --- NOT_APPLICABLE by target scope (check 8) ---------------------------------------------------------------


@pytest.mark.parametrize("status", [PurchaseStatus.PAID, PurchaseStatus.REFUNDED])
def test_first_purchase_only_code_is_not_applicable_after_a_purchase(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore,
    status: PurchaseStatus,
) -> None:
    c = create(campaigns, "WELCOME1", target_scope=TargetScope.FIRST_PURCHASE_ONLY)
    add_purchase(store, 1, status, clock.now())
    assert redemptions.redeem(1, "WELCOME1", "k").result is RedeemResult.NOT_APPLICABLE
    assert store.campaigns[c.id].used_total == 0  # type: ignore[index]
    assert attempts(store)[-1].result is RedeemResult.NOT_APPLICABLE


@pytest.mark.parametrize("status", [PurchaseStatus.CREATED, PurchaseStatus.INVOICE_SENT, PurchaseStatus.FAILED])
def test_first_purchase_only_code_is_fine_without_a_paid_purchase(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore,
    status: PurchaseStatus,
) -> None:
    create(campaigns, "WELCOME1", target_scope=TargetScope.FIRST_PURCHASE_ONLY)
    add_purchase(store, 1, status, clock.now())
    assert redemptions.redeem(1, "WELCOME1", "k").accepted


def test_another_users_purchase_does_not_matter_and_scope_all_ignores_purchases(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    create(campaigns, "WELCOME1", target_scope=TargetScope.FIRST_PURCHASE_ONLY)
    create(campaigns, "EVERYONE1")
    add_purchase(store, 2, PurchaseStatus.PAID, clock.now())
    assert redemptions.redeem(1, "WELCOME1", "k1").accepted
    assert redemptions.redeem(2, "EVERYONE1", "k2").accepted


# --- attempts ------------------------------------------------------------------------------------------------


def test_every_call_except_replay_and_key_reuse_writes_exactly_one_attempt(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    create(campaigns, "SPRING26", max_total_uses=2)
    paused = create(campaigns, "PAUSED1")
    force_status(store, paused, CampaignStatus.PAUSED, paused_reason=PausedReason.MANUAL)
    calls: list[tuple[int, str, str, RedeemResult, int]] = [
        (1, "SPRING26", "a", RedeemResult.ACCEPTED, 1),
        (1, "SPRING26", "a", RedeemResult.ACCEPTED, 0),  # replay
        (2, "SPRING26", "a", RedeemResult.IDEMPOTENCY_KEY_REUSED, 0),
        (1, "SPRING26", "b", RedeemResult.ALREADY_USED, 1),
        (2, "PAUSED1", "c", RedeemResult.PAUSED, 1),
        (2, "NOPE", "d", RedeemResult.INVALID, 1),
        (3, "SPRING26", "e", RedeemResult.ACCEPTED, 1),
        (4, "SPRING26", "f", RedeemResult.DEPLETED, 1),
    ]
    for user_id, code, key, expected, written in calls:
        before = len(attempts(store))
        assert redemptions.redeem(user_id, code, key).result is expected
        assert len(attempts(store)) - before == written, (code, key, expected)
    assert [a.result for a in attempts(store)] == [
        RedeemResult.ACCEPTED, RedeemResult.ALREADY_USED, RedeemResult.PAUSED, RedeemResult.INVALID,
        RedeemResult.ACCEPTED, RedeemResult.DEPLETED,
    ]
    assert all(a.attempted_at == clock.now() for a in attempts(store))


def test_no_stored_row_holds_the_plaintext_code(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    create(campaigns, "SECRETCODE77", GRANT)
    redemptions.redeem(1, "secret-code-77", "k1")
    redemptions.redeem(1, "SECRETCODE77", "k2")
    redemptions.redeem(2, "SECRETCODE78", "k3")
    dump = repr((store.campaigns, store.redemptions, store.attempts, store.entitlements, store.ledger))
    assert "SECRETCODE7" not in dump.upper().replace("-", "")


# --- input validation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "code", "key", "fields"),
    [
        (0, "ABCD", "k", {"user_id"}),
        (-1, "ABCD", "k", {"user_id"}),
        (2**63, "ABCD", "k", {"user_id"}),
        (True, "ABCD", "k", {"user_id"}),
        ("5", "ABCD", "k", {"user_id"}),
        (1, None, "k", {"code"}),
        (1, 1234, "k", {"code"}),
        (1, "ABCD", "", {"idempotency_key"}),
        (1, "ABCD", "k" * 129, {"idempotency_key"}),
        (1, "ABCD", "has space", {"idempotency_key"}),
        (1, "ABCD", "ümlaut", {"idempotency_key"}),
        (1, "ABCD", "k\n", {"idempotency_key"}),
        (1, "ABCD", None, {"idempotency_key"}),
        (0, None, "", {"user_id", "code", "idempotency_key"}),
    ],
)
def test_bad_input_is_a_validation_error_naming_each_field_and_records_nothing(
    redemptions: RedemptionService, store: MemoryStore, user_id: Any, code: Any, key: Any, fields: set[str]
) -> None:
    with pytest.raises(ValidationError) as exc:
        redemptions.redeem(user_id, code, key)
    assert {e["field"] for e in exc.value.errors} == fields
    assert store.attempts == []


@pytest.mark.parametrize("key", ["k" * 128, "tg:123456:789", "A-z_0.9:x", "-"])
def test_idempotency_keys_of_the_allowed_alphabet_are_fine(
    campaigns: CampaignService, redemptions: RedemptionService, key: str
) -> None:
    create(campaigns, "SPRING26")
    assert redemptions.redeem(2**63 - 1, "SPRING26", key).accepted
