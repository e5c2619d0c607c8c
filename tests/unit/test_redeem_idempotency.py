"""SPEC 4 check 1: idempotency — a key answers with its first redemption whatever happened since, at either level;
the same key for another user or code is IDEMPOTENCY_KEY_REUSED; a request losing the key race replays the winner."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain.campaigns import CampaignService
from domain.codes import CodeHasher
from domain.model import RedeemResult, RedeemSnapshot
from domain.promo_codes import CodeService
from domain.redemption import RedeemOutcome, RedemptionService
from tests.unit.promo_setup import DEPLETED, EXPIRED, GRANT, PAUSED, add_codes, create, force_campaign, force_code
from tests.unit.redeem_setup import attempts, fail_times, stale_reads


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
