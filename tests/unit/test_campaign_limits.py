"""SPEC 3-4: what a campaign limits across all its codes — its budget (``max_total_uses``), shared by the codes,
and ``per_user_limit``, the live redemptions one user may hold in it (check 7; claimed in check 9)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from adapters.memory import InMemoryUnitOfWork, InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain.campaigns import CampaignService
from domain.codes import CodeHasher
from domain.model import CampaignChanges, RedeemResult, RedeemSnapshot, RedemptionStatus
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService, free_slot
from tests.unit.promo_setup import ACTOR, GRANT, add_codes, create, expire_reservations, revoke
from tests.unit.redeem_setup import Override

CODES = [f"GIVE{i:02d}X" for i in range(1, 21)]


@pytest.fixture
def lenient(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher) -> RedemptionService:
    """Redeem with a throttle these tests never reach: they count ALREADY_USED answers, not blocks."""
    return RedemptionService(uow_factory, clock, hasher, PromoPolicy(fail_limit=1000))


def live_of(store: MemoryStore, campaign_id: int | None, user_id: int) -> list[RedemptionStatus]:
    return [r.status for r in store.redemptions.values()
            if r.campaign_id == campaign_id and r.user_id == user_id and r.status is not RedemptionStatus.EXPIRED]


# --- the budget, shared by the codes ---------------------------------------------------------------------


def test_a_budget_of_3_over_5_single_use_codes_accepts_exactly_3(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, CODES[0], max_total_uses=3, code_cap=1)
    add_codes(codes, campaign, *CODES[1:5], cap=1)
    results = [redemptions.redeem(user, CODES[user - 1], f"k{user}").result for user in range(1, 6)]
    assert results == [RedeemResult.ACCEPTED] * 3 + [RedeemResult.DEPLETED] * 2
    assert store.campaigns[campaign.id].used_total == 3  # type: ignore[index]
    assert sorted(c.used_total for c in store.codes.values()) == [0, 0, 1, 1, 1]


def test_the_budget_counts_units_of_every_code_and_the_code_caps_count_their_own(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, big = create(campaigns, "BIG1", max_total_uses=5, code_cap=10)
    [small] = add_codes(codes, campaign, "SMALL1", cap=1)
    assert redemptions.redeem(1, "SMALL1", "a").accepted
    assert redemptions.redeem(2, "SMALL1", "b").result is RedeemResult.DEPLETED  # the code's own cap
    for user in (3, 4, 5, 6):
        assert redemptions.redeem(user, "BIG1", f"k{user}").accepted
    assert redemptions.redeem(7, "BIG1", "k7").result is RedeemResult.DEPLETED  # the budget: 1 + 4 = 5
    assert store.codes[big.id].used_total == 4  # type: ignore[index]
    assert store.codes[small.id].used_total == 1  # type: ignore[index]
    assert store.campaigns[campaign.id].used_total == 5  # type: ignore[index]


def test_an_expired_reservation_gives_its_unit_back_to_the_code_and_the_campaign(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock,
    uow_factory: InMemoryUnitOfWorkFactory, store: MemoryStore,
) -> None:
    campaign, code = create(campaigns, "BACK1", max_total_uses=1, code_cap=1)
    assert redemptions.redeem(1, "BACK1", "k1").accepted
    assert redemptions.redeem(2, "BACK1", "k2").result is RedeemResult.DEPLETED
    clock.advance(minutes=15)
    assert expire_reservations(uow_factory, clock) == 1
    assert expire_reservations(uow_factory, clock) == 0  # exactly once
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 0  # type: ignore[index]
    assert redemptions.redeem(2, "BACK1", "k3").accepted


def test_a_revoked_redemption_keeps_its_unit(
    campaigns: CampaignService, redemptions: RedemptionService, clock: ManualClock,
    uow_factory: InMemoryUnitOfWorkFactory, store: MemoryStore,
) -> None:
    campaign, code = create(campaigns, "KEEP1", GRANT, max_total_uses=1)
    revoke(uow_factory, clock, redemptions.redeem(1, "KEEP1", "k1").redemption)
    assert store.codes[code.id].used_total == store.campaigns[campaign.id].used_total == 1  # type: ignore[index]
    assert redemptions.redeem(2, "KEEP1", "k2").result is RedeemResult.DEPLETED


# --- per_user_limit, across the campaign's codes -----------------------------------------------------------


def test_with_a_limit_of_one_a_second_code_of_the_campaign_is_already_used(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, CODES[0], per_user_limit=1)
    add_codes(codes, campaign, CODES[1])
    other, _ = create(campaigns, "ELSEWHERE1")
    assert redemptions.redeem(1, CODES[0], "k1").accepted
    assert redemptions.redeem(1, CODES[1], "k2").result is RedeemResult.ALREADY_USED
    assert (store.attempts[-1].result, store.attempts[-1].campaign_id) == (RedeemResult.ALREADY_USED, campaign.id)
    # The limit is the campaign's: another user, or another campaign, is not affected.
    assert redemptions.redeem(2, CODES[1], "k3").accepted
    assert redemptions.redeem(1, "ELSEWHERE1", "k4").accepted
    assert store.campaigns[campaign.id].used_total == 2  # type: ignore[index]
    assert store.campaigns[other.id].used_total == 1  # type: ignore[index]


def test_with_a_limit_of_three_the_fourth_code_is_already_used(
    campaigns: CampaignService, codes: CodeService, lenient: RedemptionService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, CODES[0], per_user_limit=3)
    add_codes(codes, campaign, *CODES[1:6])
    results = [lenient.redeem(1, code, f"k-{code}").result for code in CODES[:6]]
    assert results == [RedeemResult.ACCEPTED] * 3 + [RedeemResult.ALREADY_USED] * 3
    slots = sorted(r.user_slot for r in store.redemptions.values())
    assert slots == [1, 2, 3]
    assert store.campaigns[campaign.id].used_total == 3  # type: ignore[index]


def test_an_expired_reservation_frees_the_users_place_in_the_campaign(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, clock: ManualClock,
    uow_factory: InMemoryUnitOfWorkFactory, store: MemoryStore,
) -> None:
    campaign, _ = create(campaigns, CODES[0], per_user_limit=1)
    add_codes(codes, campaign, CODES[1])
    assert redemptions.redeem(1, CODES[0], "k1").accepted
    clock.advance(minutes=15)
    assert expire_reservations(uow_factory, clock) == 1
    second = redemptions.redeem(1, CODES[1], "k2")
    assert second.accepted and second.redemption is not None and second.redemption.user_slot == 1
    assert live_of(store, campaign.id, 1) == [RedemptionStatus.RESERVED]


def test_a_revoked_redemption_keeps_the_users_place_in_the_campaign(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, clock: ManualClock,
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    campaign, _ = create(campaigns, CODES[0], GRANT, per_user_limit=1)
    add_codes(codes, campaign, CODES[1])
    revoke(uow_factory, clock, redemptions.redeem(1, CODES[0], "k1").redemption)
    assert redemptions.redeem(1, CODES[1], "k2").result is RedeemResult.ALREADY_USED


def test_a_raised_limit_lets_the_user_take_more(
    campaigns: CampaignService, codes: CodeService, lenient: RedemptionService
) -> None:
    campaign, _ = create(campaigns, CODES[0], per_user_limit=1)
    add_codes(codes, campaign, *CODES[1:3])
    assert campaign.id is not None
    assert lenient.redeem(1, CODES[0], "k1").accepted
    assert lenient.redeem(1, CODES[1], "k2").result is RedeemResult.ALREADY_USED
    campaigns.change(campaign.id, CampaignChanges(per_user_limit=2), actor=ACTOR)
    assert lenient.redeem(1, CODES[1], "k3").accepted
    assert lenient.redeem(1, CODES[2], "k4").result is RedeemResult.ALREADY_USED


def test_lowering_the_limit_revokes_nothing_and_the_user_takes_no_more_until_below_it(
    campaigns: CampaignService, codes: CodeService, lenient: RedemptionService, clock: ManualClock,
    uow_factory: InMemoryUnitOfWorkFactory, store: MemoryStore,
) -> None:
    campaign, _ = create(campaigns, CODES[0], per_user_limit=3)
    add_codes(codes, campaign, *CODES[1:5])
    assert campaign.id is not None
    held = [lenient.redeem(1, code, f"k-{code}").redemption for code in CODES[:3]]
    before = dict(store.redemptions)
    campaigns.change(campaign.id, CampaignChanges(per_user_limit=1), actor=ACTOR)
    # Nothing the user holds changed: three live redemptions in a campaign that now allows one.
    assert store.redemptions == before
    assert live_of(store, campaign.id, 1) == [RedemptionStatus.RESERVED] * 3
    assert store.campaigns[campaign.id].used_total == 3
    assert lenient.redeem(1, CODES[3], "k4").result is RedeemResult.ALREADY_USED
    # Two of the three run out: the user still holds one, which is the limit.
    first, second, third = held
    assert first is not None and second is not None and third is not None
    with uow_factory() as uow:
        clock.advance(minutes=15)
        assert first.id is not None and third.id is not None
        assert uow.redemptions.expire(first.id, clock.now()) is not None
        assert uow.redemptions.expire(third.id, clock.now()) is not None
        uow.commit()
    assert lenient.redeem(1, CODES[3], "k5").result is RedeemResult.ALREADY_USED
    # The last one runs out too: the user may take one again.
    with uow_factory() as uow:
        assert second.id is not None
        assert uow.redemptions.expire(second.id, clock.now()) is not None
        uow.commit()
    again = lenient.redeem(1, CODES[4], "k6")
    assert again.accepted and again.redemption is not None and again.redemption.user_slot == 1


def test_a_user_holding_a_high_slot_after_a_lowered_limit_takes_the_free_low_one(
    campaigns: CampaignService, codes: CodeService, lenient: RedemptionService, clock: ManualClock,
    uow_factory: InMemoryUnitOfWorkFactory, store: MemoryStore,
) -> None:
    campaign, _ = create(campaigns, CODES[0], per_user_limit=3)
    add_codes(codes, campaign, *CODES[1:4])
    assert campaign.id is not None
    held = [lenient.redeem(1, code, f"k-{code}").redemption for code in CODES[:3]]
    campaigns.change(campaign.id, CampaignChanges(per_user_limit=2), actor=ACTOR)
    with uow_factory() as uow:  # slots 1 and 2 run out; slot 3 stays
        clock.advance(minutes=15)
        for r in held[:2]:
            assert r is not None and r.id is not None
            assert uow.redemptions.expire(r.id, clock.now()) is not None
        uow.commit()
    out = lenient.redeem(1, CODES[3], "k4")
    assert out.accepted and out.redemption is not None and out.redemption.user_slot == 1
    assert len(live_of(store, campaign.id, 1)) == 2  # the lowered limit, reached again
    assert lenient.redeem(1, CODES[0], "k5").result is RedeemResult.ALREADY_USED


# --- the user's allowance under a race (check 9) ---------------------------------------------------------------


def first_read_misses_the_users_places(store: MemoryStore) -> Callable[[], InMemoryUnitOfWork]:
    """Units of work over ``store``; the first reads the user's places in the campaign before a concurrent redeem
    of the same user committed (it sees none)."""
    made = {"units": 0}

    def make() -> InMemoryUnitOfWork:
        uow = InMemoryUnitOfWork(store)
        made["units"] += 1
        if made["units"] == 1:
            real = uow.redemptions

            def stale(*args: Any) -> RedeemSnapshot:
                return attrs.evolve(real.redeem_snapshot(*args), held_slots=())

            uow.redemptions = Override(real, redeem_snapshot=stale)
        return uow

    return make


@pytest.mark.parametrize(("limit", "result", "slot"), [(1, RedeemResult.ALREADY_USED, None),
                                                       (3, RedeemResult.ACCEPTED, 2)])
def test_losing_the_race_for_a_place_tries_the_next_or_is_already_used(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, clock: ManualClock,
    hasher: CodeHasher, store: MemoryStore, limit: int, result: RedeemResult, slot: int | None,
) -> None:
    campaign, code = create(campaigns, CODES[0], per_user_limit=limit, max_total_uses=10)
    [other] = add_codes(codes, campaign, CODES[1])
    assert redemptions.redeem(1, CODES[0], "k1").accepted  # the concurrent redeem that took place 1
    racing = RedemptionService(first_read_misses_the_users_places(store), clock, hasher)
    out = racing.redeem(1, CODES[1], "k2")
    assert out.result is result
    assert (out.redemption.user_slot if out.redemption else None) == slot
    assert store.campaigns[campaign.id].used_total == (2 if out.accepted else 1)  # type: ignore[index]
    assert store.codes[other.id].used_total == (1 if out.accepted else 0)  # type: ignore[index]
    assert store.codes[code.id].used_total == 1  # type: ignore[index]


# --- free_slot ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "limit", "slot"),
    [((), 1, 1), ((1,), 1, None), ((1,), 3, 2), ((1, 3), 3, 2), ((2,), 3, 1), ((1, 2, 3), 3, None),
     ((3,), 2, 1), ((2, 3), 2, None), ((1, 2, 3), 1, None)],
)
def test_free_slot_is_the_lowest_free_place_below_the_limit(held: tuple[int, ...], limit: int,
                                                            slot: int | None) -> None:
    assert free_slot(held, limit) == slot


def test_results_over_many_users_of_a_limited_campaign(
    campaigns: CampaignService, codes: CodeService, lenient: RedemptionService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, CODES[0], per_user_limit=2, max_total_uses=7)
    add_codes(codes, campaign, *CODES[1:4])
    results = Counter(lenient.redeem(user, code, f"u{user}-{code}").result
                      for user in (1, 2, 3, 4) for code in CODES[:4])
    # Two places each: users 1-3 take 6 units, user 4 the seventh and last.
    assert results == {RedeemResult.ACCEPTED: 7, RedeemResult.ALREADY_USED: 6, RedeemResult.DEPLETED: 3}
    assert store.campaigns[campaign.id].used_total == 7  # type: ignore[index]
    for user in (1, 2, 3):
        assert len(live_of(store, campaign.id, user)) == 2
