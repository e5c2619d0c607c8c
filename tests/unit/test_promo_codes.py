"""SPEC 3: single codes of a campaign — add a chosen code, read and list codes, the admin transitions of one code
(its campaign untouched), and the support lookup of a typed code, which records nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain import audit
from domain.campaigns import CampaignService
from domain.codes import CodeHasher, hmac_hash
from domain.errors import CodeExists, InvalidTransition, NotFound, ValidationError
from domain.model import CampaignChanges, CampaignStatus, CodeFilter, PausedReason, RedeemResult
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService
from tests.conftest import PEPPER
from tests.unit.promo_setup import (
    ACTIVE,
    ACTOR,
    DEPLETED,
    DISCOUNT,
    EXPIRED,
    PAUSED,
    add_codes,
    audit_since,
    create,
    field_errors,
    force_campaign,
    force_code,
)


def tables(store: MemoryStore) -> tuple[object, ...]:
    return (dict(store.campaigns), dict(store.codes), dict(store.code_hashes), list(store.audit),
            list(store.attempts), dict(store.redemptions))


# --- add --------------------------------------------------------------------------------------------------


def test_an_added_code_joins_its_campaign_with_copies_of_its_fields_and_one_audit_row(
    campaigns: CampaignService, codes: CodeService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "FIRST1", name="launch", valid_until=clock.now() + timedelta(days=3))
    assert campaign.id is not None
    before = len(store.audit)
    clock.advance(minutes=5)
    code = codes.add(campaign.id, " second-one ", 25, actor="cli:dave")
    assert code.id is not None and code.campaign_id == campaign.id
    assert code.code_hash == CodeHasher(PEPPER).hash("SECONDONE") and code.code_prefix == "SECO"
    assert (code.status, code.paused_reason, code.max_total_uses, code.used_total) == (ACTIVE, None, 25, 0)
    assert code.created_at == code.updated_at == clock.now()
    assert (code.campaign_name, code.promo_type, code.target_scope, code.valid_from, code.valid_until) == (
        campaign.name, campaign.promo_type, campaign.target_scope, campaign.valid_from, campaign.valid_until)
    assert codes.get(code.id) == code
    assert campaigns.get(campaign.id).codes_total == 2
    [entry] = audit_since(store, before)
    assert (entry.actor, entry.action, entry.target_type, entry.target_id, entry.at) == (
        "cli:dave", audit.CODE_CREATED, audit.PROMO_CODE, str(code.id), clock.now())
    assert entry.details == {"campaign_id": campaign.id, "code_prefix": "SECO", "max_total_uses": 25}
    assert "SECONDONE" not in repr(store.audit)


@pytest.mark.parametrize("taken", ["FIRST1", "first-1", "SECOND2"])
def test_a_stored_code_is_code_exists_in_any_campaign_and_nothing_is_written(
    campaigns: CampaignService, codes: CodeService, store: MemoryStore, taken: str
) -> None:
    campaign, _ = create(campaigns, "FIRST1")
    other, _ = create(campaigns, "SECOND2")
    assert campaign.id is not None and other.id is not None
    before = tables(store)
    with pytest.raises(CodeExists) as exc:
        codes.add(campaign.id, taken, actor=ACTOR)
    assert exc.value.code == "CODE_EXISTS" and exc.value.details == {"field": "code"}
    assert tables(store) == before


def test_a_code_stored_under_a_previous_pepper_cannot_be_added_again(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, store: MemoryStore
) -> None:
    old = CodeHasher("pepper-2025")
    campaign, _ = CampaignService(uow_factory, clock, old).create(DISCOUNT, actor=ACTOR, code="ROTATE1")
    assert campaign.id is not None
    rotated = CodeService(uow_factory, clock, CodeHasher("pepper-2026", ("pepper-2025",)))
    before = tables(store)
    with pytest.raises(CodeExists):
        rotated.add(campaign.id, "rotate-1", actor=ACTOR)
    assert tables(store) == before


@pytest.mark.parametrize(
    ("code", "cap", "fields"),
    [("abc", None, {"code"}), ("AB!CD", None, {"code"}), ("A" * 33, None, {"code"}), ("GOOD1", 0, {"max_total_uses"}),
     ("x", -1, {"code", "max_total_uses"})],
)
def test_a_bad_code_or_cap_is_reported_by_name(
    campaigns: CampaignService, codes: CodeService, store: MemoryStore, code: str, cap: int | None, fields: set[str]
) -> None:
    campaign, _ = create(campaigns, "FIRST1")
    assert campaign.id is not None
    before = tables(store)
    with pytest.raises(ValidationError) as exc:
        codes.add(campaign.id, code, cap, actor=ACTOR)
    assert field_errors(exc) == fields
    assert tables(store) == before


def test_adding_to_a_missing_campaign_is_not_found(codes: CodeService, store: MemoryStore) -> None:
    with pytest.raises(NotFound):
        codes.add(42, "GOOD1", actor=ACTOR)
    assert store.codes == {} and store.audit == []


def test_no_code_is_added_to_an_expired_campaign(
    campaigns: CampaignService, codes: CodeService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "FIRST1")
    assert campaign.id is not None
    force_campaign(store, campaign, EXPIRED)
    before = tables(store)
    with pytest.raises(InvalidTransition):
        codes.add(campaign.id, "LATE1", actor=ACTOR)
    assert tables(store) == before


def test_reading_a_missing_code_is_not_found(codes: CodeService) -> None:
    with pytest.raises(NotFound):
        codes.get(7)


# --- list -------------------------------------------------------------------------------------------------


def test_codes_are_listed_by_campaign_status_and_prefix_in_id_order_and_paged(
    campaigns: CampaignService, codes: CodeService
) -> None:
    campaign, first = create(campaigns, "AAAA1")
    more = add_codes(codes, campaign, "AAAA2", "AAAB3", "BBBB4")
    create(campaigns, "AAAA9")
    assert campaign.id is not None and more[0].id is not None
    codes.set_status(more[0].id, PAUSED, actor=ACTOR)
    mine = codes.list_codes(CodeFilter(campaign_id=campaign.id), limit=3)
    assert [c.id for c in mine.items] == [first.id, more[0].id, more[1].id] and mine.next_cursor == more[1].id
    rest = codes.list_codes(CodeFilter(campaign_id=campaign.id), 3, mine.next_cursor)
    assert [c.id for c in rest.items] == [more[2].id] and rest.next_cursor is None
    assert [c.id for c in codes.list_codes(CodeFilter(campaign_id=campaign.id, status=PAUSED)).items] == [more[0].id]
    assert [c.code_prefix for c in codes.list_codes(CodeFilter(code_prefix="aaab")).items] == ["AAAB"]
    assert len(codes.list_codes(CodeFilter(code_prefix="AAAA")).items) == 3  # the other campaign's too


@pytest.mark.parametrize(("flt", "limit", "field"), [
    (CodeFilter(), 0, "limit"), (CodeFilter(), 201, "limit"), (CodeFilter(code_prefix="ABCDE"), 50, "code_prefix"),
    (CodeFilter(code_prefix="A-"), 50, "code_prefix"), (CodeFilter(code_prefix=""), 50, "code_prefix"),
])
def test_a_bad_list_request_is_reported_by_name(codes: CodeService, flt: CodeFilter, limit: int, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        codes.list_codes(flt, limit)
    assert field_errors(exc) == {field}


# --- admin transitions of one code ------------------------------------------------------------------------


def test_pausing_one_code_pauses_only_that_code_and_writes_one_audit_row(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, clock: ManualClock,
    store: MemoryStore,
) -> None:
    campaign, code = create(campaigns, "LEAKED1", per_user_limit=2)
    [sibling] = add_codes(codes, campaign, "SAFE1")
    assert code.id is not None
    before = len(store.audit)
    clock.advance(minutes=1)
    paused = codes.set_status(code.id, PAUSED, actor="ops:erin", reason="posted on a forum")
    assert (paused.status, paused.paused_reason, paused.updated_at) == (PAUSED, PausedReason.MANUAL, clock.now())
    [entry] = audit_since(store, before)
    assert (entry.actor, entry.action, entry.target_type, entry.target_id, entry.at) == (
        "ops:erin", audit.CODE_PAUSED, audit.PROMO_CODE, str(code.id), clock.now())
    assert entry.details == {"campaign_id": campaign.id, "code_prefix": "LEAK", "reason": "posted on a forum"}
    assert store.campaigns[campaign.id] == campaign  # type: ignore[index]
    assert store.codes[sibling.id] == sibling  # type: ignore[index]
    assert redemptions.redeem(1, "LEAKED1", "k1").result is RedeemResult.PAUSED
    assert redemptions.redeem(1, "SAFE1", "k2").accepted
    resumed = codes.set_status(code.id, ACTIVE, actor="ops:erin")
    assert (resumed.status, resumed.paused_reason) == (ACTIVE, None)
    [entry] = audit_since(store, before + 1)
    assert (entry.action, entry.details) == (audit.CODE_RESUMED, {
        "campaign_id": campaign.id, "code_prefix": "LEAK", "previous_paused_reason": "MANUAL"})
    assert redemptions.redeem(1, "LEAKED1", "k3").accepted
    assert "LEAKED1" not in repr(store.audit) and "SAFE1" not in repr(store.audit)


def test_a_resumed_code_of_a_paused_campaign_still_answers_paused(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService
) -> None:
    campaign, code = create(campaigns, "BOTH1")
    assert campaign.id is not None and code.id is not None
    codes.set_status(code.id, PAUSED, actor=ACTOR)
    campaigns.set_status(campaign.id, PAUSED, actor=ACTOR)
    assert codes.set_status(code.id, ACTIVE, actor=ACTOR).status is ACTIVE
    assert redemptions.redeem(1, "BOTH1", "k").result is RedeemResult.PAUSED


@pytest.mark.parametrize("status", [ACTIVE, PAUSED])
def test_same_state_request_on_a_code_is_a_no_op_without_an_audit_row(
    campaigns: CampaignService, codes: CodeService, clock: ManualClock, store: MemoryStore, status: CampaignStatus
) -> None:
    _, code = create(campaigns, "SAME1")
    assert code.id is not None
    if status is PAUSED:
        code = codes.set_status(code.id, PAUSED, actor=ACTOR)
    assert code.id is not None
    clock.advance(hours=1)
    before = tables(store)
    assert codes.set_status(code.id, status, actor=ACTOR) == code
    assert tables(store) == before


@pytest.mark.parametrize("frozen", [DEPLETED, EXPIRED])
@pytest.mark.parametrize("target", [ACTIVE, PAUSED])
def test_nothing_leaves_a_depleted_or_expired_code(
    campaigns: CampaignService, codes: CodeService, store: MemoryStore, frozen: CampaignStatus,
    target: CampaignStatus,
) -> None:
    _, code = create(campaigns, "FROZEN1")
    assert code.id is not None
    force_code(store, code, frozen)
    before = tables(store)
    with pytest.raises(InvalidTransition) as exc:
        codes.set_status(code.id, target, actor=ACTOR)
    assert exc.value.code == "INVALID_TRANSITION"
    assert exc.value.details == {"from": frozen.value, "to": target.value}
    assert tables(store) == before


def test_resuming_a_code_is_refused_past_its_campaigns_valid_until(
    campaigns: CampaignService, codes: CodeService, clock: ManualClock, store: MemoryStore
) -> None:
    campaign, code = create(campaigns, "LATE1", valid_until=clock.now() + timedelta(hours=1))
    assert campaign.id is not None and code.id is not None
    codes.set_status(code.id, PAUSED, actor=ACTOR)
    clock.advance(hours=1)
    before = tables(store)
    with pytest.raises(InvalidTransition) as exc:
        codes.set_status(code.id, ACTIVE, actor=ACTOR)
    assert "valid_until" in exc.value.message
    assert tables(store) == before
    # An extended campaign carries its new valid_until onto the code, and the resume goes through.
    campaigns.change(campaign.id, CampaignChanges(valid_until=clock.now() + timedelta(days=1)), actor=ACTOR)
    assert codes.set_status(code.id, ACTIVE, actor=ACTOR).status is ACTIVE


def test_resuming_a_code_is_refused_at_its_own_cap(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    _, code = create(campaigns, "ONCE1", code_cap=1)
    assert code.id is not None
    assert redemptions.redeem(1, "ONCE1", "k1").accepted
    codes.set_status(code.id, PAUSED, actor=ACTOR)  # pausing a used-up code is fine
    before = tables(store)
    with pytest.raises(InvalidTransition) as exc:
        codes.set_status(code.id, ACTIVE, actor=ACTOR)
    assert "capacity" in exc.value.message
    assert tables(store) == before


def test_a_code_transition_validates_status_and_reason(
    campaigns: CampaignService, codes: CodeService, store: MemoryStore
) -> None:
    _, code = create(campaigns, "CHECK1")
    assert code.id is not None
    before = tables(store)
    with pytest.raises(ValidationError) as exc:
        codes.set_status(code.id, DEPLETED, actor=ACTOR)
    assert field_errors(exc) == {"status"}
    with pytest.raises(ValidationError) as exc:
        codes.set_status(code.id, PAUSED, actor=ACTOR, reason="r" * 501)
    assert field_errors(exc) == {"reason"}
    with pytest.raises(NotFound):
        codes.set_status(999, PAUSED, actor=ACTOR)
    assert tables(store) == before


# --- lookup (support) ---------------------------------------------------------------------------------------


def test_lookup_finds_a_typed_code_and_its_campaign_and_records_nothing(
    campaigns: CampaignService, codes: CodeService, redemptions: RedemptionService, store: MemoryStore
) -> None:
    campaign, _ = create(campaigns, "HELPME1")
    [code] = add_codes(codes, campaign, "HELPME2")
    assert redemptions.redeem(1, "HELPME2", "k1").accepted
    before = tables(store)
    found = codes.lookup(" help-me 2 ")
    assert found.code.id == code.id and found.code.used_total == 1
    assert found.campaign.id == campaign.id and found.campaign.used_total == 1
    # No attempt (it is not a redeem: it must not feed the throttle or the guard), no audit row.
    assert tables(store) == before


def test_lookup_finds_a_code_stored_under_a_previous_pepper(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, store: MemoryStore
) -> None:
    old = CodeHasher("pepper-2025")
    campaign, code = CampaignService(uow_factory, clock, old).create(DISCOUNT, actor=ACTOR, code="ROTATE1")
    assert code is not None and code.code_hash == hmac_hash("pepper-2025", "ROTATE1")
    before = tables(store)
    rotated = CodeService(uow_factory, clock, CodeHasher("pepper-2026", ("pepper-2025",)))
    found = rotated.lookup("rotate1")
    assert (found.code.id, found.campaign.id) == (code.id, campaign.id)
    assert tables(store) == before
    with pytest.raises(NotFound):
        CodeService(uow_factory, clock, CodeHasher("pepper-2026")).lookup("ROTATE1")
    assert tables(store) == before


@pytest.mark.parametrize("raw", ["ab", "AB!CD", "A" * 257])
def test_lookup_of_a_malformed_code_is_a_validation_error_recording_nothing(
    codes: CodeService, store: MemoryStore, raw: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        codes.lookup(raw)
    assert field_errors(exc) == {"code"}
    assert store.attempts == [] and store.audit == []


def test_lookup_of_an_unknown_code_is_not_found_recording_nothing(codes: CodeService, store: MemoryStore) -> None:
    with pytest.raises(NotFound):
        codes.lookup("NOSUCH99")
    assert store.attempts == [] and store.audit == []
