"""The ``PromoCodes`` port (``promo_codes``) on memory, SQLite and PostgreSQL: rows read back with their campaign's
copies, unique hashes, bulk insert, search, conditional status moves, and the claim that takes a unit from the code
and its campaign together.

Each test states a rule of the ports (ports/repositories.py) that the domain relies on.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import attrs
import pytest

from domain.errors import DuplicateCodeHash
from domain.model import CampaignStatus, CodeFilter, PausedReason, PromoCode, RedemptionStatus
from tests.builders import (
    Factory,
    make_campaign,
    make_code,
    make_redemption,
    store_campaign,
    store_campaign_with_code,
    store_code,
)
from tests.conftest import T0
from tests.contract.conftest import LATER, ids, paused


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
