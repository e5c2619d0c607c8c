"""SPEC 3 and 7 "Audit": changing what may change of a campaign (name, validity, budget, per-user limit) — copied
onto every code of the campaign, one audit row with what changed, a refused change naming the field and changing
nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from adapters.memory import ManualClock, MemoryStore
from domain import audit
from domain.campaigns import CampaignService
from domain.errors import CampaignExists, InvalidChange, NotFound, ValidationError
from domain.model import UNCHANGED, CampaignChanges, RedeemResult
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService
from tests.unit.promo_setup import (
    ACTOR,
    DISCOUNT,
    EXPIRED,
    add_codes,
    audit_since,
    campaign_tables,
    create,
    force_campaign,
)


def test_a_name_and_valid_until_change_is_copied_onto_every_code_of_the_campaign(
    campaigns: CampaignService, codes: CodeService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "COPY1", name="before", valid_until=clock.now() + timedelta(days=1))
    add_codes(codes, campaign, "COPY2", "COPY3")
    other, other_code = create(campaigns, "ELSE1", name="untouched")
    assert campaign.id is not None
    clock.advance(hours=1)
    until = clock.now() + timedelta(days=30)
    changed = campaigns.change(campaign.id, CampaignChanges(name="after", valid_until=until), actor=ACTOR)
    assert (changed.name, changed.valid_until, changed.updated_at) == ("after", until, clock.now())
    mine = [c for c in store.codes.values() if c.campaign_id == campaign.id]
    assert len(mine) == 3
    assert {(c.campaign_name, c.valid_until, c.updated_at) for c in mine} == {("after", until, clock.now())}
    assert store.codes[other_code.id] == other_code  # type: ignore[index]
    assert store.campaigns[other.id] == other  # type: ignore[index]
    # The old name is free again, the new one taken.
    with pytest.raises(CampaignExists):
        campaigns.create(attrs.evolve(DISCOUNT, name="after"), actor=ACTOR)
    assert campaigns.create(attrs.evolve(DISCOUNT, name="before"), actor=ACTOR)[0].name == "before"


def test_valid_until_may_be_removed_and_the_codes_follow(
    campaigns: CampaignService, codes: CodeService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "OPEN1", valid_until=clock.now() + timedelta(days=1))
    add_codes(codes, campaign, "OPEN2")
    assert campaign.id is not None
    assert campaigns.change(campaign.id, CampaignChanges(valid_until=None), actor=ACTOR).valid_until is None
    assert {c.valid_until for c in store.codes.values()} == {None}


def test_a_change_writes_one_audit_row_with_what_changed(
    campaigns: CampaignService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "AUDIT1", name="old name", max_total_uses=10)
    assert campaign.id is not None
    before = len(store.audit)
    campaigns.change(campaign.id, CampaignChanges(name="new name", max_total_uses=None, per_user_limit=4),
                     actor="cli:bob")
    [entry] = audit_since(store, before)
    assert (entry.actor, entry.action, entry.target_type, entry.target_id, entry.at) == (
        "cli:bob", audit.CAMPAIGN_CHANGED, audit.CAMPAIGN, str(campaign.id), clock.now())
    assert entry.details == {"changes": {"name": {"from": "old name", "to": "new name"},
                                         "max_total_uses": {"from": 10, "to": None},
                                         "per_user_limit": {"from": 1, "to": 4}}}
    assert "AUDIT1" not in repr(entry)


def test_a_change_of_nothing_changes_nothing_and_writes_no_audit_row(
    campaigns: CampaignService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "NONE1")
    assert campaign.id is not None
    before = campaign_tables(store)
    assert campaigns.change(campaign.id, CampaignChanges(), actor=ACTOR) == campaign
    assert campaign_tables(store) == before


def test_the_budget_may_be_lowered_to_the_units_used_but_not_below(
    campaigns: CampaignService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "BUDGET1", max_total_uses=10, per_user_limit=1)
    assert campaign.id is not None
    for user in (1, 2, 3):
        assert redemptions.redeem(user, "BUDGET1", f"k{user}").accepted
    before = campaign_tables(store)
    with pytest.raises(InvalidChange) as exc:
        campaigns.change(campaign.id, CampaignChanges(max_total_uses=2), actor=ACTOR)
    assert exc.value.code == "INVALID_CHANGE"
    assert exc.value.details["field"] == "max_total_uses" and exc.value.details["used_total"] == 3
    assert campaign_tables(store) == before
    assert campaigns.change(campaign.id, CampaignChanges(max_total_uses=3), actor=ACTOR).max_total_uses == 3
    assert redemptions.redeem(4, "BUDGET1", "k4").result is RedeemResult.DEPLETED


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        (CampaignChanges(name="taken"), InvalidChange, "name"),
        (CampaignChanges(name=""), ValidationError, "name"),
        (CampaignChanges(name="x" * 201), ValidationError, "name"),
        (CampaignChanges(max_total_uses=1), InvalidChange, "max_total_uses"),  # below the 2 used
        (CampaignChanges(max_total_uses=0), ValidationError, "max_total_uses"),
        (CampaignChanges(valid_until=datetime(2026, 3, 1, 11, 0, tzinfo=UTC)), InvalidChange, "valid_until"),
        (CampaignChanges(valid_until=datetime(2026, 3, 1, 12, 0, tzinfo=UTC)), InvalidChange, "valid_until"),
        (CampaignChanges(valid_until=datetime(2026, 6, 1)), ValidationError, "valid_until"),
        (CampaignChanges(per_user_limit=0), ValidationError, "per_user_limit"),
        (CampaignChanges(per_user_limit=1001), ValidationError, "per_user_limit"),
        (CampaignChanges(name="fine", per_user_limit=0), ValidationError, "per_user_limit"),
        (CampaignChanges(name="taken", per_user_limit=5), InvalidChange, "name"),
    ],
    ids=["name-clash", "empty-name", "long-name", "budget-below-used", "zero-budget", "valid-until-in-the-past",
         "valid-until-now", "naive-valid-until", "limit-0", "limit-1001", "good-name-bad-limit",
         "name-clash-with-good-limit"],
)
def test_a_refused_change_names_the_field_changes_nothing_and_writes_no_audit_row(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore,
    changes: CampaignChanges, error: type[Exception], field: str,
) -> None:
    campaigns.create(attrs.evolve(DISCOUNT, name="taken"), actor=ACTOR)
    campaign, _ = create(campaigns, "REFUSE1", name="mine", per_user_limit=2,
                         valid_until=datetime(2026, 4, 1, tzinfo=UTC))
    add_codes(codes, campaign, "REFUSE2")
    assert redemptions.redeem(1, "REFUSE1", "k1").accepted
    assert redemptions.redeem(2, "REFUSE2", "k2").accepted
    assert campaign.id is not None
    before = campaign_tables(store)
    with pytest.raises(error) as exc:
        campaigns.change(campaign.id, changes, actor=ACTOR)
    if isinstance(exc.value, ValidationError):
        assert {e["field"] for e in exc.value.errors} == {field}
    else:
        assert isinstance(exc.value, InvalidChange) and exc.value.details["field"] == field
    assert campaign_tables(store) == before


def test_valid_until_of_an_expired_campaign_cannot_change(
    campaigns: CampaignService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "GONE1", valid_until=clock.now() + timedelta(hours=1))
    assert campaign.id is not None
    force_campaign(store, campaign, EXPIRED)
    before = campaign_tables(store)
    with pytest.raises(InvalidChange) as exc:
        campaigns.change(campaign.id, CampaignChanges(valid_until=clock.now() + timedelta(days=9)), actor=ACTOR)
    assert exc.value.details["field"] == "valid_until"
    assert campaign_tables(store) == before


def test_changing_a_missing_campaign_is_not_found(campaigns: CampaignService) -> None:
    with pytest.raises(NotFound):
        campaigns.change(42, CampaignChanges(name="x"), actor=ACTOR)


def test_unchanged_is_not_none() -> None:
    # ``None`` is a real new value of valid_until and max_total_uses (no end, no budget).
    assert CampaignChanges().changed() == {}
    assert CampaignChanges(valid_until=None).changed() == {"valid_until": None}
    assert CampaignChanges(max_total_uses=UNCHANGED, per_user_limit=3).changed() == {"per_user_limit": 3}
