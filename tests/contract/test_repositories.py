"""One contract for every repository adapter: the same tests on memory, SQLite and PostgreSQL.

Each test states a rule of the ports (ports/repositories.py) that the domain relies on.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from domain.errors import (
    DuplicateCampaignName,
    DuplicateChargeId,
    DuplicateCodeHash,
    DuplicateIdempotencyKey,
    LiveRedemptionExists,
    OpenPurchaseExists,
    UserSlotTaken,
)
from domain.model import (
    AuditFilter,
    CampaignChanges,
    CampaignFilter,
    CampaignStatus,
    CodeFilter,
    Entitlement,
    HourCount,
    LedgerEntry,
    LedgerSource,
    PausedReason,
    PromoCode,
    PromoType,
    PurchaseStatus,
    RedeemResult,
    RedeemSnapshot,
    RedemptionStatus,
    TargetScope,
)
from domain.redemption import snapshot_by_parts
from tests.builders import (
    Factory,
    make_attempt,
    make_audit_entry,
    make_campaign,
    make_code,
    make_grant_campaign,
    make_grant_redemption,
    make_purchase,
    make_redemption,
    make_stars_campaign,
    store_campaign,
    store_campaign_with_code,
    store_code,
)
from tests.conftest import T0

LATER = T0 + timedelta(hours=1)
ALL_ZERO = dict.fromkeys(RedemptionStatus, 0)


def ids(rows: Sequence[Any]) -> list[int]:
    """The ids of stored rows, in the order given."""
    return [int(row.id) for row in rows]


def paused(**changes: Any) -> dict[str, Any]:
    """The fields of a row paused by hand."""
    return {"status": CampaignStatus.PAUSED, "paused_reason": PausedReason.MANUAL, **changes}


# --- promo_campaigns --------------------------------------------------------------------------------------


def test_a_campaign_reads_back_exactly_as_written_with_utc_timestamps(uow_factory: Factory) -> None:
    percent = store_campaign(uow_factory)
    grant = store_campaign(uow_factory, make_grant_campaign(max_total_uses=100, used_total=100, per_user_limit=5))
    stars = store_campaign(uow_factory, make_stars_campaign(
        target_scope=TargetScope.FIRST_PURCHASE_ONLY, applicable_products=("PREMIUM_7D",), **paused()))
    with uow_factory() as uow:
        for written in (percent, grant, stars):
            assert written.id is not None
            assert uow.campaigns.get(written.id) == written
        read = uow.campaigns.get(percent.id or 0)
        assert read is not None and read.valid_from.utcoffset() == timedelta(0)
        assert uow.campaigns.get(10_000) is None


def test_a_campaign_is_found_by_its_exact_name_and_many_by_id(uow_factory: Factory) -> None:
    spring = store_campaign(uow_factory)
    gift = store_campaign(uow_factory, make_grant_campaign("Gift"))
    with uow_factory() as uow:
        assert uow.campaigns.get_by_name("Gift") == gift
        assert uow.campaigns.get_by_name("gift") is None
        assert uow.campaigns.get_by_name("Spring") is None
        assert uow.campaigns.get_many([gift.id or 0, 10_000, spring.id or 0]) == {
            gift.id: gift, spring.id: spring}
        assert uow.campaigns.get_many([]) == {}


def test_timestamps_in_other_zones_are_stored_as_the_same_instant(uow_factory: Factory) -> None:
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    c = store_campaign(uow_factory, make_campaign(valid_from=plus_two))
    with uow_factory() as uow:
        read = uow.campaigns.get(c.id or 0)
    assert read is not None and read.valid_from == T0


def test_a_second_campaign_with_the_same_name_is_refused_and_nothing_is_kept(uow_factory: Factory) -> None:
    first = store_campaign(uow_factory)
    with uow_factory() as uow, pytest.raises(DuplicateCampaignName):
        uow.campaigns.add(make_grant_campaign("Spring sale"))
    with uow_factory() as uow:
        assert uow.campaigns.search(CampaignFilter(), 10, None) == [first]


def test_campaign_search_lists_newest_first_and_pages_below_a_cursor(uow_factory: Factory) -> None:
    a, b, c = (store_campaign(uow_factory, make_campaign(name)) for name in ("A", "B", "C"))
    with uow_factory() as uow:
        search = uow.campaigns.search
        assert search(CampaignFilter(), 10, None) == [c, b, a]
        assert search(CampaignFilter(), 2, None) == [c, b]
        assert search(CampaignFilter(), 2, b.id) == [a]
        assert search(CampaignFilter(), 2, a.id) == []


def test_campaign_search_filters_by_status_type_and_a_literal_case_insensitive_name_part(
        uow_factory: Factory) -> None:
    a = store_campaign(uow_factory, make_campaign("Spring 100% sale"))
    b = store_campaign(uow_factory, make_grant_campaign("Winter"))
    c = store_campaign(uow_factory, make_campaign("spring_b", **paused()))
    with uow_factory() as uow:
        search = uow.campaigns.search
        assert search(CampaignFilter(name_contains="SPRING"), 10, None) == [c, a]
        assert search(CampaignFilter(name_contains="100%"), 10, None) == [a]
        assert search(CampaignFilter(name_contains="g_b"), 10, None) == [c]
        assert search(CampaignFilter(name_contains="%"), 10, None) == [a]
        assert search(CampaignFilter(status=CampaignStatus.PAUSED), 10, None) == [c]
        assert search(CampaignFilter(promo_type=PromoType.PREMIUM_GRANT), 10, None) == [b]
        assert search(CampaignFilter(status=CampaignStatus.ACTIVE, name_contains="spring"), 10, None) == [a]
        assert search(CampaignFilter(name_contains="spring"), 10, c.id) == [a]


def test_campaign_set_status_moves_only_from_an_expected_state_and_keeps_a_reason_only_while_paused(
        uow_factory: Factory) -> None:
    c = store_campaign(uow_factory)
    cid = c.id or 0
    with uow_factory() as uow:
        campaigns = uow.campaigns
        assert campaigns.set_status(cid, [CampaignStatus.PAUSED], CampaignStatus.ACTIVE, None, LATER) is None
        moved = campaigns.set_status(cid, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED,
                                     PausedReason.AUTO_BRUTEFORCE, LATER)
        assert moved == attrs.evolve(c, status=CampaignStatus.PAUSED, paused_reason=PausedReason.AUTO_BRUTEFORCE,
                                     updated_at=LATER)
        active = campaigns.set_status(cid, [CampaignStatus.PAUSED], CampaignStatus.ACTIVE, PausedReason.MANUAL,
                                      LATER)
        assert active is not None and active.status is CampaignStatus.ACTIVE and active.paused_reason is None
        assert campaigns.set_status(999, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED, None, LATER) is None
        uow.commit()
    with uow_factory() as uow:
        assert uow.campaigns.get(cid) == active


def test_a_campaign_change_sets_the_given_fields_and_leaves_the_others(uow_factory: Factory) -> None:
    c = store_campaign(uow_factory, make_campaign(max_total_uses=10, used_total=4))
    cid = c.id or 0
    with uow_factory() as uow:
        renamed = uow.campaigns.change(cid, CampaignChanges(name="Summer sale", valid_until=None), LATER)
        assert renamed == attrs.evolve(c, name="Summer sale", valid_until=None, updated_at=LATER)
        at_used = uow.campaigns.change(cid, CampaignChanges(max_total_uses=4, per_user_limit=3), LATER)
        assert at_used == attrs.evolve(renamed, max_total_uses=4, per_user_limit=3)
        unlimited = uow.campaigns.change(cid, CampaignChanges(max_total_uses=None), LATER)
        assert unlimited == attrs.evolve(at_used, max_total_uses=None)
        uow.commit()
    with uow_factory() as uow:
        assert uow.campaigns.get(cid) == unlimited
        assert uow.campaigns.get_by_name("Summer sale") == unlimited
        assert uow.campaigns.get_by_name("Spring sale") is None


def test_a_budget_below_used_total_changes_nothing(uow_factory: Factory) -> None:
    c = store_campaign(uow_factory, make_campaign(max_total_uses=10, used_total=4))
    with uow_factory() as uow:
        refused = uow.campaigns.change(c.id or 0, CampaignChanges(name="Other", max_total_uses=3, per_user_limit=5),
                                       LATER)
        assert refused is None
        assert uow.campaigns.get(c.id or 0) == c
        assert uow.campaigns.get_by_name("Other") is None
        assert uow.campaigns.change(10_000, CampaignChanges(name="Missing"), LATER) is None
        uow.commit()
    with uow_factory() as uow:
        assert uow.campaigns.get(c.id or 0) == c


def test_renaming_a_campaign_to_a_taken_name_raises_duplicate_campaign_name_and_a_freed_name_is_free(
        uow_factory: Factory) -> None:
    a = store_campaign(uow_factory, make_campaign("A"))
    b = store_campaign(uow_factory, make_campaign("B"))
    with uow_factory() as uow, pytest.raises(DuplicateCampaignName):
        uow.campaigns.change(b.id or 0, CampaignChanges(name="A"), LATER)
    with uow_factory() as uow:
        assert uow.campaigns.get(b.id or 0) == b
        # Its own name is no clash.
        assert uow.campaigns.change(b.id or 0, CampaignChanges(name="B", per_user_limit=2), LATER) is not None
        assert uow.campaigns.change(a.id or 0, CampaignChanges(name="A2"), LATER) is not None
        uow.commit()
    with uow_factory() as uow:
        moved = uow.campaigns.change(b.id or 0, CampaignChanges(name="A"), LATER)
        assert moved is not None and moved.name == "A"
        again = uow.campaigns.add(make_campaign("B"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.campaigns.get_by_name("A") == moved
        assert uow.campaigns.get_by_name("B") == again
        assert uow.campaigns.get_by_name("A2") == attrs.evolve(a, name="A2", updated_at=LATER)


def test_campaign_releases_give_units_back_and_never_go_below_zero(uow_factory: Factory) -> None:
    a = store_campaign(uow_factory, make_campaign("A", used_total=3))
    b = store_campaign(uow_factory, make_campaign("B", used_total=1))
    with uow_factory() as uow:
        uow.campaigns.release_capacity_many({b.id or 0: 5, a.id or 0: 2}, LATER)
        uow.campaigns.release_capacity_many({}, LATER)
        uow.commit()
    with uow_factory() as uow:
        assert (uow.campaigns.get(a.id or 0) or a).used_total == 1
        assert (uow.campaigns.get(b.id or 0) or b).used_total == 0


def test_campaigns_due_for_expiry_are_the_active_or_paused_ones_past_valid_until(uow_factory: Factory) -> None:
    end = T0 + timedelta(minutes=1)
    past = store_campaign(uow_factory, make_campaign("past", valid_until=end))
    paused_past = store_campaign(uow_factory, make_campaign("paused", valid_until=end, **paused()))
    store_campaign(uow_factory, make_campaign("open-ended", valid_until=None))
    store_campaign(uow_factory, make_campaign("later", valid_until=end + timedelta(seconds=1)))
    store_campaign(uow_factory, make_campaign("expired", valid_until=end, status=CampaignStatus.EXPIRED))
    store_campaign(uow_factory, make_campaign("depleted", valid_until=end, status=CampaignStatus.DEPLETED))
    with uow_factory() as uow:
        assert sorted(ids(uow.campaigns.due_for_expiry(end, 10))) == [past.id, paused_past.id]
        assert len(uow.campaigns.due_for_expiry(end, 1)) == 1
        assert uow.campaigns.due_for_expiry(end - timedelta(microseconds=1), 10) == []


def test_a_campaign_is_due_for_depletion_once_its_budget_is_used_up_and_none_of_its_codes_holds_a_reservation(
        uow_factory: Factory) -> None:
    used_up, used_up_code = store_campaign_with_code(
        uow_factory, make_campaign("used up", max_total_uses=1, used_total=1), "a" * 64)
    held, _ = store_campaign_with_code(uow_factory, make_campaign("held", max_total_uses=2, used_total=2), "b" * 64)
    held_code = store_code(uow_factory, make_code(held, "c" * 64))
    store_campaign_with_code(uow_factory, make_campaign("room", max_total_uses=2, used_total=1), "d" * 64)
    store_campaign_with_code(uow_factory, make_campaign("unlimited", used_total=5), "e" * 64)
    store_campaign_with_code(uow_factory, make_campaign("paused", max_total_uses=1, used_total=1, **paused()),
                             "f" * 64)
    with uow_factory() as uow:
        uow.redemptions.add(make_redemption(used_up_code, user_id=1, key="applied", status=RedemptionStatus.APPLIED))
        reservation = uow.redemptions.add(make_redemption(held_code, user_id=2, key="reserved"))
        uow.commit()
    with uow_factory() as uow:
        assert ids(uow.campaigns.due_for_depletion(10)) == [used_up.id]
        assert uow.redemptions.expire(reservation.id or 0, T0 + timedelta(minutes=15)) is not None
        assert sorted(ids(uow.campaigns.due_for_depletion(10))) == [used_up.id, held.id]
        assert len(uow.campaigns.due_for_depletion(1)) == 1


def test_active_with_code_prefix_finds_each_active_campaign_owning_such_a_code_in_any_status(
        uow_factory: Factory) -> None:
    a, _ = store_campaign_with_code(uow_factory, make_campaign("a"), "1" * 64, code_prefix="ABCD")
    store_code(uow_factory, make_code(a, "2" * 64, code_prefix="ABCD"))
    b, _ = store_campaign_with_code(uow_factory, make_campaign("b"), "3" * 64, code_prefix="ABCD",
                                    status=CampaignStatus.DEPLETED)
    store_campaign_with_code(uow_factory, make_campaign("paused", **paused()), "4" * 64, code_prefix="ABCD")
    store_campaign_with_code(uow_factory, make_campaign("other prefix"), "5" * 64, code_prefix="ZZZZ")
    with uow_factory() as uow:
        assert sorted(ids(uow.campaigns.active_with_code_prefix("ABCD"))) == [a.id, b.id]
        assert uow.campaigns.active_with_code_prefix("QQQQ") == []


def test_paused_campaigns_are_counted_and_since_a_moment_only_those_paused_since(uow_factory: Factory) -> None:
    store_campaign(uow_factory, make_campaign("early", **paused(updated_at=T0)))
    store_campaign(uow_factory, make_campaign("late", **paused(paused_reason=PausedReason.AUTO_BRUTEFORCE,
                                                               updated_at=LATER)))
    store_campaign(uow_factory, make_campaign("active", updated_at=LATER))
    with uow_factory() as uow:
        assert uow.campaigns.count_paused() == 2
        assert uow.campaigns.count_paused(LATER) == 1
        assert uow.campaigns.count_paused(LATER + timedelta(microseconds=1)) == 0


def test_code_counts_give_every_status_of_each_campaign_zeros_included(uow_factory: Factory) -> None:
    busy = store_campaign(uow_factory, make_campaign("busy"))
    empty = store_campaign(uow_factory, make_campaign("empty"))
    other = store_campaign(uow_factory, make_campaign("other"))
    with uow_factory() as uow:
        uow.promo_codes.add_many([
            make_code(busy, "1" * 64), make_code(busy, "2" * 64),
            make_code(busy, "3" * 64, **paused()),
            make_code(busy, "4" * 64, status=CampaignStatus.DEPLETED, max_total_uses=1, used_total=1),
            make_code(other, "5" * 64),
        ])
        uow.commit()
    with uow_factory() as uow:
        assert uow.campaigns.code_counts([busy.id or 0, empty.id or 0]) == {
            busy.id: {CampaignStatus.ACTIVE: 2, CampaignStatus.PAUSED: 1, CampaignStatus.EXPIRED: 0,
                      CampaignStatus.DEPLETED: 1},
            empty.id: dict.fromkeys(CampaignStatus, 0),
        }
        assert uow.campaigns.code_counts([]) == {}


# --- promo_codes ------------------------------------------------------------------------------------------


def test_a_code_reads_back_exactly_as_written_with_its_campaigns_copies(uow_factory: Factory) -> None:
    campaign, code = store_campaign_with_code(uow_factory)
    capped = store_code(uow_factory, make_code(campaign, "b" * 64, code_prefix="BBBB", max_total_uses=1,
                                               used_total=1, **paused(updated_at=LATER)))
    with uow_factory() as uow:
        assert uow.promo_codes.get(code.id or 0) == code
        assert uow.promo_codes.get(capped.id or 0) == capped
        assert uow.promo_codes.get(10_000) is None
    assert code.campaign_id == campaign.id
    assert (code.campaign_name, code.promo_type, code.target_scope, code.valid_from, code.valid_until) == (
        campaign.name, campaign.promo_type, campaign.target_scope, campaign.valid_from, campaign.valid_until)


def test_a_second_code_with_the_same_hash_is_refused_and_nothing_is_kept(uow_factory: Factory) -> None:
    _, first = store_campaign_with_code(uow_factory)
    other = store_campaign(uow_factory, make_campaign("other"))
    with uow_factory() as uow, pytest.raises(DuplicateCodeHash):
        uow.promo_codes.add(make_code(other))
    with uow_factory() as uow:
        assert uow.promo_codes.search(CodeFilter(), 10, None) == [first]


def test_uncommitted_work_is_rolled_back(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        campaign = uow.campaigns.add(make_campaign())
        uow.promo_codes.add(make_code(campaign))
        uow.audit.add(make_audit_entry())
    with uow_factory() as uow:
        assert uow.campaigns.search(CampaignFilter(), 10, None) == []
        assert uow.campaigns.get_by_name("Spring sale") is None
        assert uow.promo_codes.search(CodeFilter(), 10, None) == []
        assert uow.promo_codes.existing_hashes(["a" * 64]) == set()
        assert uow.audit.search(AuditFilter(), 10, None) == []


def test_add_many_returns_ids_in_input_order_and_sees_its_own_rows(uow_factory: Factory) -> None:
    campaign = store_campaign(uow_factory)
    hashes = [f"{i:064x}" for i in range(1, 1201)]
    with uow_factory() as uow:
        ids_ = uow.promo_codes.add_many([make_code(campaign, h) for h in hashes])
        assert len(ids_) == len(set(ids_)) == 1200
        assert uow.promo_codes.existing_hashes([*hashes[:5], "f" * 64]) == set(hashes[:5])
        uow.commit()
    with uow_factory() as uow:
        for i in (0, 599, 1199):
            got = uow.promo_codes.get(ids_[i])
            assert got is not None and got.code_hash == hashes[i]
        assert len(uow.promo_codes.existing_hashes(hashes)) == 1200


def test_add_many_with_a_stored_or_repeated_hash_inserts_nothing(uow_factory: Factory) -> None:
    campaign, _ = store_campaign_with_code(uow_factory)
    with uow_factory() as uow, pytest.raises(DuplicateCodeHash):
        uow.promo_codes.add_many([make_code(campaign, "c" * 64), make_code(campaign, "a" * 64)])
    with uow_factory() as uow, pytest.raises(DuplicateCodeHash):
        uow.promo_codes.add_many([make_code(campaign, "d" * 64), make_code(campaign, "d" * 64)])
    with uow_factory() as uow:
        assert uow.promo_codes.existing_hashes(["c" * 64, "d" * 64]) == set()


def test_get_by_hashes_prefers_the_first_hash_given(uow_factory: Factory) -> None:
    campaign, a = store_campaign_with_code(uow_factory)
    b = store_code(uow_factory, make_code(campaign, "b" * 64))
    with uow_factory() as uow:
        assert uow.promo_codes.get_by_hashes(["b" * 64, "a" * 64]) == b
        assert uow.promo_codes.get_by_hashes(["0" * 64, "a" * 64]) == a
        assert uow.promo_codes.get_by_hashes(["0" * 64]) is None
        assert uow.promo_codes.get_by_hashes([]) is None


def test_code_search_filters_by_campaign_status_and_prefix_start_and_pages_by_id(uow_factory: Factory) -> None:
    one = store_campaign(uow_factory, make_campaign("one"))
    two = store_campaign(uow_factory, make_campaign("two"))
    abcd = store_code(uow_factory, make_code(one, "1" * 64, code_prefix="ABCD"))
    abxy = store_code(uow_factory, make_code(one, "2" * 64, code_prefix="ABXY", **paused()))
    zzzz = store_code(uow_factory, make_code(one, "3" * 64, code_prefix="ZZZZ"))
    abcd_two = store_code(uow_factory, make_code(two, "4" * 64, code_prefix="ABCD"))
    with uow_factory() as uow:
        search = uow.promo_codes.search
        assert search(CodeFilter(), 10, None) == [abcd, abxy, zzzz, abcd_two]
        assert search(CodeFilter(), 2, None) == [abcd, abxy]
        assert search(CodeFilter(), 2, abxy.id) == [zzzz, abcd_two]
        assert search(CodeFilter(campaign_id=one.id), 10, None) == [abcd, abxy, zzzz]
        assert search(CodeFilter(status=CampaignStatus.PAUSED), 10, None) == [abxy]
        assert search(CodeFilter(code_prefix="ABCD"), 10, None) == [abcd, abcd_two]
        assert search(CodeFilter(campaign_id=one.id, code_prefix="AB"), 10, None) == [abcd, abxy]
        assert search(CodeFilter(campaign_id=two.id, status=CampaignStatus.PAUSED), 10, None) == []


def test_code_set_status_moves_only_from_an_expected_state(uow_factory: Factory) -> None:
    campaign, code = store_campaign_with_code(uow_factory)
    pid = code.id or 0
    with uow_factory() as uow:
        codes = uow.promo_codes
        assert codes.set_status(pid, [CampaignStatus.PAUSED], CampaignStatus.ACTIVE, None, LATER) is None
        moved = codes.set_status(pid, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED, PausedReason.AUTO_BRUTEFORCE,
                                 LATER)
        assert moved == attrs.evolve(code, status=CampaignStatus.PAUSED, paused_reason=PausedReason.AUTO_BRUTEFORCE,
                                     updated_at=LATER)
        active = codes.set_status(pid, [CampaignStatus.PAUSED], CampaignStatus.ACTIVE, PausedReason.MANUAL, LATER)
        assert active is not None and active.paused_reason is None
        assert codes.set_status(999, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED, None, LATER) is None
        assert uow.campaigns.get(campaign.id or 0) == campaign  # a code's status is its own
        uow.commit()


def test_expire_for_campaign_expires_only_that_campaigns_active_and_paused_codes(uow_factory: Factory) -> None:
    one, active = store_campaign_with_code(uow_factory, make_campaign("one"), "1" * 64)
    paused_code = store_code(uow_factory, make_code(one, "2" * 64, **paused()))
    depleted = store_code(uow_factory, make_code(one, "3" * 64, status=CampaignStatus.DEPLETED))
    _, elsewhere = store_campaign_with_code(uow_factory, make_campaign("two"), "4" * 64)
    with uow_factory() as uow:
        assert uow.promo_codes.expire_for_campaign(one.id or 0, LATER) == 2
        expired = attrs.evolve(active, status=CampaignStatus.EXPIRED, updated_at=LATER)
        assert uow.promo_codes.get(active.id or 0) == expired
        assert uow.promo_codes.get(paused_code.id or 0) == attrs.evolve(
            paused_code, status=CampaignStatus.EXPIRED, paused_reason=None, updated_at=LATER)
        assert uow.promo_codes.get(depleted.id or 0) == depleted
        assert uow.promo_codes.get(elsewhere.id or 0) == elsewhere
        assert uow.promo_codes.expire_for_campaign(one.id or 0, LATER) == 0
        uow.commit()


def test_copy_campaign_fields_sets_the_name_and_end_on_every_code_of_the_campaign(uow_factory: Factory) -> None:
    one, first = store_campaign_with_code(uow_factory, make_campaign("one"), "1" * 64)
    second = store_code(uow_factory, make_code(one, "2" * 64, status=CampaignStatus.DEPLETED))
    _, elsewhere = store_campaign_with_code(uow_factory, make_campaign("two"), "3" * 64)
    empty = store_campaign(uow_factory, make_campaign("empty"))
    new_end = T0 + timedelta(days=90)
    with uow_factory() as uow:
        assert uow.promo_codes.copy_campaign_fields(one.id or 0, "renamed", new_end, LATER) == 2
        for code in (first, second):
            assert uow.promo_codes.get(code.id or 0) == attrs.evolve(
                code, campaign_name="renamed", valid_until=new_end, updated_at=LATER)
        assert uow.promo_codes.copy_campaign_fields(one.id or 0, "renamed", None, LATER) == 2
        assert (uow.promo_codes.get(first.id or 0) or first).valid_until is None
        assert uow.promo_codes.get(elsewhere.id or 0) == elsewhere
        assert uow.promo_codes.copy_campaign_fields(empty.id or 0, "x", None, LATER) == 0
        assert uow.campaigns.get(one.id or 0) == one  # the campaign row is the caller's
        uow.commit()


def test_a_claim_takes_one_unit_from_the_code_and_its_campaign_together(uow_factory: Factory) -> None:
    campaign, code = store_campaign_with_code(uow_factory, make_campaign(max_total_uses=5), max_total_uses=2)
    with uow_factory() as uow:
        claimed = uow.promo_codes.claim_capacity(code.id or 0, LATER)
        assert claimed == (attrs.evolve(code, used_total=1, updated_at=LATER),
                           attrs.evolve(campaign, used_total=1, updated_at=LATER))
        uow.commit()
    with uow_factory() as uow:
        assert (uow.promo_codes.get(code.id or 0), uow.campaigns.get(campaign.id or 0)) == claimed
    _, unlimited = store_campaign_with_code(uow_factory, make_campaign("unlimited"), "b" * 64)
    with uow_factory() as uow:
        for n in range(1, 6):
            got = uow.promo_codes.claim_capacity(unlimited.id or 0, T0)
            assert got is not None and got[0].used_total == got[1].used_total == n


def test_claim_takes_nothing_when_the_code_cap_is_used_up(uow_factory: Factory) -> None:
    campaign, code = store_campaign_with_code(uow_factory, make_campaign(max_total_uses=10), max_total_uses=1)
    with uow_factory() as uow:
        assert uow.promo_codes.claim_capacity(code.id or 0, T0) is not None
        assert uow.promo_codes.claim_capacity(code.id or 0, LATER) is None
        uow.commit()
    with uow_factory() as uow:
        assert uow.promo_codes.get(code.id or 0) == attrs.evolve(code, used_total=1, updated_at=T0)
        assert uow.campaigns.get(campaign.id or 0) == attrs.evolve(campaign, used_total=1, updated_at=T0)


def test_claim_takes_nothing_when_the_campaign_budget_is_used_up(uow_factory: Factory) -> None:
    campaign, first = store_campaign_with_code(uow_factory, make_campaign(max_total_uses=1), "a" * 64)
    second = store_code(uow_factory, make_code(campaign, "b" * 64, max_total_uses=5))
    with uow_factory() as uow:
        assert uow.promo_codes.claim_capacity(first.id or 0, T0) is not None
        assert uow.promo_codes.claim_capacity(second.id or 0, LATER) is None
        uow.commit()
    with uow_factory() as uow:
        assert uow.promo_codes.get(second.id or 0) == second
        assert uow.campaigns.get(campaign.id or 0) == attrs.evolve(campaign, used_total=1, updated_at=T0)


@pytest.mark.parametrize("campaign_status", [CampaignStatus.PAUSED, CampaignStatus.EXPIRED, CampaignStatus.DEPLETED])
def test_claim_takes_nothing_while_the_campaign_is_not_active(uow_factory: Factory,
                                                              campaign_status: CampaignStatus) -> None:
    reason = PausedReason.MANUAL if campaign_status is CampaignStatus.PAUSED else None
    campaign, code = store_campaign_with_code(
        uow_factory, make_campaign(status=campaign_status, paused_reason=reason, max_total_uses=10))
    with uow_factory() as uow:
        assert uow.promo_codes.claim_capacity(code.id or 0, LATER) is None
        assert uow.promo_codes.get(code.id or 0) == code
        assert uow.campaigns.get(campaign.id or 0) == campaign


def test_claim_takes_nothing_while_the_code_is_not_active_or_missing(uow_factory: Factory) -> None:
    campaign, code = store_campaign_with_code(uow_factory, make_campaign(max_total_uses=10), **paused())
    with uow_factory() as uow:
        assert uow.promo_codes.claim_capacity(code.id or 0, LATER) is None
        assert uow.promo_codes.claim_capacity(10_000, LATER) is None
        assert uow.promo_codes.get(code.id or 0) == code
        assert uow.campaigns.get(campaign.id or 0) == campaign


def test_racing_claims_on_many_codes_never_overrun_the_campaign_budget(uow_factory: Factory) -> None:
    campaign = store_campaign(uow_factory, make_campaign(max_total_uses=3))
    codes = [store_code(uow_factory, make_code(campaign, f"{i:064x}")) for i in range(1, 9)]
    won: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(len(codes))

    def claim(code: PromoCode) -> None:
        start.wait()
        with uow_factory() as uow:
            got = uow.promo_codes.claim_capacity(code.id or 0, LATER)
            uow.commit()
        with lock:
            won.append(got is not None)

    threads = [threading.Thread(target=claim, args=(code,)) for code in codes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [False] * 5 + [True] * 3
    with uow_factory() as uow:
        assert (uow.campaigns.get(campaign.id or 0) or campaign).used_total == 3
        assert sum((uow.promo_codes.get(c.id or 0) or c).used_total for c in codes) == 3


def test_code_releases_never_go_below_zero_and_leave_the_campaign_alone(uow_factory: Factory) -> None:
    campaign, a = store_campaign_with_code(uow_factory, make_campaign(used_total=4), "a" * 64, used_total=3)
    b = store_code(uow_factory, make_code(campaign, "b" * 64, used_total=1))
    with uow_factory() as uow:
        uow.promo_codes.release_capacity_many({b.id or 0: 5, a.id or 0: 2}, LATER)
        uow.promo_codes.release_capacity_many({}, LATER)
        uow.commit()
    with uow_factory() as uow:
        assert (uow.promo_codes.get(a.id or 0) or a).used_total == 1
        assert (uow.promo_codes.get(b.id or 0) or b).used_total == 0
        assert uow.campaigns.get(campaign.id or 0) == campaign


def test_a_code_is_due_for_depletion_at_its_own_cap_once_none_of_its_redemptions_is_reserved(
        uow_factory: Factory) -> None:
    campaign, full = store_campaign_with_code(uow_factory, make_campaign(), "1" * 64, max_total_uses=1, used_total=1)
    held = store_code(uow_factory, make_code(campaign, "2" * 64, max_total_uses=1, used_total=1))
    store_code(uow_factory, make_code(campaign, "3" * 64, max_total_uses=2, used_total=1))
    store_code(uow_factory, make_code(campaign, "4" * 64, used_total=7))
    store_code(uow_factory, make_code(campaign, "5" * 64, max_total_uses=1, used_total=1, **paused()))
    with uow_factory() as uow:
        # A reservation of another code of the same campaign does not hold ``full`` back.
        reservation = uow.redemptions.add(make_redemption(held, user_id=2, key="reserved"))
        uow.redemptions.add(make_redemption(full, user_id=1, key="applied", status=RedemptionStatus.APPLIED,
                                            user_slot=2))
        uow.commit()
    with uow_factory() as uow:
        assert ids(uow.promo_codes.due_for_depletion(10)) == [full.id]
        assert uow.redemptions.expire(reservation.id or 0, T0 + timedelta(minutes=15)) is not None
        assert sorted(ids(uow.promo_codes.due_for_depletion(10))) == [full.id, held.id]
        assert len(uow.promo_codes.due_for_depletion(1)) == 1


def test_guard_lookups_see_only_active_codes(uow_factory: Factory) -> None:
    campaign, a = store_campaign_with_code(uow_factory, make_campaign(), "a" * 64, code_prefix="ABCD")
    store_code(uow_factory, make_code(campaign, "b" * 64, code_prefix="ABCD", **paused(updated_at=LATER)))
    _, in_paused_campaign = store_campaign_with_code(uow_factory, make_campaign("paused", **paused()), "c" * 64)
    with uow_factory() as uow:
        assert uow.promo_codes.active_with_hashes(["a" * 64, "b" * 64, "0" * 64]) == [a]
        assert uow.promo_codes.active_with_hashes(["c" * 64]) == [in_paused_campaign]  # the code's own status
        assert uow.promo_codes.active_with_hashes([]) == []
        assert uow.promo_codes.count_paused() == 1
        assert uow.promo_codes.count_paused(LATER) == 1
        assert uow.promo_codes.count_paused(LATER + timedelta(hours=1)) == 0


# --- promo_redemptions ------------------------------------------------------------------------------------


def test_an_idempotency_key_is_unique(uow_factory: Factory) -> None:
    _, code = store_campaign_with_code(uow_factory)
    with uow_factory() as uow:
        stored = uow.redemptions.add(make_redemption(code))
        uow.commit()
    with uow_factory() as uow, pytest.raises(DuplicateIdempotencyKey):
        uow.redemptions.add(make_redemption(code, user_id=2))
    with uow_factory() as uow:
        assert uow.redemptions.get_by_idempotency_key("k1") == stored
        assert uow.redemptions.get(stored.id or 0) == stored
        assert stored.id is not None and attrs.evolve(stored, id=None) == make_redemption(code)


def test_a_stars_reservation_and_a_grant_read_back_exactly_as_written(uow_factory: Factory) -> None:
    _, stars = store_campaign_with_code(uow_factory, make_stars_campaign(per_user_limit=3), "a" * 64)
    _, grant = store_campaign_with_code(uow_factory, make_grant_campaign(), "b" * 64)
    with uow_factory() as uow:
        reservation = uow.redemptions.add(make_redemption(stars, discount_percent=None, discount_stars=40,
                                                          user_slot=3))
        given = uow.redemptions.add(make_grant_redemption(grant))
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.get(reservation.id or 0) == reservation
        assert uow.redemptions.get(given.id or 0) == given
    assert reservation.is_reservation and not given.is_reservation


def test_one_live_redemption_per_user_and_code_but_expired_ones_do_not_count(uow_factory: Factory) -> None:
    _, code = store_campaign_with_code(uow_factory, make_campaign(per_user_limit=5))
    with uow_factory() as uow:
        uow.redemptions.add(make_redemption(code, key="old", status=RedemptionStatus.EXPIRED))
        live = uow.redemptions.add(make_redemption(code, key="k1"))
        uow.commit()
    with uow_factory() as uow, pytest.raises(LiveRedemptionExists):
        # Another slot of the campaign: only the per-code rule refuses it.
        uow.redemptions.add(make_redemption(code, key="k2", status=RedemptionStatus.APPLIED, user_slot=2))
    with uow_factory() as uow:
        assert uow.redemptions.get_live(code.id or 0, 1) == live
        assert uow.redemptions.get_live(code.id or 0, 2) is None
        uow.redemptions.add(make_redemption(code, user_id=2, key="k3"))
        uow.commit()


def test_a_second_live_redemption_in_the_same_campaign_slot_raises_user_slot_taken_but_expired_ones_do_not_count(
        uow_factory: Factory) -> None:
    campaign, a = store_campaign_with_code(uow_factory, make_campaign(per_user_limit=2), "a" * 64)
    b = store_code(uow_factory, make_code(campaign, "b" * 64))
    c = store_code(uow_factory, make_code(campaign, "c" * 64))
    with uow_factory() as uow:
        uow.redemptions.add(make_redemption(a, key="gone", status=RedemptionStatus.EXPIRED))
        uow.redemptions.add(make_redemption(b, key="live"))  # slot 1: the expired one held it before
        uow.commit()
    with uow_factory() as uow, pytest.raises(UserSlotTaken):
        uow.redemptions.add(make_redemption(c, key="same-slot"))
    with uow_factory() as uow, pytest.raises(UserSlotTaken):
        uow.redemptions.add(make_redemption(a, key="same-slot-applied", status=RedemptionStatus.APPLIED))
    with uow_factory() as uow:
        assert uow.redemptions.get_by_idempotency_key("same-slot") is None
        uow.redemptions.add(make_redemption(c, key="second-slot", user_slot=2))
        uow.redemptions.add(make_redemption(c, user_id=2, key="other-user"))
        uow.redemptions.add(make_redemption(a, key="expired-again", status=RedemptionStatus.EXPIRED, user_slot=2))
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.held_slots(campaign.id or 0, 1) == (1, 2)
        assert uow.redemptions.held_slots(campaign.id or 0, 2) == (1,)


def test_the_same_slot_in_another_campaign_is_free(uow_factory: Factory) -> None:
    _, a = store_campaign_with_code(uow_factory, make_campaign("one"), "a" * 64)
    other, b = store_campaign_with_code(uow_factory, make_campaign("two"), "b" * 64)
    with uow_factory() as uow:
        uow.redemptions.add(make_redemption(a, key="one"))
        uow.redemptions.add(make_redemption(b, key="two"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.held_slots(other.id or 0, 1) == (1,)


def test_held_slots_are_the_users_live_slots_in_the_campaign_in_ascending_order(uow_factory: Factory) -> None:
    campaign, a = store_campaign_with_code(uow_factory, make_campaign(per_user_limit=5), "a" * 64)
    b, c, d = (store_code(uow_factory, make_code(campaign, h * 64)) for h in "bcd")
    with uow_factory() as uow:
        uow.redemptions.add(make_redemption(a, key="k4", user_slot=4))
        uow.redemptions.add(make_redemption(b, key="k1", user_slot=1, status=RedemptionStatus.REVOKED))
        uow.redemptions.add(make_redemption(c, key="k2", user_slot=2, status=RedemptionStatus.EXPIRED))
        uow.redemptions.add(make_redemption(d, key="k3", user_slot=3, status=RedemptionStatus.APPLIED))
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.held_slots(campaign.id or 0, 1) == (1, 3, 4)
        assert uow.redemptions.held_slots(campaign.id or 0, 2) == ()
        assert uow.redemptions.held_slots(10_000, 1) == ()


def test_a_reservation_binds_applies_and_revokes_only_from_the_right_state(uow_factory: Factory) -> None:
    _, code = store_campaign_with_code(uow_factory)
    soon = T0 + timedelta(minutes=1)
    with uow_factory() as uow:
        r = uow.redemptions.add(make_redemption(code))
        rid = r.id or 0
        bound = uow.redemptions.bind_purchase(rid, 7, soon)
        assert bound is not None and bound.purchase_id == 7
        assert uow.redemptions.bind_purchase(rid, 7, soon) is not None  # the same purchase again
        assert uow.redemptions.bind_purchase(rid, 8, soon) is None  # another purchase
        assert uow.redemptions.expire(rid, T0 + timedelta(hours=1)) is None  # bound: never expires
        uow.redemptions.unbind_purchase(rid, 8, soon)  # not the bound one: no change
        assert (uow.redemptions.get(rid) or r).purchase_id == 7
        uow.redemptions.unbind_purchase(rid, 7, soon)
        assert (uow.redemptions.get(rid) or r).purchase_id is None
        assert uow.redemptions.bind_purchase(rid, 9, T0 + timedelta(minutes=15)) is None  # past reserved_until
        applied = uow.redemptions.apply(rid, 9, soon)
        assert applied is not None and applied.status is RedemptionStatus.APPLIED
        assert applied.applied_purchase_id == 9 and applied.purchase_id == 9
        assert uow.redemptions.apply(rid, 9, soon) is None
        revoked = uow.redemptions.revoke(rid, soon)
        assert revoked is not None and revoked.status is RedemptionStatus.REVOKED and revoked.revoked_at == soon
        assert uow.redemptions.revoke(rid, soon) is None
        uow.commit()


def test_only_due_unbound_reservations_expire(uow_factory: Factory) -> None:
    _, code = store_campaign_with_code(uow_factory)
    _, stars_code = store_campaign_with_code(uow_factory, make_stars_campaign(), "b" * 64)
    due_at = T0 + timedelta(minutes=15)
    with uow_factory() as uow:
        a = uow.redemptions.add(make_redemption(code, user_id=1, key="a"))
        b = uow.redemptions.add(make_redemption(code, user_id=2, key="b"))
        c = uow.redemptions.add(make_redemption(code, user_id=3, key="c",
                                                reserved_until=due_at + timedelta(minutes=1)))
        uow.redemptions.add(make_grant_redemption(code, user_id=4, key="d"))
        stars = uow.redemptions.add(make_redemption(stars_code, user_id=5, key="e", discount_percent=None,
                                                    discount_stars=40, reserved_until=due_at + timedelta(hours=1)))
        uow.redemptions.bind_purchase(b.id or 0, 1, T0)
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.due_for_expiry(due_at - timedelta(seconds=1), 10) == []
        assert ids(uow.redemptions.due_for_expiry(due_at, 10)) == [a.id]
        assert uow.redemptions.expire(a.id or 0, due_at - timedelta(seconds=1)) is None
        expired = uow.redemptions.expire(a.id or 0, due_at)
        assert expired is not None and expired.status is RedemptionStatus.EXPIRED
        assert uow.redemptions.expire(a.id or 0, due_at) is None
        assert ids(uow.redemptions.due_for_expiry(due_at + timedelta(hours=1), 10)) == [c.id, stars.id]
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.count_by_status(code.id or 0) == {
            RedemptionStatus.RESERVED: 2, RedemptionStatus.APPLIED: 1,
            RedemptionStatus.EXPIRED: 1, RedemptionStatus.REVOKED: 0,
        }
        assert uow.redemptions.count_by_status(stars_code.id or 0)[RedemptionStatus.RESERVED] == 1
        assert uow.redemptions.count_created(T0, T0 + timedelta(seconds=1), False) == 5
        assert uow.redemptions.count_created(T0, T0 + timedelta(seconds=1), True) == 4  # Stars off counts too
        assert uow.redemptions.count_created(T0 + timedelta(seconds=1), T0 + timedelta(hours=1), False) == 0


def test_applied_reservations_are_counted_in_their_creation_window(uow_factory: Factory) -> None:
    _, code = store_campaign_with_code(uow_factory)
    _, stars_code = store_campaign_with_code(uow_factory, make_stars_campaign(), "b" * 64)
    with uow_factory() as uow:
        r = uow.redemptions.add(make_redemption(code))
        uow.redemptions.add(make_redemption(code, user_id=2, key="k2"))
        s = uow.redemptions.add(make_redemption(stars_code, user_id=3, key="k3", discount_percent=None,
                                                discount_stars=40))
        uow.redemptions.add(make_grant_redemption(code, user_id=4, key="k4"))
        uow.redemptions.apply(r.id or 0, 5, T0)
        uow.redemptions.apply(s.id or 0, 6, T0)
        uow.redemptions.revoke(s.id or 0, T0)  # applied, then revoked: still was applied
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.count_applied_reservations(T0, T0 + timedelta(hours=1)) == 2
        assert uow.redemptions.count_applied_reservations(T0 + timedelta(hours=1), T0 + timedelta(hours=2)) == 0


def test_redemptions_by_status_in_a_campaign_cover_all_its_codes_and_only_those_created_since(
        uow_factory: Factory) -> None:
    campaign, a = store_campaign_with_code(uow_factory, make_campaign(per_user_limit=3), "a" * 64)
    b = store_code(uow_factory, make_code(campaign, "b" * 64))
    _, elsewhere = store_campaign_with_code(uow_factory, make_campaign("other"), "c" * 64)
    with uow_factory() as uow:
        uow.redemptions.add(make_redemption(a, user_id=1, key="1"))
        uow.redemptions.add(make_redemption(a, user_id=2, key="2", status=RedemptionStatus.APPLIED))
        uow.redemptions.add(make_redemption(a, user_id=3, key="3", status=RedemptionStatus.EXPIRED))
        uow.redemptions.add(make_redemption(b, user_id=1, key="4", status=RedemptionStatus.REVOKED, user_slot=2))
        uow.redemptions.add(make_redemption(b, user_id=5, key="5", created_at=LATER))
        uow.redemptions.add(make_redemption(elsewhere, user_id=1, key="6"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.count_by_status_in_campaign(campaign.id or 0) == {
            RedemptionStatus.RESERVED: 2, RedemptionStatus.APPLIED: 1, RedemptionStatus.EXPIRED: 1,
            RedemptionStatus.REVOKED: 1,
        }
        assert uow.redemptions.count_by_status_in_campaign(campaign.id or 0, LATER) == {
            **ALL_ZERO, RedemptionStatus.RESERVED: 1}
        assert uow.redemptions.count_by_status_in_campaign(10_000) == ALL_ZERO


def test_a_users_redemptions_are_listed_newest_first_up_to_a_limit(uow_factory: Factory) -> None:
    campaign, a = store_campaign_with_code(uow_factory, make_campaign(per_user_limit=3), "a" * 64)
    b, c = (store_code(uow_factory, make_code(campaign, h * 64)) for h in "bc")
    with uow_factory() as uow:
        first = uow.redemptions.add(make_redemption(a, key="first", created_at=T0))
        newest = uow.redemptions.add(make_redemption(b, key="newest", created_at=T0 + timedelta(hours=2),
                                                     user_slot=2))
        middle = uow.redemptions.add(make_redemption(c, key="middle", created_at=LATER, user_slot=3))
        uow.redemptions.add(make_redemption(a, user_id=2, key="someone else", created_at=T0 + timedelta(days=1)))
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.for_user(1, 10) == [newest, middle, first]
        assert uow.redemptions.for_user(1, 2) == [newest, middle]
        assert uow.redemptions.for_user(3, 10) == []


def test_applied_redemptions_per_hour_count_grants_when_created_and_discounts_when_their_purchase_was_paid(
        uow_factory: Factory) -> None:
    gift, grant_code = store_campaign_with_code(uow_factory, make_grant_campaign(), "a" * 64)
    sale, sale_code = store_campaign_with_code(uow_factory, make_campaign(), "b" * 64)
    with uow_factory() as uow:
        uow.redemptions.add(make_grant_redemption(grant_code, user_id=1, key="g1",
                                                  created_at=T0 + timedelta(minutes=10)))
        revoked_grant = uow.redemptions.add(make_grant_redemption(grant_code, user_id=2, key="g2",
                                                                  created_at=T0 + timedelta(minutes=70)))
        uow.redemptions.revoke(revoked_grant.id or 0, T0 + timedelta(minutes=80))

        def paid_reservation(user_id: int, created: datetime, paid: datetime) -> int:
            r = uow.redemptions.add(make_redemption(sale_code, user_id=user_id, key=f"r{user_id}", created_at=created,
                                                    reserved_until=created + timedelta(minutes=15)))
            p = uow.purchases.add(make_purchase(user_id=user_id, promo_redemption_id=r.id,
                                                status=PurchaseStatus.PAID, paid_at=paid))
            assert uow.redemptions.apply(r.id or 0, p.id or 0, paid) is not None
            return r.id or 0

        paid_reservation(3, T0 + timedelta(minutes=5), T0 + timedelta(minutes=130))
        revoked = paid_reservation(4, T0 + timedelta(minutes=30), T0 + timedelta(minutes=40))
        uow.redemptions.revoke(revoked, T0 + timedelta(minutes=50))  # a refund later: it still was applied
        paid_reservation(5, T0 - timedelta(hours=2), T0 + timedelta(minutes=15))  # made before the window
        paid_reservation(6, T0 + timedelta(minutes=20), T0 + timedelta(hours=3))  # paid after it
        uow.redemptions.add(make_redemption(sale_code, user_id=7, key="unpaid", created_at=T0 + timedelta(minutes=1)))
        uow.commit()
    window = (T0, T0 + timedelta(hours=3))
    with uow_factory() as uow:
        assert uow.redemptions.hourly_applied(*window) == [
            HourCount(T0, 3), HourCount(T0 + timedelta(hours=1), 1), HourCount(T0 + timedelta(hours=2), 1)]
        assert uow.redemptions.hourly_applied(*window, gift.id) == [
            HourCount(T0, 1), HourCount(T0 + timedelta(hours=1), 1)]
        assert uow.redemptions.hourly_applied(*window, sale.id) == [
            HourCount(T0, 2), HourCount(T0 + timedelta(hours=2), 1)]
        assert uow.redemptions.hourly_applied(T0 + timedelta(hours=1), T0 + timedelta(hours=2)) == [
            HourCount(T0 + timedelta(hours=1), 1)]
        assert uow.redemptions.hourly_applied(T0 + timedelta(days=1), T0 + timedelta(days=2)) == []


def test_given_in_campaign_is_the_discount_of_its_paid_purchases_and_the_days_of_its_grants(
        uow_factory: Factory) -> None:
    gift, grant_code = store_campaign_with_code(uow_factory, make_grant_campaign(grant_days=30), "a" * 64)
    sale, sale_code = store_campaign_with_code(uow_factory, make_campaign(), "b" * 64)
    _, other_code = store_campaign_with_code(uow_factory, make_campaign("other"), "c" * 64)
    with uow_factory() as uow:
        uow.redemptions.add(make_grant_redemption(grant_code, user_id=1, key="g1", created_at=T0))
        revoked = uow.redemptions.add(make_grant_redemption(grant_code, user_id=2, key="g2", created_at=LATER))
        uow.redemptions.revoke(revoked.id or 0, LATER)
        uow.redemptions.add(make_grant_redemption(grant_code, user_id=3, key="g3", created_at=T0 - timedelta(days=1)))

        def bought(code: PromoCode, user_id: int, discount: int, **purchase: Any) -> None:
            r = uow.redemptions.add(make_redemption(code, user_id=user_id, key=f"r{user_id}"))
            uow.purchases.add(make_purchase(user_id=user_id, promo_redemption_id=r.id,
                                            discount_stars_amount=discount, **purchase))

        bought(sale_code, 4, 30, status=PurchaseStatus.PAID, paid_at=LATER)
        bought(sale_code, 5, 10, status=PurchaseStatus.REFUNDED, paid_at=LATER, refunded_at=LATER)
        bought(sale_code, 6, 25, status=PurchaseStatus.PAID, paid_at=T0 - timedelta(hours=1))  # before
        bought(sale_code, 7, 40)  # not paid
        bought(other_code, 8, 99, status=PurchaseStatus.PAID, paid_at=LATER)
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.given_in_campaign(gift.id or 0, T0) == (0, 60)
        assert uow.redemptions.given_in_campaign(sale.id or 0, T0) == (40, 0)
        assert uow.redemptions.given_in_campaign(sale.id or 0, LATER + timedelta(seconds=1)) == (0, 0)


def test_expire_many_expires_only_due_unbound_reservations_and_units_go_back_to_code_and_campaign(
        uow_factory: Factory) -> None:
    campaign, code = store_campaign_with_code(uow_factory, make_campaign(max_total_uses=10), max_total_uses=10)
    due_at = T0 + timedelta(minutes=15)
    with uow_factory() as uow:
        rids = []
        for user in range(1, 6):
            assert uow.promo_codes.claim_capacity(code.id or 0, T0) is not None
            rids.append(uow.redemptions.add(make_redemption(code, user_id=user, key=f"k{user}")).id or 0)
        uow.redemptions.bind_purchase(rids[1], 1, T0)  # bound: stays
        late = uow.redemptions.add(make_redemption(code, user_id=9, key="late",
                                                   reserved_until=due_at + timedelta(minutes=1)))
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.expire_many([], due_at) == []
        expired = uow.redemptions.expire_many([*rids, rids[0], late.id or 0, 999_999], due_at)
        assert sorted(r.id or 0 for r in expired) == sorted([rids[0], *rids[2:]])
        assert all(r.status is RedemptionStatus.EXPIRED for r in expired)
        assert uow.redemptions.expire_many(rids, due_at) == []  # already expired: nothing twice
        uow.promo_codes.release_capacity_many({code.id or 0: len(expired)}, due_at)
        uow.campaigns.release_capacity_many({campaign.id or 0: len(expired)}, due_at)
        assert (uow.promo_codes.get(code.id or 0) or code).used_total == 1
        assert (uow.campaigns.get(campaign.id or 0) or campaign).used_total == 1
        uow.commit()


def test_redeem_snapshot_reads_what_the_single_reads_answer(uow_factory: Factory) -> None:
    campaign, a = store_campaign_with_code(uow_factory, make_campaign(per_user_limit=2), "a" * 64)
    b = store_code(uow_factory, make_code(campaign, "b" * 64))
    with uow_factory() as uow:
        uow.redemptions.add(make_redemption(a, user_id=1, key="gone", status=RedemptionStatus.EXPIRED))
        live = uow.redemptions.add(make_redemption(a, user_id=1, key="k1"))
        other = uow.redemptions.add(make_redemption(b, user_id=2, key="k2", status=RedemptionStatus.APPLIED,
                                                    user_slot=2))
        for i, result in enumerate([RedeemResult.INVALID, RedeemResult.ACCEPTED, RedeemResult.PAUSED]):
            uow.attempts.add(make_attempt(1, result, T0 + timedelta(minutes=i)))
        uow.commit()
    cases = [
        ("k1", 1, ["a" * 64], T0),  # key, failures, code, campaign, live redemption and slots all found
        ("k2", 1, ["b" * 64, "a" * 64], T0 + timedelta(minutes=1)),  # the first hash wins; no live one of b
        ("new", 2, ["0" * 64, "b" * 64], T0),  # an unknown hash first (a previous pepper's); user 2's live
        ("new", 3, ["0" * 64], T0),  # nothing at all
        ("new", 1, [], T0),  # malformed code: no hash to look up
        ("gone", 1, ["a" * 64], T0 + timedelta(hours=1)),  # an expired key still answers; no failures in window
    ]
    with uow_factory() as uow:
        snaps = [uow.redemptions.redeem_snapshot(*case) for case in cases]
        parts = [snapshot_by_parts(uow.redemptions, uow.attempts, uow.promo_codes, uow.campaigns, *case)
                 for case in cases]
    assert snaps == parts
    assert snaps[0] == RedeemSnapshot(live, 2, T0 + timedelta(minutes=2), a, campaign, live, (1,))
    assert snaps[1] == RedeemSnapshot(other, 1, T0 + timedelta(minutes=2), b, campaign, None, (1,))
    assert snaps[2] == RedeemSnapshot(None, 0, None, b, campaign, other, (2,))
    assert snaps[3] == RedeemSnapshot(None, 0, None, None, None, None, ())
    assert snaps[4] == RedeemSnapshot(None, 2, T0 + timedelta(minutes=2), None, None, None, ())
    assert snaps[5].by_key is not None and snaps[5].by_key.status is RedemptionStatus.EXPIRED
    assert (snaps[5].failures, snaps[5].code, snaps[5].campaign, snaps[5].live) == (0, a, campaign, live)


def test_add_and_claim_writes_the_redemption_and_attempt_then_claims_a_unit_of_code_and_campaign(
        uow_factory: Factory) -> None:
    """All of it or (after the caller's rollback) none of it, whether or not the adapter runs it on its own."""
    campaign, code = store_campaign_with_code(uow_factory, make_campaign(max_total_uses=5), "a" * 64,
                                              max_total_uses=1)
    second = store_code(uow_factory, make_code(campaign, "b" * 64))
    paused_campaign, paused_code = store_campaign_with_code(uow_factory, make_campaign("paused", **paused()),
                                                            "c" * 64)
    now = T0 + timedelta(minutes=1)
    ok = make_attempt(1, RedeemResult.ACCEPTED, now, campaign_id=campaign.id)
    with uow_factory() as uow:
        created = uow.redemptions.add_and_claim(make_redemption(code), ok, now)
        assert created is not None
        stored, claimed_code, claimed_campaign = created
        assert stored.id is not None and attrs.evolve(stored, id=None) == make_redemption(code)
        assert claimed_code == attrs.evolve(code, used_total=1, updated_at=now)
        assert claimed_campaign == attrs.evolve(campaign, used_total=1, updated_at=now)
        assert uow.attempts.counts_by_result(T0, LATER) == {RedeemResult.ACCEPTED: 1}
        uow.commit()
    with uow_factory() as uow:  # the code's cap used up, or a paused campaign: no unit (the caller rolls back)
        assert uow.redemptions.add_and_claim(make_redemption(code, user_id=2, key="k2"), ok, now) is None
        uow.rollback()
        assert uow.redemptions.add_and_claim(make_redemption(paused_code, key="k3"), ok, now) is None
        uow.rollback()
    with uow_factory() as uow, pytest.raises(DuplicateIdempotencyKey):
        uow.redemptions.add_and_claim(make_redemption(paused_code, user_id=3, key="k1"), ok, now)
    with uow_factory() as uow, pytest.raises(LiveRedemptionExists):
        uow.redemptions.add_and_claim(make_redemption(code, user_id=1, key="k4", user_slot=2), ok, now)
    with uow_factory() as uow, pytest.raises(UserSlotTaken):
        uow.redemptions.add_and_claim(make_redemption(second, user_id=1, key="k5"), ok, now)
    with uow_factory() as uow:  # nothing of the refused or rolled-back calls was kept
        assert uow.promo_codes.get(code.id or 0) == claimed_code
        assert uow.promo_codes.get(second.id or 0) == second
        assert uow.campaigns.get(campaign.id or 0) == claimed_campaign
        assert uow.campaigns.get(paused_campaign.id or 0) == paused_campaign
        for key in ("k2", "k3", "k4", "k5"):
            assert uow.redemptions.get_by_idempotency_key(key) is None
        assert uow.attempts.counts_by_result(T0, LATER) == {RedeemResult.ACCEPTED: 1}


# --- promo_attempts ---------------------------------------------------------------------------------------


def test_failure_stats_count_only_failures_in_the_window(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        for i, result in enumerate([RedeemResult.INVALID, RedeemResult.ACCEPTED, RedeemResult.RATE_LIMITED,
                                    RedeemResult.DEPLETED, RedeemResult.INVALID]):
            uow.attempts.add(make_attempt(1, result, T0 + timedelta(minutes=i)))
        uow.attempts.add(make_attempt(2, RedeemResult.INVALID, T0 + timedelta(minutes=9)))
        uow.commit()
    with uow_factory() as uow:
        assert uow.attempts.failure_stats(1, T0) == (3, T0 + timedelta(minutes=4))
        assert uow.attempts.failure_stats(1, T0 + timedelta(minutes=1)) == (2, T0 + timedelta(minutes=4))
        assert uow.attempts.failure_stats(3, T0) == (0, None)
        assert uow.attempts.counts_by_result(T0, T0 + timedelta(minutes=5)) == {
            RedeemResult.INVALID: 2, RedeemResult.ACCEPTED: 1, RedeemResult.RATE_LIMITED: 1,
            RedeemResult.DEPLETED: 1,
        }


def test_guard_statistics_group_failures_by_hash_and_by_prefix(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        for i in range(6):
            uow.attempts.add(make_attempt(100 + i % 3, RedeemResult.ALREADY_USED, T0 + timedelta(seconds=i),
                                          h="x" * 64))
        for i in range(4):
            uow.attempts.add(make_attempt(200 + i, RedeemResult.INVALID, T0 + timedelta(seconds=i), h=f"{i:064x}",
                                          prefix="ZZZZ"))
        uow.attempts.add(make_attempt(300, RedeemResult.INVALID, T0 - timedelta(hours=1), h="x" * 64,
                                      prefix="ZZZZ"))
        uow.attempts.add(make_attempt(301, RedeemResult.INVALID, T0, h=None, prefix=None))
        uow.commit()
    with uow_factory() as uow:
        stats = uow.attempts.hash_failures(T0, 6, 3)
        assert [(s.normalized_code_hash, s.failures, s.distinct_users, s.last_seen) for s in stats] == [
            ("x" * 64, 6, 3, T0 + timedelta(seconds=5))]
        assert uow.attempts.hash_failures(T0, 7, 1) == []
        assert uow.attempts.hash_failures(T0, 1, 4) == []
        prefixes = uow.attempts.invalid_prefix_failures(T0, 4)
        assert [(p.code_prefix, p.failures, p.distinct_users, p.last_seen) for p in prefixes] == [
            ("ZZZZ", 4, 4, T0 + timedelta(seconds=3))]
        assert uow.attempts.invalid_prefix_failures(T0, 5) == []


def test_an_attempt_keeps_its_campaign_and_counts_by_result_can_be_limited_to_one_campaign(
        uow_factory: Factory) -> None:
    with uow_factory() as uow:
        uow.attempts.add(make_attempt(1, RedeemResult.ACCEPTED, T0, campaign_id=7))
        uow.attempts.add(make_attempt(2, RedeemResult.DEPLETED, T0, campaign_id=7))
        uow.attempts.add(make_attempt(3, RedeemResult.ACCEPTED, T0, campaign_id=8))
        uow.attempts.add(make_attempt(4, RedeemResult.INVALID, T0))
        uow.attempts.add(make_attempt(5, RedeemResult.DEPLETED, LATER, campaign_id=7))  # outside the window
        uow.commit()
    with uow_factory() as uow:
        assert uow.attempts.counts_by_result(T0, LATER, 7) == {RedeemResult.ACCEPTED: 1, RedeemResult.DEPLETED: 1}
        assert uow.attempts.counts_by_result(T0, LATER, 8) == {RedeemResult.ACCEPTED: 1}
        assert uow.attempts.counts_by_result(T0, LATER, 9) == {}
        assert uow.attempts.counts_by_result(T0, LATER) == {
            RedeemResult.ACCEPTED: 2, RedeemResult.DEPLETED: 1, RedeemResult.INVALID: 1}
        assert [a.campaign_id for a in uow.attempts.for_user(1, 1)] == [7]
        assert [a.campaign_id for a in uow.attempts.for_user(4, 1)] == [None]


def test_hourly_attempts_count_all_and_accepted_per_utc_hour_in_a_half_open_window(uow_factory: Factory) -> None:
    half_hour_zone = timezone(timedelta(hours=5, minutes=30))
    with uow_factory() as uow:
        for minutes, result, campaign_id in [
            (0, RedeemResult.ACCEPTED, 7),  # the window's first instant
            (10, RedeemResult.INVALID, None),
            (59, RedeemResult.ACCEPTED, 8),
            (60, RedeemResult.RATE_LIMITED, 7),
            (185, RedeemResult.ACCEPTED, 7),
            (240, RedeemResult.ACCEPTED, 7),  # the window's end: outside
            (-1, RedeemResult.ACCEPTED, 7),  # before it
        ]:
            at = (T0 + timedelta(minutes=minutes)).astimezone(half_hour_zone)
            uow.attempts.add(make_attempt(1, result, at, campaign_id=campaign_id))
        uow.commit()
    window = (T0, T0 + timedelta(hours=4))
    with uow_factory() as uow:
        assert uow.attempts.hourly(*window) == [
            (T0, 3, 2), (T0 + timedelta(hours=1), 1, 0), (T0 + timedelta(hours=3), 1, 1)]
        assert uow.attempts.hourly(*window, 7) == [
            (T0, 1, 1), (T0 + timedelta(hours=1), 1, 0), (T0 + timedelta(hours=3), 1, 1)]
        assert uow.attempts.hourly(*window, 9) == []
        hours = [hour for hour, _, _ in uow.attempts.hourly(*window)]
    assert all(hour.utcoffset() == timedelta(0) for hour in hours)


def test_a_users_attempts_are_listed_latest_first_up_to_a_limit(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        uow.attempts.add(make_attempt(1, RedeemResult.INVALID, T0))
        uow.attempts.add(make_attempt(1, RedeemResult.ACCEPTED, T0 + timedelta(minutes=2)))
        uow.attempts.add(make_attempt(1, RedeemResult.DEPLETED, T0 + timedelta(minutes=1)))  # written late
        uow.attempts.add(make_attempt(2, RedeemResult.INVALID, T0 + timedelta(minutes=3)))
        uow.commit()
    with uow_factory() as uow:
        latest = uow.attempts.for_user(1, 10)
        assert [(a.result, a.attempted_at) for a in latest] == [
            (RedeemResult.ACCEPTED, T0 + timedelta(minutes=2)), (RedeemResult.DEPLETED, T0 + timedelta(minutes=1)),
            (RedeemResult.INVALID, T0)]
        assert all(a.id is not None and a.user_id == 1 and a.normalized_code_hash == "h" * 64
                   and a.code_prefix == "ABCD" for a in latest)
        assert [a.result for a in uow.attempts.for_user(1, 1)] == [RedeemResult.ACCEPTED]
        assert uow.attempts.for_user(3, 10) == []


# --- audit_log --------------------------------------------------------------------------------------------


def test_an_audit_entry_reads_back_with_its_details_and_an_id(uow_factory: Factory) -> None:
    details = {"changes": {"max_total_uses": [None, 100], "name": ["a", "ü \"quoted\""]}, "codes": [1, 2],
               "note": None}
    with uow_factory() as uow:
        entry = uow.audit.add(make_audit_entry(at=T0.astimezone(timezone(timedelta(hours=-3))), details=details))
        uow.commit()
    assert entry.id is not None
    with uow_factory() as uow:
        [read] = uow.audit.search(AuditFilter(), 10, None)
    assert (read.id, read.at, read.actor, read.action, read.target_type, read.target_id, read.details) == (
        entry.id, T0, "api", "campaign.status", "campaign", "1", details)
    assert read.at.utcoffset() == timedelta(0)


def test_audit_search_lists_newest_first_filters_by_actor_action_and_target_and_pages_below_a_cursor(
        uow_factory: Factory) -> None:
    with uow_factory() as uow:
        added = [uow.audit.add(entry) for entry in [
            make_audit_entry("campaign.create", actor="cli:ops", target_id="1"),
            make_audit_entry("campaign.status", actor="job:run_promo_bruteforce_guard", target_id="1"),
            make_audit_entry("code.status", actor="job:run_promo_bruteforce_guard", target_type="promo_code",
                             target_id="10"),
            make_audit_entry("campaign.change", actor="alice", target_id="2"),
            make_audit_entry("campaign.status", actor="alice", target_id="1"),
        ]]
        uow.commit()
    first, guard_campaign, guard_code, change, status = (e.id for e in added)

    def found(flt: AuditFilter, limit: int = 10, before_id: int | None = None) -> list[int | None]:
        with uow_factory() as uow:
            return [e.id for e in uow.audit.search(flt, limit, before_id)]

    assert found(AuditFilter()) == [status, change, guard_code, guard_campaign, first]
    assert found(AuditFilter(), 2) == [status, change]
    assert found(AuditFilter(), 2, change) == [guard_code, guard_campaign]
    assert found(AuditFilter(), 10, first) == []
    assert found(AuditFilter(actor="job:run_promo_bruteforce_guard")) == [guard_code, guard_campaign]
    assert found(AuditFilter(action="campaign.status")) == [status, guard_campaign]
    assert found(AuditFilter(target_type="campaign", target_id="1")) == [status, guard_campaign, first]
    assert found(AuditFilter(target_type="promo_code")) == [guard_code]
    assert found(AuditFilter(actor="alice", action="campaign.status", target_id="1")) == [status]
    assert found(AuditFilter(actor="nobody")) == []


def test_an_audit_entry_rolls_back_with_the_change_it_records(uow_factory: Factory) -> None:
    c = store_campaign(uow_factory)
    with uow_factory() as uow:
        uow.campaigns.set_status(c.id or 0, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED, PausedReason.MANUAL,
                                 LATER)
        uow.audit.add(make_audit_entry(target_id=str(c.id)))
        uow.rollback()
        kept = uow.audit.add(make_audit_entry("campaign.change", target_id=str(c.id)))
        uow.commit()
    with uow_factory() as uow:
        assert [e.id for e in uow.audit.search(AuditFilter(), 10, None)] == [kept.id]
        assert uow.campaigns.get(c.id or 0) == c


# --- purchases --------------------------------------------------------------------------------------------


def test_one_open_purchase_per_user_and_product(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        p = uow.purchases.add(make_purchase())
        uow.commit()
    with uow_factory() as uow, pytest.raises(OpenPurchaseExists):
        uow.purchases.add(make_purchase())
    with uow_factory() as uow:
        assert uow.purchases.get_open(1, "PREMIUM_30D") == p
        uow.purchases.add(make_purchase(product="PREMIUM_7D"))
        uow.purchases.add(make_purchase(user_id=2))
        failed = uow.purchases.set_status(p.id or 0, [PurchaseStatus.CREATED], PurchaseStatus.FAILED, T0)
        assert failed is not None and failed.status is PurchaseStatus.FAILED
        assert uow.purchases.get_open(1, "PREMIUM_30D") is None
        again = uow.purchases.add(make_purchase())
        uow.commit()
    with uow_factory() as uow:
        assert uow.purchases.get_open(1, "PREMIUM_30D") == again


def test_payment_and_refund_set_their_timestamps_and_the_charge_id_is_unique(uow_factory: Factory) -> None:
    paid_at, refunded_at = T0 + timedelta(minutes=2), T0 + timedelta(days=1)
    with uow_factory() as uow:
        p = uow.purchases.add(make_purchase())
        q = uow.purchases.add(make_purchase(user_id=2))
        assert not uow.purchases.user_has_paid(1)
        sent = uow.purchases.set_status(p.id or 0, [PurchaseStatus.CREATED], PurchaseStatus.INVOICE_SENT, T0)
        assert sent is not None and sent.paid_at is None
        assert uow.purchases.set_status(p.id or 0, [PurchaseStatus.CREATED], PurchaseStatus.PAID, T0) is None
        paid = uow.purchases.set_status(p.id or 0, [PurchaseStatus.INVOICE_SENT], PurchaseStatus.PAID, paid_at,
                                        telegram_payment_charge_id="charge-1")
        assert paid is not None and paid.paid_at == paid_at and paid.telegram_payment_charge_id == "charge-1"
        assert uow.purchases.user_has_paid(1)
        uow.commit()
    with uow_factory() as uow, pytest.raises(DuplicateChargeId):
        uow.purchases.set_status(q.id or 0, [PurchaseStatus.CREATED], PurchaseStatus.PAID, paid_at,
                                 telegram_payment_charge_id="charge-1")
    with uow_factory() as uow:
        assert uow.purchases.get_by_charge_id("charge-1") == paid
        refunded = uow.purchases.set_status(p.id or 0, [PurchaseStatus.PAID], PurchaseStatus.REFUNDED, refunded_at)
        assert refunded is not None and refunded.refunded_at == refunded_at and refunded.paid_at == paid_at
        assert uow.purchases.user_has_paid(1)
        assert (uow.purchases.get(q.id or 0) or q).status is PurchaseStatus.CREATED
        uow.commit()


def test_job_queries_over_purchases(uow_factory: Factory) -> None:
    _, code = store_campaign_with_code(uow_factory)
    with uow_factory() as uow:
        r1 = uow.redemptions.add(make_redemption(code, user_id=1, key="a", status=RedemptionStatus.RESERVED))
        r2 = uow.redemptions.add(make_redemption(code, user_id=2, key="b", status=RedemptionStatus.REVOKED))
        old = uow.purchases.add(make_purchase(user_id=1, product="PREMIUM_7D"))
        fresh = uow.purchases.add(make_purchase(user_id=1, product="PREMIUM_90D", created_at=LATER))
        refunded = uow.purchases.add(make_purchase(user_id=1, status=PurchaseStatus.REFUNDED,
                                                   promo_redemption_id=r1.id))
        assert r1.id is not None and refunded.id is not None
        assert uow.redemptions.apply(r1.id, refunded.id, T0) is not None
        uow.purchases.add(make_purchase(user_id=2, status=PurchaseStatus.REFUNDED, promo_redemption_id=r2.id))
        uow.purchases.add(make_purchase(user_id=3, status=PurchaseStatus.REFUNDED))
        uow.commit()
    with uow_factory() as uow:
        assert [p.id for p in uow.purchases.stale_open(T0 + timedelta(minutes=30), 10)] == [old.id]
        assert [p.id for p in uow.purchases.refunded_needing_rollback(10)] == [refunded.id]
        assert [p.id for p in uow.purchases.in_window(T0 + timedelta(minutes=1), T0 + timedelta(hours=2))] == [
            fresh.id]
        assert len(uow.purchases.in_window(T0, T0 + timedelta(hours=2))) == 5
        assert uow.purchases.count_in_review() == 0
        marked = uow.purchases.mark_review(old.id or 0, "amount mismatch", T0)
        assert marked is not None and marked.review_reason == "amount mismatch"
        assert uow.purchases.mark_review(10_000, "x", T0) is None
        assert uow.purchases.count_in_review() == 1
        uow.commit()


# --- entitlements, ledger, processed updates --------------------------------------------------------------


def test_an_entitlement_is_one_row_per_user_replaced_on_put(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        assert uow.entitlements.get(1) is None
        uow.entitlements.put(Entitlement(1, "PREMIUM", T0 + timedelta(days=7), T0))
        uow.entitlements.put(Entitlement(1, "PREMIUM", T0 + timedelta(days=14), T0 + timedelta(minutes=1)))
        uow.commit()
    with uow_factory() as uow:
        assert uow.entitlements.get(1) == Entitlement(1, "PREMIUM", T0 + timedelta(days=14), T0 + timedelta(minutes=1))


def test_ledger_entries_are_appended_in_order(uow_factory: Factory) -> None:
    entry = LedgerEntry(user_id=1, plan_code="PREMIUM", days=7, source=LedgerSource.PROMO_GRANT,
                        promo_redemption_id=None, purchase_id=None, expires_at_after=T0 + timedelta(days=7),
                        created_at=T0)
    with uow_factory() as uow:
        a = uow.ledger.add(entry)
        b = uow.ledger.add(attrs.evolve(entry, days=-7, source=LedgerSource.REFUND_REVOKE, expires_at_after=T0))
        uow.ledger.add(attrs.evolve(entry, user_id=2))
        uow.commit()
    assert a.id is not None and b.id is not None and a.id < b.id
    with uow_factory() as uow:
        assert uow.ledger.for_user(1) == [a, b]


def test_an_update_id_is_taken_in_once(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        assert uow.processed_updates.add(10, T0) is True
        assert uow.processed_updates.add(10, T0) is False
        uow.processed_updates.add(11, T0 + timedelta(days=2))
        uow.commit()
    with uow_factory() as uow:
        assert uow.processed_updates.add(10, T0) is False
        assert uow.processed_updates.delete_before(T0 + timedelta(days=1), 100) == 1
        assert uow.processed_updates.add(10, T0) is True
        assert uow.processed_updates.add(11, T0) is False


def test_after_a_constraint_violation_and_rollback_the_unit_of_work_goes_on(uow_factory: Factory) -> None:
    campaign, _ = store_campaign_with_code(uow_factory)
    with uow_factory() as uow:
        with pytest.raises(DuplicateCodeHash):
            uow.promo_codes.add(make_code(campaign))
        uow.rollback()
        uow.promo_codes.add(make_code(campaign, "b" * 64))
        uow.commit()
        with pytest.raises(DuplicateCampaignName):
            uow.campaigns.add(make_campaign())
        uow.rollback()
        uow.campaigns.add(make_campaign("Another"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.promo_codes.existing_hashes(["a" * 64, "b" * 64]) == {"a" * 64, "b" * 64}
        assert uow.campaigns.get_by_name("Another") is not None


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_naive_datetimes_never_reach_a_table(uow_factory: Factory) -> None:
    with uow_factory() as uow, pytest.raises(Exception, match="naive"):
        uow.campaigns.add(make_campaign(valid_from=datetime(2026, 1, 1)))
