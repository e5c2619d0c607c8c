"""SPEC 4 checks 4-6 at both levels (the code's status and its campaign's): PAUSED, EXPIRED / NOT_APPLICABLE by
validity, DEPLETED (also the lost capacity race of check 9), and which of them wins when several apply."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from adapters.memory import ManualClock, MemoryStore
from domain.campaigns import CampaignService
from domain.codes import CodeHasher
from domain.model import CampaignChanges, CampaignStatus, RedeemResult, RedeemSnapshot
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService
from tests.unit.promo_setup import (
    ACTIVE,
    ACTOR,
    DEPLETED,
    EXPIRED,
    PAUSED,
    add_codes,
    create,
    force_campaign,
    force_code,
)
from tests.unit.redeem_setup import attempts, stale_reads

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
