"""SPEC 3 and 7 "Audit": the admin transitions of a whole campaign (ACTIVE <-> PAUSED) — one audit row by the actor
each, same-state requests idempotent, DEPLETED and EXPIRED final, resume refused past the end or the budget."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.memory import ManualClock, MemoryStore
from domain import audit
from domain.campaigns import CampaignService
from domain.errors import InvalidTransition, NotFound, ValidationError
from domain.model import CampaignChanges, CampaignStatus, PausedReason, RedeemResult
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService
from tests.unit.promo_setup import (
    ACTIVE,
    ACTOR,
    DEPLETED,
    EXPIRED,
    PAUSED,
    add_codes,
    audit_since,
    campaign_tables,
    create,
    field_errors,
    force_campaign,
)


def test_pause_then_resume_each_write_one_audit_row_by_the_actor(
    campaigns: CampaignService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "TOGGLE1")
    assert campaign.id is not None
    before = len(store.audit)
    clock.advance(minutes=1)
    paused = campaigns.set_status(campaign.id, PAUSED, actor="ops:carol", reason="spam wave")
    assert paused.status is PAUSED and paused.paused_reason is PausedReason.MANUAL
    assert paused.updated_at == clock.now()
    [entry] = audit_since(store, before)
    assert (entry.actor, entry.action, entry.target_type, entry.target_id, entry.at) == (
        "ops:carol", audit.CAMPAIGN_PAUSED, audit.CAMPAIGN, str(campaign.id), clock.now())
    assert entry.details == {"reason": "spam wave"}
    clock.advance(minutes=1)
    resumed = campaigns.set_status(campaign.id, ACTIVE, actor="api")
    assert resumed.status is ACTIVE and resumed.paused_reason is None
    [entry] = audit_since(store, before + 1)
    assert (entry.actor, entry.action) == ("api", audit.CAMPAIGN_RESUMED)
    assert entry.details == {"previous_paused_reason": "MANUAL"}
    assert campaigns.get(campaign.id).campaign == resumed
    # Its codes keep their own status: the campaign's decides for all of them.
    assert store.codes[code.id] == code  # type: ignore[index]
    assert "TOGGLE1" not in repr(store.audit)


@pytest.mark.parametrize("status", [ACTIVE, PAUSED])
def test_same_state_request_is_an_idempotent_no_op_without_an_audit_row(
    campaigns: CampaignService, clock: ManualClock, store: MemoryStore, status: CampaignStatus
) -> None:
    campaign, _ = create(campaigns, "SAME1")
    assert campaign.id is not None
    if status is PAUSED:
        campaign = campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    assert campaign.id is not None
    clock.advance(hours=1)
    before = campaign_tables(store)
    assert campaigns.set_status(campaign.id, status, actor=ACTOR) == campaign  # unchanged, updated_at included
    assert campaign_tables(store) == before


def test_auto_paused_campaign_keeps_its_reason_on_a_manual_pause_request(
    campaigns: CampaignService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "GUARD1")
    assert campaign.id is not None
    force_campaign(store, campaign, PAUSED)  # what the brute-force guard does
    before = len(store.audit)
    assert campaigns.set_status(campaign.id, PAUSED, actor=ACTOR).paused_reason is PausedReason.AUTO_BRUTEFORCE
    assert len(store.audit) == before
    assert campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR).paused_reason is None
    [entry] = audit_since(store, before)
    assert entry.details == {"previous_paused_reason": "AUTO_BRUTEFORCE"}


@pytest.mark.parametrize("frozen", [DEPLETED, EXPIRED])
@pytest.mark.parametrize("target", [ACTIVE, PAUSED])
def test_nothing_leaves_depleted_or_expired(
    campaigns: CampaignService, store: MemoryStore, frozen: CampaignStatus, target: CampaignStatus
) -> None:
    campaign, _ = create(campaigns, "FROZEN1")
    assert campaign.id is not None
    force_campaign(store, campaign, frozen)
    before = campaign_tables(store)
    with pytest.raises(InvalidTransition) as exc:
        campaigns.set_status(campaign.id, target, actor=ACTOR)
    assert exc.value.code == "INVALID_TRANSITION"
    assert exc.value.details == {"from": frozen.value, "to": target.value}
    assert campaign_tables(store) == before


@pytest.mark.parametrize("frozen", [DEPLETED, EXPIRED])
def test_depleted_and_expired_are_no_admin_targets(
    campaigns: CampaignService, store: MemoryStore, frozen: CampaignStatus
) -> None:
    campaign, _ = create(campaigns, "FROZEN2")
    assert campaign.id is not None
    for status in (ACTIVE, frozen):
        force_campaign(store, campaign, status)
        with pytest.raises(ValidationError) as exc:
            campaigns.set_status(campaign.id, frozen, actor=ACTOR)
        assert field_errors(exc) == {"status"}


def test_resume_is_refused_once_valid_until_has_passed(
    campaigns: CampaignService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "LATE1", valid_until=clock.now() + timedelta(hours=1))
    assert campaign.id is not None
    campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    clock.advance(minutes=59)
    campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR)
    campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    clock.advance(minutes=1)  # now == valid_until: past
    before = campaign_tables(store)
    with pytest.raises(InvalidTransition) as exc:
        campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR)
    assert "valid_until" in exc.value.message
    assert campaign_tables(store) == before


def test_resume_is_refused_when_the_budget_is_used_up(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "FULL1", max_total_uses=2)
    add_codes(codes, campaign, "FULL2")
    assert campaign.id is not None
    assert redemptions.redeem(1, "FULL1", "a").accepted
    campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR)  # 1 of 2 used: fine
    assert redemptions.redeem(2, "FULL2", "b").accepted  # the other code takes the last unit
    campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    before = campaign_tables(store)
    with pytest.raises(InvalidTransition) as exc:
        campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR)
    assert "capacity" in exc.value.message
    assert campaign_tables(store) == before
    # A larger budget makes room, and the resume goes through.
    campaigns.change(campaign.id, CampaignChanges(max_total_uses=3), actor=ACTOR)
    assert campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR).status is ACTIVE


def test_pausing_a_used_up_active_campaign_is_allowed(
    campaigns: CampaignService, redemptions: RedemptionService
) -> None:
    campaign, _ = create(campaigns, "FULL2", max_total_uses=1)
    assert campaign.id is not None
    assert redemptions.redeem(1, "FULL2", "a").accepted
    assert campaigns.set_status(campaign.id, PAUSED, actor=ACTOR).status is PAUSED


def test_a_reason_is_at_most_500_printable_characters(campaigns: CampaignService, store: MemoryStore) -> None:
    campaign, _ = create(campaigns, "WHY1")
    assert campaign.id is not None
    before = campaign_tables(store)
    for reason in ("x" * 501, "line\nbreak"):
        with pytest.raises(ValidationError) as exc:
            campaigns.set_status(campaign.id, PAUSED, actor=ACTOR, reason=reason)
        assert field_errors(exc) == {"reason"}
    assert campaign_tables(store) == before


def test_transition_of_a_missing_campaign_is_not_found(campaigns: CampaignService) -> None:
    with pytest.raises(NotFound):
        campaigns.set_status(42, PAUSED, actor=ACTOR)


def test_paused_campaign_redeems_again_after_resume(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService
) -> None:
    campaign, _ = create(campaigns, "AGAIN1")
    add_codes(codes, campaign, "AGAIN2")
    assert campaign.id is not None
    campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    assert redemptions.redeem(1, "AGAIN1", "a").result is RedeemResult.PAUSED
    assert redemptions.redeem(2, "AGAIN2", "b").result is RedeemResult.PAUSED
    campaigns.set_status(campaign.id, ACTIVE, actor=ACTOR)
    assert redemptions.redeem(1, "AGAIN1", "c").accepted
    assert redemptions.redeem(2, "AGAIN2", "d").accepted
