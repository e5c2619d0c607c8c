"""SPEC 4: redeem — every result reached through the check order at both levels (the code and its campaign),
idempotency, attempts, PREMIUM_GRANT in one unit of work, PERCENT_DISCOUNT and STARS_DISCOUNT reservations.

The campaign's budget and per-user limit across its codes: test_campaign_limits.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest

from adapters.memory import InMemoryUnitOfWork, InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain.campaigns import CampaignService
from domain.codes import CodeHasher
from domain.errors import ValidationError
from domain.model import (
    Attempt,
    CampaignChanges,
    CampaignStatus,
    Entitlement,
    LedgerSource,
    Purchase,
    PurchaseStatus,
    RedeemResult,
    RedeemSnapshot,
    RedemptionStatus,
    TargetScope,
)
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedeemOutcome, RedemptionService
from tests.conftest import PEPPER
from tests.unit.promo_setup import ACTOR, GRANT, STARS, add_codes, create, force_campaign, force_code

HASH = CodeHasher(PEPPER).hash
ACTIVE, PAUSED, EXPIRED, DEPLETED = (CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.EXPIRED,
                                     CampaignStatus.DEPLETED)


# --- helpers -------------------------------------------------------------------------------------------


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
        return uow

    return make


def stale_reads(store: MemoryStore, change: Callable[[RedeemSnapshot], RedeemSnapshot]) -> Callable[[], Any]:
    """A unit-of-work factory over ``store`` whose first unit of work reads checks 1-7 as ``change`` makes them:
    what a request read before a concurrent writer committed. Its writes meet the real rows."""
    made = {"units": 0}

    def stale(uow: InMemoryUnitOfWork) -> None:
        made["units"] += 1
        if made["units"] == 1:
            real = uow.redemptions
            uow.redemptions = _Override(real, redeem_snapshot=lambda *a: change(real.redeem_snapshot(*a)))

    return patched_factory(store, stale)


# --- ACCEPTED ----------------------------------------------------------------------------------------


def test_discount_code_is_accepted_as_a_reservation_for_fifteen_minutes(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "SPRING26", max_total_uses=10, code_cap=5)
    out = redemptions.redeem(42, " spring-26 ", "key-1")
    assert out.result is RedeemResult.ACCEPTED and out.accepted and not out.replayed
    r = out.redemption
    assert r is not None and r.id is not None
    assert (r.promo_code_id, r.campaign_id, r.user_id, r.idempotency_key) == (code.id, campaign.id, 42, "key-1")
    assert r.status is RedemptionStatus.RESERVED and r.user_slot == 1
    assert r.discount_percent == 20 and r.discount_stars is None
    assert r.reserved_until == clock.now() + timedelta(minutes=15)
    assert r.purchase_id is None and r.applied_purchase_id is None
    assert r.created_at == r.updated_at == clock.now()
    # The outcome carries the code and the campaign as the claim left them: one unit taken from each.
    assert out.code is not None and out.code.id == code.id and out.code.used_total == 1
    assert out.campaign is not None and out.campaign.id == campaign.id and out.campaign.used_total == 1
    assert store.codes[code.id].used_total == 1  # type: ignore[index]
    assert store.campaigns[campaign.id].used_total == 1  # type: ignore[index]
    assert store.redemptions[r.id] == r
    # A discount grants nothing by itself.
    assert store.entitlements == {} and store.ledger == []


def test_stars_discount_code_is_a_reservation_carrying_the_stars_off(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "STARS40", STARS, discount_stars=40)
    out = redemptions.redeem(5, "stars40", "k")
    r = out.redemption
    assert out.accepted and r is not None and r.id is not None
    assert r.status is RedemptionStatus.RESERVED and r.is_reservation
    assert (r.discount_stars, r.discount_percent) == (40, None)
    assert r.reserved_until == clock.now() + timedelta(minutes=15)
    # A snapshot: the reservation keeps its Stars whatever the campaign row says later.
    force_campaign(store, campaign, ACTIVE, discount_stars=99)
    assert store.redemptions[r.id].discount_stars == 40
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
    campaign, _ = create(campaigns, "SNAP1", discount_percent=35)
    r = redemptions.redeem(1, "SNAP1", "k").redemption
    assert r is not None and r.id is not None and r.discount_percent == 35
    force_campaign(store, campaign, ACTIVE, discount_percent=50)
    assert store.redemptions[r.id].discount_percent == 35


def test_grant_code_is_applied_with_entitlement_and_ledger_entry(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "GIFT30", GRANT)
    out = redemptions.redeem(7, "gift30", "grant-1")
    assert out.result is RedeemResult.ACCEPTED
    r = out.redemption
    assert r is not None
    assert r.status is RedemptionStatus.APPLIED and (r.promo_code_id, r.campaign_id) == (code.id, campaign.id)
    assert r.discount_percent is None and r.discount_stars is None and r.reserved_until is None
    assert store.entitlements[7] == Entitlement(7, "PREMIUM", clock.now() + timedelta(days=30), clock.now())
    [entry] = store.ledger
    assert (entry.user_id, entry.plan_code, entry.days, entry.source) == (7, "PREMIUM", 30, LedgerSource.PROMO_GRANT)
    assert entry.promo_redemption_id == r.id and entry.purchase_id is None
    assert entry.expires_at_after == clock.now() + timedelta(days=30)
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]


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
    campaign, code = create(campaigns, "GIFT30", GRANT, max_total_uses=5, code_cap=5)

    def claim_then_fail(uow: InMemoryUnitOfWork) -> None:
        real = uow.promo_codes

        def claim_capacity(*args: Any) -> Any:
            real.claim_capacity(*args)
            raise RuntimeError("database went away")

        uow.promo_codes = _Override(real, claim_capacity=claim_capacity)

    crashing = RedemptionService(patched_factory(store, claim_then_fail), clock, hasher)
    with pytest.raises(RuntimeError, match="went away"):
        crashing.redeem(7, "GIFT30", "k1")
    # The claim on both levels, the redemption, the entitlement and the ledger entry were rolled back together.
    assert store.codes[code.id].used_total == 0  # type: ignore[index]
    assert store.campaigns[campaign.id].used_total == 0  # type: ignore[index]
    assert store.redemptions == {}
    assert store.entitlements == {} and store.ledger == []
    assert not store.lock._is_owned()  # type: ignore[attr-defined]
    # The same request succeeds once the fault is gone.
    healthy = RedemptionService(InMemoryUnitOfWorkFactory(store), clock, hasher)
    out = healthy.redeem(7, "GIFT30", "k1")
    assert out.accepted and not out.replayed
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]
    assert len(store.ledger) == 1


def test_crash_while_granting_the_entitlement_rolls_back_redemption_and_claim(
    campaigns: CampaignService, clock: ManualClock, hasher: CodeHasher, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "GIFT30", GRANT)

    def entitlements_fail(uow: InMemoryUnitOfWork) -> None:
        def put(ent: Entitlement) -> None:
            raise ConnectionError("lost")

        uow.entitlements = _Override(uow.entitlements, put=put)

    with pytest.raises(ConnectionError):
        RedemptionService(patched_factory(store, entitlements_fail), clock, hasher).redeem(7, "GIFT30", "k1")
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 0  # type: ignore[index]
    assert store.redemptions == {} and store.entitlements == {} and store.ledger == [] and store.attempts == []


# --- IDEMPOTENCY (check 1) ------------------------------------------------------------------------------


def test_second_redeem_with_same_key_returns_the_first_redemption(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "SPRING26", max_total_uses=5)
    first = redemptions.redeem(1, "SPRING26", "k")
    clock.advance(minutes=3)
    again = redemptions.redeem(1, "spring 26", "k")  # same code, other spelling
    assert again.result is RedeemResult.ACCEPTED and again.replayed
    assert again.redemption == first.redemption
    assert again.code is not None and again.code.id == code.id
    assert again.campaign is not None and again.campaign.id == campaign.id
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]
    assert len(store.redemptions) == 1
    assert len(attempts(store)) == 1  # the replay wrote no attempt


@pytest.mark.parametrize(
    "since",
    ["code paused", "campaign paused", "code depleted", "campaign depleted", "code expired", "campaign expired",
     "past valid_until", "budget used up", "user blocked"],
)
def test_replay_is_returned_unchanged_whatever_happened_since_at_either_level(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, clock: ManualClock,
    store: MemoryStore, since: str,
) -> None:
    campaign, code = create(campaigns, "SPRING26", valid_until=clock.now() + timedelta(hours=1), max_total_uses=2)
    add_codes(codes, campaign, "OTHER26")
    first = redemptions.redeem(1, "SPRING26", "k")
    assert first.accepted
    if since == "code paused":
        force_code(store, code, PAUSED)
    elif since == "campaign paused":
        force_campaign(store, campaign, PAUSED)
    elif since == "code depleted":
        force_code(store, code, DEPLETED)
    elif since == "campaign depleted":
        force_campaign(store, campaign, DEPLETED)
    elif since == "code expired":
        force_code(store, code, EXPIRED)
    elif since == "campaign expired":
        force_campaign(store, campaign, EXPIRED)
    elif since == "past valid_until":
        clock.advance(hours=2)
    elif since == "budget used up":
        assert redemptions.redeem(2, "OTHER26", "k2").accepted
    else:
        fail_times(redemptions, clock, 1, 5, timedelta(seconds=1))
        assert redemptions.redeem(1, "OTHER26", "other-key").result is RedeemResult.RATE_LIMITED
    before = (len(attempts(store)), dict(store.codes), dict(store.campaigns), dict(store.redemptions))
    again = redemptions.redeem(1, "SPRING26", "k")
    assert again.replayed and again.result is RedeemResult.ACCEPTED
    assert again.redemption == first.redemption
    assert (len(attempts(store)), dict(store.codes), dict(store.campaigns), dict(store.redemptions)) == before


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
    [(2, "SPRING26"), (1, "SIBLING26"), (1, "OTHER26"), (1, "NOSUCHCODE"), (1, "x!"), (2, "OTHER26")],
    ids=["other-user", "other-code-of-the-same-campaign", "code-of-another-campaign", "unknown-code",
         "malformed-code", "other-user-and-code"],
)
def test_same_key_for_another_user_or_code_is_idempotency_key_reused(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore,
    user_id: int, code: str,
) -> None:
    spring, _ = create(campaigns, "SPRING26", per_user_limit=5)
    add_codes(codes, spring, "SIBLING26")
    create(campaigns, "OTHER26")
    assert redemptions.redeem(1, "SPRING26", "k").accepted
    before = (len(attempts(store)), dict(store.codes), dict(store.campaigns), dict(store.redemptions))
    out = redemptions.redeem(user_id, code, "k")
    assert out == RedeemOutcome(RedeemResult.IDEMPOTENCY_KEY_REUSED)
    # Nothing recorded: no attempt, no redemption, no unit taken at either level.
    assert (len(attempts(store)), dict(store.codes), dict(store.campaigns), dict(store.redemptions)) == before


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
    campaign, code = create(campaigns, "SPRING26", max_total_uses=5)
    winner = redemptions.redeem(1, "SPRING26", "k").redemption

    def before_the_winner_committed(snap: RedeemSnapshot) -> RedeemSnapshot:
        # The first read misses the rows a concurrent request with the same key has just inserted, so this
        # request gets as far as the insert and hits the unique key.
        return attrs.evolve(snap, by_key=None, live=None, held_slots=())

    loser = RedemptionService(stale_reads(store, before_the_winner_committed), clock, hasher).redeem(
        1, "SPRING26", "k")
    assert loser.replayed and loser.redemption == winner
    # The loser's claim was rolled back at both levels.
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]
    assert len(store.redemptions) == 1
    assert len(attempts(store)) == 1  # only the winner's


@pytest.mark.parametrize("used_up", ["code cap", "campaign budget"])
def test_losing_the_key_race_to_a_twin_that_took_the_last_unit_is_its_replay_not_depleted(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, hasher: CodeHasher,
    store: MemoryStore, used_up: str,
) -> None:
    if used_up == "code cap":
        create(campaigns, "LAST1", GRANT, code_cap=1)
    else:
        create(campaigns, "LAST1", GRANT, max_total_uses=1)
    winner = redemptions.redeem(1, "LAST1", "k").redemption

    def before_the_twin_committed(snap: RedeemSnapshot) -> RedeemSnapshot:
        assert snap.code is not None and snap.campaign is not None
        return attrs.evolve(snap, by_key=None, live=None, held_slots=(),
                            code=attrs.evolve(snap.code, used_total=0), campaign=attrs.evolve(snap.campaign,
                                                                                             used_total=0))

    # In the serial order the twin came first: check 1 decides, whatever the twin left of the capacity.
    twin = RedemptionService(stale_reads(store, before_the_twin_committed), clock, hasher).redeem(1, "LAST1", "k")
    assert twin.replayed and twin.redemption == winner
    assert len(store.redemptions) == 1 and len(store.ledger) == 1 and len(attempts(store)) == 1


def test_losing_the_key_race_to_another_users_request_is_key_reuse(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, hasher: CodeHasher,
    store: MemoryStore,
) -> None:
    create(campaigns, "SPRING26", max_total_uses=1)
    assert redemptions.redeem(1, "SPRING26", "k").accepted

    def before_the_other_committed(snap: RedeemSnapshot) -> RedeemSnapshot:
        assert snap.code is not None and snap.campaign is not None
        return attrs.evolve(snap, by_key=None, campaign=attrs.evolve(snap.campaign, used_total=0),
                            code=attrs.evolve(snap.code, used_total=0))

    out = RedemptionService(stale_reads(store, before_the_other_committed), clock, hasher).redeem(2, "SPRING26", "k")
    assert out == RedeemOutcome(RedeemResult.IDEMPOTENCY_KEY_REUSED)
    assert len(store.redemptions) == 1 and len(attempts(store)) == 1


# --- RATE_LIMITED (check 2) ---------------------------------------------------------------------------


def test_blocked_user_gets_rate_limited_even_for_a_valid_code(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "SPRING26")
    fail_times(redemptions, clock, 1, 5, timedelta(minutes=1))
    latest = clock.now() - timedelta(minutes=1)
    out = redemptions.redeem(1, "SPRING26", "k")
    assert out.result is RedeemResult.RATE_LIMITED
    assert out.retry_after == latest + timedelta(minutes=60)
    assert out.redemption is None
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 0  # type: ignore[index]
    last = attempts(store)[-1]
    assert (last.result, last.normalized_code_hash, last.code_prefix, last.campaign_id) == (
        RedeemResult.RATE_LIMITED, HASH("SPRING26"), "SPRI", campaign.id)
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
    assert a.campaign_id is None


@pytest.mark.parametrize(("raw", "normalized"), [("ab", "AB"), ("ABCD!", "ABCD!"), ("A" * 40, "A" * 40)])
def test_malformed_code_is_invalid_and_its_attempt_carries_the_hash_of_the_normalized_input(
    redemptions: RedemptionService, store: MemoryStore, raw: str, normalized: str
) -> None:
    assert redemptions.redeem(1, raw, "k").result is RedeemResult.INVALID
    [a] = attempts(store)
    assert a.normalized_code_hash == HASH(normalized) and a.code_prefix == normalized[:4]
    assert a.campaign_id is None


@pytest.mark.parametrize("raw", ["A" * 257, "ABCD" + " " * 300, "", "  --  "])
def test_input_that_does_not_normalize_is_invalid_with_a_null_hash(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore, raw: str
) -> None:
    create(campaigns, "ABCD")  # even a too-long input that would normalize to a real code
    assert redemptions.redeem(1, raw, "k").result is RedeemResult.INVALID
    [a] = attempts(store)
    assert a.normalized_code_hash is None and a.code_prefix is None and a.result is RedeemResult.INVALID
    assert a.campaign_id is None


# --- checks 4-6 at both levels: the code's status and its campaign's ------------------------------------------


@pytest.mark.parametrize(
    ("code_status", "campaign_status", "result"),
    [
        (ACTIVE, ACTIVE, RedeemResult.ACCEPTED),
        # 4. either one PAUSED: PAUSED, whatever else holds
        (PAUSED, ACTIVE, RedeemResult.PAUSED),
        (ACTIVE, PAUSED, RedeemResult.PAUSED),
        (PAUSED, PAUSED, RedeemResult.PAUSED),
        (PAUSED, EXPIRED, RedeemResult.PAUSED),
        (EXPIRED, PAUSED, RedeemResult.PAUSED),
        (PAUSED, DEPLETED, RedeemResult.PAUSED),
        (DEPLETED, PAUSED, RedeemResult.PAUSED),
        # 5. either one EXPIRED: EXPIRED
        (EXPIRED, ACTIVE, RedeemResult.EXPIRED),
        (ACTIVE, EXPIRED, RedeemResult.EXPIRED),
        (EXPIRED, EXPIRED, RedeemResult.EXPIRED),
        (EXPIRED, DEPLETED, RedeemResult.EXPIRED),
        (DEPLETED, EXPIRED, RedeemResult.EXPIRED),
        # 6. either one DEPLETED: DEPLETED
        (DEPLETED, ACTIVE, RedeemResult.DEPLETED),
        (ACTIVE, DEPLETED, RedeemResult.DEPLETED),
        (DEPLETED, DEPLETED, RedeemResult.DEPLETED),
    ],
)
def test_the_code_and_its_campaign_each_decide_checks_4_to_6(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore,
    code_status: CampaignStatus, campaign_status: CampaignStatus, result: RedeemResult,
) -> None:
    campaign, code = create(campaigns, "LEVELS1", max_total_uses=100, code_cap=100)
    force_code(store, code, code_status)
    force_campaign(store, campaign, campaign_status)
    out = redemptions.redeem(1, "LEVELS1", "k")
    assert out.result is result
    [a] = attempts(store)
    assert (a.result, a.campaign_id) == (result, campaign.id)
    if result is not RedeemResult.ACCEPTED:
        assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 0  # type: ignore[index]
        assert store.redemptions == {}


# --- PAUSED (check 4) -------------------------------------------------------------------------------------


def test_a_paused_code_is_paused_while_the_other_codes_of_its_campaign_redeem(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService
) -> None:
    campaign, code = create(campaigns, "SPRING26", per_user_limit=2)
    add_codes(codes, campaign, "SPRING27")
    assert code.id is not None
    codes.set_status(code.id, PAUSED, actor=ACTOR)
    assert redemptions.redeem(1, "SPRING26", "k1").result is RedeemResult.PAUSED
    assert redemptions.redeem(1, "SPRING27", "k2").accepted


def test_a_paused_campaign_pauses_every_code_of_it(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService
) -> None:
    campaign, _ = create(campaigns, "SPRING26")
    add_codes(codes, campaign, "SPRING27", "SPRING28")
    create(campaigns, "OTHER26")
    assert campaign.id is not None
    campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    assert [redemptions.redeem(1, c, f"k-{c}").result for c in ("SPRING26", "SPRING27", "SPRING28")] == [
        RedeemResult.PAUSED] * 3
    assert redemptions.redeem(1, "OTHER26", "k").accepted


def test_paused_beats_expired_and_not_yet_valid_and_depleted(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    late, _ = create(campaigns, "LATE1", valid_until=clock.now() + timedelta(minutes=1))
    early, _ = create(campaigns, "EARLY1", valid_from=clock.now() + timedelta(days=1))
    full, _ = create(campaigns, "FULL1", max_total_uses=1)
    _, capped = create(campaigns, "CAPPED1", code_cap=1)
    assert redemptions.redeem(9, "FULL1", "k9").accepted
    assert redemptions.redeem(9, "CAPPED1", "k10").accepted
    for c in (late, early, full):
        force_campaign(store, c, PAUSED)
    force_code(store, capped, PAUSED)
    clock.advance(minutes=5)
    assert [redemptions.redeem(1, code, f"k-{code}").result for code in ("LATE1", "EARLY1", "FULL1", "CAPPED1")] \
        == [RedeemResult.PAUSED] * 4


def test_paused_beats_already_used(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "SPRING26")
    assert redemptions.redeem(1, "SPRING26", "k1").accepted
    force_code(store, code, PAUSED)
    assert redemptions.redeem(1, "SPRING26", "k2").result is RedeemResult.PAUSED
    force_code(store, code, ACTIVE)
    force_campaign(store, campaign, PAUSED)
    assert redemptions.redeem(1, "SPRING26", "k3").result is RedeemResult.PAUSED


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


def test_every_code_of_a_campaign_expires_at_the_campaigns_valid_until_and_an_extension_revives_them(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, clock: ManualClock
) -> None:
    until = clock.now() + timedelta(hours=1)
    campaign, _ = create(campaigns, "LATE1", valid_until=until)
    add_codes(codes, campaign, "LATE2")
    assert campaign.id is not None
    clock.set(until)
    assert [redemptions.redeem(1, c, f"k-{c}").result for c in ("LATE1", "LATE2")] == [RedeemResult.EXPIRED] * 2
    # The rollover has not run yet: the campaign may still be extended, and its codes' copies follow.
    campaigns.change(campaign.id, CampaignChanges(valid_until=until + timedelta(hours=1)), actor=ACTOR)
    assert redemptions.redeem(1, "LATE2", "k-late2-again").accepted


def test_not_yet_valid_code_is_not_applicable(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    starts = clock.now() + timedelta(days=1)
    campaign, _ = create(campaigns, "EARLY1", valid_from=starts)
    assert redemptions.redeem(1, "EARLY1", "k1").result is RedeemResult.NOT_APPLICABLE
    assert (attempts(store)[-1].result, attempts(store)[-1].campaign_id) == (RedeemResult.NOT_APPLICABLE, campaign.id)
    clock.set(starts)
    assert redemptions.redeem(1, "EARLY1", "k2").accepted


def test_expired_beats_not_yet_valid(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    _, code = create(campaigns, "ODD1", valid_from=clock.now() + timedelta(days=1))
    force_code(store, code, EXPIRED)
    assert redemptions.redeem(1, "ODD1", "k").result is RedeemResult.EXPIRED


def test_expired_beats_depleted(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "FULL1", max_total_uses=1, code_cap=1,
                            valid_until=clock.now() + timedelta(hours=1))
    assert redemptions.redeem(9, "FULL1", "k9").accepted
    clock.advance(hours=1)
    assert redemptions.redeem(1, "FULL1", "k1").result is RedeemResult.EXPIRED
    force_campaign(store, campaign, DEPLETED)
    force_code(store, code, DEPLETED)
    assert redemptions.redeem(1, "FULL1", "k2").result is RedeemResult.EXPIRED


@pytest.mark.parametrize("level", ["code", "campaign"])
def test_not_yet_valid_beats_depleted(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore, level: str
) -> None:
    campaign, code = create(campaigns, "EARLY1", valid_from=clock.now() + timedelta(days=1))
    if level == "code":
        force_code(store, code, DEPLETED)
    else:
        force_campaign(store, campaign, DEPLETED)
    assert redemptions.redeem(1, "EARLY1", "k").result is RedeemResult.NOT_APPLICABLE


def test_expired_beats_already_used(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock
) -> None:
    create(campaigns, "LATE1", valid_until=clock.now() + timedelta(hours=1))
    assert redemptions.redeem(1, "LATE1", "k1").accepted
    clock.advance(hours=2)
    assert redemptions.redeem(1, "LATE1", "k2").result is RedeemResult.EXPIRED


# --- DEPLETED (check 6 and the lost race of check 9) --------------------------------------------------------


def test_a_code_is_depleted_at_its_own_cap_while_its_siblings_still_redeem(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "FEW1", code_cap=2)
    [sibling] = add_codes(codes, campaign, "FEW2", cap=2)
    assert redemptions.redeem(1, "FEW1", "k1").accepted
    assert redemptions.redeem(2, "FEW1", "k2").accepted
    assert redemptions.redeem(3, "FEW1", "k3").result is RedeemResult.DEPLETED
    assert (attempts(store)[-1].result, attempts(store)[-1].campaign_id) == (RedeemResult.DEPLETED, campaign.id)
    assert redemptions.redeem(3, "FEW2", "k4").accepted
    assert store.codes[code.id].used_total == 2  # type: ignore[index]
    assert store.codes[sibling.id].used_total == 1  # type: ignore[index]
    assert store.campaigns[campaign.id].used_total == 3  # type: ignore[index]


def test_every_code_is_depleted_once_the_campaign_budget_is_used_up(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "BUDGET1", max_total_uses=2)
    add_codes(codes, campaign, "BUDGET2", "BUDGET3")
    assert redemptions.redeem(1, "BUDGET1", "k1").accepted
    assert redemptions.redeem(2, "BUDGET2", "k2").accepted
    # BUDGET3 was never used, and has no cap of its own: the campaign's budget decides.
    assert redemptions.redeem(3, "BUDGET3", "k3").result is RedeemResult.DEPLETED
    assert store.campaigns[campaign.id].used_total == 2  # type: ignore[index]


@pytest.mark.parametrize("level", ["code", "campaign"])
def test_depleted_status_is_depleted_even_with_capacity_left(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore, level: str
) -> None:
    campaign, code = create(campaigns, "DRY1", max_total_uses=100, code_cap=100)
    if level == "code":
        force_code(store, code, DEPLETED)
    else:
        force_campaign(store, campaign, DEPLETED)
    assert redemptions.redeem(1, "DRY1", "k").result is RedeemResult.DEPLETED


@pytest.mark.parametrize("level", ["code", "campaign"])
def test_depleted_beats_already_used(
    campaigns: CampaignService, redemptions: RedemptionService, level: str
) -> None:
    if level == "code":
        create(campaigns, "ONE1", code_cap=1)
    else:
        create(campaigns, "ONE1", max_total_uses=1)
    assert redemptions.redeem(1, "ONE1", "k1").accepted
    assert redemptions.redeem(1, "ONE1", "k2").result is RedeemResult.DEPLETED


@pytest.mark.parametrize(
    "concurrent_change",
    ["code cap used up", "budget used up through another code", "code paused", "campaign paused"],
)
def test_losing_the_capacity_race_at_either_level_is_depleted(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, clock: ManualClock,
    hasher: CodeHasher, store: MemoryStore, concurrent_change: str,
) -> None:
    campaign, code = create(campaigns, "RACE1", max_total_uses=1 if "budget" in concurrent_change else None,
                            code_cap=1 if "cap" in concurrent_change else None)
    add_codes(codes, campaign, "RACE2")
    if concurrent_change == "code cap used up":
        assert redemptions.redeem(9, "RACE1", "k9").accepted
    elif concurrent_change == "budget used up through another code":
        assert redemptions.redeem(9, "RACE2", "k9").accepted
    elif concurrent_change == "code paused":
        force_code(store, code, PAUSED)
    else:
        force_campaign(store, campaign, PAUSED)
    before = (dict(store.codes), dict(store.campaigns), dict(store.redemptions))

    def read_before_the_change(snap: RedeemSnapshot) -> RedeemSnapshot:
        assert snap.code is not None and snap.campaign is not None
        return attrs.evolve(snap, code=attrs.evolve(snap.code, status=ACTIVE, paused_reason=None, used_total=0),
                            campaign=attrs.evolve(snap.campaign, status=ACTIVE, paused_reason=None, used_total=0))

    out = RedemptionService(stale_reads(store, read_before_the_change), clock, hasher).redeem(1, "RACE1", "k1")
    assert out.result is RedeemResult.DEPLETED
    # Neither level gave a unit (both or neither), and no redemption was kept.
    assert (dict(store.codes), dict(store.campaigns), dict(store.redemptions)) == before
    assert (attempts(store)[-1].result, attempts(store)[-1].campaign_id) == (RedeemResult.DEPLETED, campaign.id)


# --- ALREADY_USED (check 7) -------------------------------------------------------------------------------


def test_second_redemption_by_the_same_user_with_a_new_key_is_already_used(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "SPRING26", per_user_limit=5)
    assert redemptions.redeem(1, "SPRING26", "k1").accepted
    # One live redemption per code and user, even where the campaign would allow the user more.
    assert redemptions.redeem(1, "spring-26", "k2").result is RedeemResult.ALREADY_USED
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]
    assert (attempts(store)[-1].result, attempts(store)[-1].campaign_id) == (RedeemResult.ALREADY_USED, campaign.id)


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
    uow_factory: InMemoryUnitOfWorkFactory, store: MemoryStore,
) -> None:
    campaign, code = create(campaigns, "SPRING26", max_total_uses=1, code_cap=1)
    first = redemptions.redeem(1, "SPRING26", "k1").redemption
    assert first is not None and first.id is not None
    clock.advance(minutes=15)
    with uow_factory() as uow:  # what the expiry job does
        assert uow.redemptions.expire(first.id, clock.now()) is not None
        uow.promo_codes.release_capacity_many({first.promo_code_id: 1}, clock.now())
        uow.campaigns.release_capacity_many({first.campaign_id: 1}, clock.now())
        uow.commit()
    second = redemptions.redeem(1, "SPRING26", "k2")
    assert second.accepted and second.redemption is not None and second.redemption.id != first.id
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]


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
    campaign, code = create(campaigns, "SPRING26", max_total_uses=5, per_user_limit=5)
    assert redemptions.redeem(1, "SPRING26", "k1").accepted

    def before_the_other_request_committed(snap: RedeemSnapshot) -> RedeemSnapshot:
        return attrs.evolve(snap, live=None, held_slots=())

    out = RedemptionService(stale_reads(store, before_the_other_request_committed), clock, hasher).redeem(
        1, "SPRING26", "k2")
    assert out.result is RedeemResult.ALREADY_USED
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]
    assert len(store.redemptions) == 1
    # The failed attempt survives the rolled-back redemption transaction.
    assert attempts(store)[-1].result is RedeemResult.ALREADY_USED


# --- NOT_APPLICABLE by target scope (check 8) ---------------------------------------------------------------


@pytest.mark.parametrize("status", [PurchaseStatus.PAID, PurchaseStatus.REFUNDED])
def test_first_purchase_only_code_is_not_applicable_after_a_purchase(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock, store: MemoryStore,
    status: PurchaseStatus,
) -> None:
    campaign, code = create(campaigns, "WELCOME1", target_scope=TargetScope.FIRST_PURCHASE_ONLY)
    add_purchase(store, 1, status, clock.now())
    assert redemptions.redeem(1, "WELCOME1", "k").result is RedeemResult.NOT_APPLICABLE
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 0  # type: ignore[index]
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
    paused, _ = create(campaigns, "PAUSED1")
    force_campaign(store, paused, PAUSED)
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


def test_attempts_on_an_existing_code_carry_its_campaign_id(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, clock: ManualClock,
    store: MemoryStore,
) -> None:
    spring, _ = create(campaigns, "SPRING26", per_user_limit=1)
    add_codes(codes, spring, "SPRING27")
    gift, _ = create(campaigns, "GIFT30", GRANT)
    assert redemptions.redeem(1, "SPRING26", "k1").accepted
    assert redemptions.redeem(1, "SPRING27", "k2").result is RedeemResult.ALREADY_USED
    assert redemptions.redeem(1, "gift-30", "k3").accepted
    assert redemptions.redeem(1, "NOSUCH99", "k4").result is RedeemResult.INVALID
    assert [(a.result, a.campaign_id) for a in attempts(store)] == [
        (RedeemResult.ACCEPTED, spring.id), (RedeemResult.ALREADY_USED, spring.id),
        (RedeemResult.ACCEPTED, gift.id), (RedeemResult.INVALID, None),
    ]


def test_no_stored_row_holds_the_plaintext_code(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "SECRETCODE77", GRANT, name="secrets")
    add_codes(codes, campaign, "SECRETCODE79")
    redemptions.redeem(1, "secret-code-77", "k1")
    redemptions.redeem(1, "SECRETCODE77", "k2")
    redemptions.redeem(2, "SECRETCODE78", "k3")
    redemptions.redeem(3, "SECRETCODE79", "k4")
    dump = repr((store.campaigns, store.codes, store.code_hashes, store.redemptions, store.attempts,
                 store.entitlements, store.ledger, store.audit))
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
