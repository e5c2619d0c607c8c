"""The ``Redemptions`` port (``promo_redemptions``) on memory, SQLite and PostgreSQL: unique idempotency keys, one
live redemption per user and code or campaign slot, conditional bind/apply/revoke, expiry, the report queries, and
the redeem snapshot and ``add_and_claim`` of the redeem path.

Each test states a rule of the ports (ports/repositories.py) that the domain relies on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest

from domain.errors import DuplicateIdempotencyKey, LiveRedemptionExists, UserSlotTaken
from domain.model import HourCount, PromoCode, PurchaseStatus, RedeemResult, RedeemSnapshot, RedemptionStatus
from domain.redemption import snapshot_by_parts
from tests.builders import (
    Factory,
    make_attempt,
    make_campaign,
    make_code,
    make_grant_campaign,
    make_grant_redemption,
    make_purchase,
    make_redemption,
    make_stars_campaign,
    store_campaign_with_code,
    store_code,
)
from tests.conftest import T0
from tests.contract.conftest import LATER, ids, paused

ALL_ZERO = dict.fromkeys(RedemptionStatus, 0)


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


def test_expire_due_expires_a_bounded_batch_of_due_unbound_reservations_and_names_their_code_and_campaign(
        uow_factory: Factory) -> None:
    """One batch of the expiry job: ``expire_due`` is ``expire_many`` of ``due_for_expiry`` (the reference,
    ``domain.maintenance.expire_due_by_parts``), answering only what the caller needs to give units back."""
    campaign, code = store_campaign_with_code(uow_factory)
    due_at = T0 + timedelta(minutes=15)
    with uow_factory() as uow:
        due = [uow.redemptions.add(make_redemption(code, user_id=user, key=f"d{user}")).id for user in range(1, 6)]
        bound = uow.redemptions.add(make_redemption(code, user_id=7, key="bound"))
        uow.redemptions.bind_purchase(bound.id or 0, 1, T0)
        uow.redemptions.add(make_redemption(code, user_id=8, key="late", reserved_until=due_at + timedelta(minutes=1)))
        uow.redemptions.add(make_grant_redemption(code, user_id=9, key="grant"))
        uow.commit()
    pair = (code.id, campaign.id)
    with uow_factory() as uow:
        assert uow.redemptions.expire_due(due_at - timedelta(seconds=1), 10) == (0, [])
        assert uow.redemptions.expire_due(due_at, 3) == (3, [pair] * 3)  # bounded by the limit
        assert uow.redemptions.expire_due(due_at, 10) == (2, [pair] * 2)  # the rest, nothing twice
        assert uow.redemptions.expire_due(due_at, 10) == (0, [])
        uow.commit()
    with uow_factory() as uow:
        assert {(uow.redemptions.get(rid or 0) or bound).status for rid in due} == {RedemptionStatus.EXPIRED}
        assert (uow.redemptions.get(bound.id or 0) or bound).status is RedemptionStatus.RESERVED
        assert uow.redemptions.count_by_status(code.id or 0)[RedemptionStatus.RESERVED] == 2  # the bound, the late
