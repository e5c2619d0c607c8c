"""The ``Campaigns`` port (``promo_campaigns``) on memory, SQLite and PostgreSQL: rows read back exactly, unique
names, search and paging, conditional status moves and changes, budget releases, and the job queries over campaigns.

Each test states a rule of the ports (ports/repositories.py) that the domain relies on.
"""

from __future__ import annotations

from datetime import timedelta, timezone

import attrs
import pytest

from domain.errors import DuplicateCampaignName
from domain.model import (
    CampaignChanges,
    CampaignFilter,
    CampaignStatus,
    CodeFilter,
    PausedReason,
    PromoType,
    RedemptionStatus,
    TargetScope,
)
from tests.builders import (
    Factory,
    make_campaign,
    make_code,
    make_grant_campaign,
    make_redemption,
    make_stars_campaign,
    store_campaign,
    store_campaign_with_code,
    store_code,
)
from tests.conftest import T0
from tests.contract.conftest import LATER, ids, paused


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


def _counted_by_listing(uow_factory: Factory, campaign_id: int) -> dict[CampaignStatus, int]:
    """The campaign's codes counted one by one (what ``code_counts`` must always equal)."""
    out = dict.fromkeys(CampaignStatus, 0)
    with uow_factory() as uow:
        for code in uow.promo_codes.search(CodeFilter(campaign_id=campaign_id), 1000, None):
            out[code.status] += 1
    return out


def test_code_counts_follow_every_insert_and_status_change_and_a_rollback_changes_none(
        uow_factory: Factory) -> None:
    launch = store_campaign(uow_factory, make_campaign("launch"))
    other = store_campaign(uow_factory, make_campaign("other"))
    assert launch.id is not None and other.id is not None

    def counts() -> dict[CampaignStatus, int]:
        with uow_factory() as uow:
            found = uow.campaigns.code_counts([launch.id or 0])[launch.id or 0]
        assert found == _counted_by_listing(uow_factory, launch.id or 0)
        return found

    one = store_code(uow_factory, make_code(launch, "1" * 64))
    with uow_factory() as uow:
        uow.promo_codes.add_many([make_code(launch, f"{i}" * 64) for i in range(2, 7)]
                                 + [make_code(launch, "7" * 64, **paused()), make_code(other, "8" * 64)])
        uow.commit()
    assert counts() == {CampaignStatus.ACTIVE: 6, CampaignStatus.PAUSED: 1, CampaignStatus.EXPIRED: 0,
                        CampaignStatus.DEPLETED: 0}
    assert one.id is not None
    with uow_factory() as uow:  # a move that does not happen (wrong expected status) counts nothing
        assert uow.promo_codes.set_status(one.id, [CampaignStatus.PAUSED], CampaignStatus.ACTIVE, None, LATER) is None
        assert uow.promo_codes.set_status(one.id, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED,
                                          PausedReason.MANUAL, LATER) is not None
        uow.commit()
    assert counts()[CampaignStatus.PAUSED] == 2
    with uow_factory() as uow:  # several expected statuses: the one it had is the one counted down
        assert uow.promo_codes.set_status(one.id, [CampaignStatus.ACTIVE, CampaignStatus.PAUSED],
                                          CampaignStatus.DEPLETED, None, LATER) is not None
        uow.commit()
    assert counts() == {CampaignStatus.ACTIVE: 5, CampaignStatus.PAUSED: 1, CampaignStatus.EXPIRED: 0,
                        CampaignStatus.DEPLETED: 1}
    with uow_factory() as uow:  # rolled back: neither the codes nor the counts change
        uow.promo_codes.add_many([make_code(launch, "9" * 64)])
        assert uow.promo_codes.expire_for_campaign(launch.id, LATER) == 7
    assert counts()[CampaignStatus.ACTIVE] == 5
    with uow_factory() as uow:
        assert uow.promo_codes.expire_for_campaign(launch.id, LATER) == 6
        uow.commit()
    assert counts() == {CampaignStatus.ACTIVE: 0, CampaignStatus.PAUSED: 0, CampaignStatus.EXPIRED: 6,
                        CampaignStatus.DEPLETED: 1}
    with uow_factory() as uow:
        assert uow.campaigns.code_counts([other.id])[other.id][CampaignStatus.ACTIVE] == 1
