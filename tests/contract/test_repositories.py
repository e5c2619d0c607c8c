"""One contract for every repository adapter: the same tests on memory, SQLite and PostgreSQL.

Each test states a rule of the ports (ports/repositories.py) that the domain relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import attrs
import pytest

from domain.errors import (
    DuplicateChargeId,
    DuplicateCodeHash,
    DuplicateIdempotencyKey,
    LiveRedemptionExists,
    OpenPurchaseExists,
)
from domain.model import (
    Attempt,
    Campaign,
    CampaignFilter,
    CampaignStatus,
    Entitlement,
    LedgerEntry,
    LedgerSource,
    PausedReason,
    PromoType,
    Purchase,
    PurchaseStatus,
    RedeemResult,
    RedeemSnapshot,
    Redemption,
    RedemptionStatus,
    TargetScope,
)
from domain.redemption import snapshot_by_parts
from ports.repositories import UnitOfWork
from tests.conftest import T0

Factory = Callable[[], UnitOfWork]


def campaign(code_hash: str = "a" * 64, **changes: object) -> Campaign:
    base = Campaign(
        id=None, campaign_name="Spring sale", code_hash=code_hash, code_prefix="SPRI",
        promo_type=PromoType.PERCENT_DISCOUNT, grant_plan_code=None, grant_days=None, discount_percent=20,
        applicable_products=("PREMIUM_30D", "PREMIUM_90D"), target_scope=TargetScope.ALL,
        status=CampaignStatus.ACTIVE, paused_reason=None, valid_from=T0, valid_until=T0 + timedelta(days=30),
        max_total_uses=2, used_total=0, created_at=T0, updated_at=T0,
    )
    return attrs.evolve(base, **changes)


def redemption(promo_code_id: int, user_id: int = 1, key: str = "k1", **changes: object) -> Redemption:
    base = Redemption(
        id=None, promo_code_id=promo_code_id, user_id=user_id, idempotency_key=key,
        status=RedemptionStatus.RESERVED, discount_percent=20, reserved_until=T0 + timedelta(minutes=15),
        purchase_id=None, applied_purchase_id=None, created_at=T0, updated_at=T0,
    )
    return attrs.evolve(base, **changes)


def purchase(user_id: int = 1, product: str = "PREMIUM_30D", **changes: object) -> Purchase:
    base = Purchase(
        id=None, user_id=user_id, product_code=product, base_stars_amount=150, discount_stars_amount=30,
        final_stars_amount=120, promo_redemption_id=None, status=PurchaseStatus.CREATED,
        telegram_payment_charge_id=None, created_at=T0, updated_at=T0,
    )
    return attrs.evolve(base, **changes)


def add_campaign(f: Factory, c: Campaign | None = None) -> Campaign:
    with f() as uow:
        stored = uow.promo_codes.add(c or campaign())
        uow.commit()
    return stored


# --- promo_codes ------------------------------------------------------------------------------------------


def test_a_campaign_reads_back_exactly_as_written_with_utc_timestamps(uow_factory: Factory) -> None:
    written = add_campaign(uow_factory)
    assert written.id is not None
    with uow_factory() as uow:
        read = uow.promo_codes.get(written.id)
    assert read == written
    assert read is not None and read.valid_from.tzinfo is not None and read.valid_from.utcoffset() == timedelta(0)
    grant = add_campaign(uow_factory, campaign("b" * 64, promo_type=PromoType.PREMIUM_GRANT, discount_percent=None,
                                               grant_plan_code="PREMIUM", grant_days=30, applicable_products=(),
                                               valid_until=None, max_total_uses=None))
    with uow_factory() as uow:
        assert uow.promo_codes.get(grant.id or 0) == grant
        assert uow.promo_codes.get(10_000) is None


def test_timestamps_in_other_zones_are_stored_as_the_same_instant(uow_factory: Factory) -> None:
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    c = add_campaign(uow_factory, campaign(valid_from=plus_two))
    with uow_factory() as uow:
        read = uow.promo_codes.get(c.id or 0)
    assert read is not None and read.valid_from == T0


def test_a_second_campaign_with_the_same_hash_is_refused_and_nothing_is_kept(uow_factory: Factory) -> None:
    first = add_campaign(uow_factory)
    with uow_factory() as uow, pytest.raises(DuplicateCodeHash):
        uow.promo_codes.add(campaign(campaign_name="other"))
    with uow_factory() as uow:
        assert uow.promo_codes.search(CampaignFilter(), 10, None) == [first]


def test_uncommitted_work_is_rolled_back(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        uow.promo_codes.add(campaign())
    with uow_factory() as uow:
        assert uow.promo_codes.search(CampaignFilter(), 10, None) == []
        assert uow.promo_codes.existing_hashes(["a" * 64]) == set()


def test_add_many_returns_ids_in_input_order_and_sees_its_own_rows(uow_factory: Factory) -> None:
    hashes = [f"{i:064x}" for i in range(1, 1201)]
    with uow_factory() as uow:
        ids = uow.promo_codes.add_many([campaign(h) for h in hashes])
        assert len(ids) == len(set(ids)) == 1200
        assert uow.promo_codes.existing_hashes([*hashes[:5], "f" * 64]) == set(hashes[:5])
        uow.commit()
    with uow_factory() as uow:
        for i in (0, 599, 1199):
            got = uow.promo_codes.get(ids[i])
            assert got is not None and got.code_hash == hashes[i]
        assert len(uow.promo_codes.existing_hashes(hashes)) == 1200


def test_add_many_with_a_stored_or_repeated_hash_inserts_nothing(uow_factory: Factory) -> None:
    add_campaign(uow_factory)
    with uow_factory() as uow, pytest.raises(DuplicateCodeHash):
        uow.promo_codes.add_many([campaign("c" * 64), campaign("a" * 64)])
    with uow_factory() as uow, pytest.raises(DuplicateCodeHash):
        uow.promo_codes.add_many([campaign("d" * 64), campaign("d" * 64)])
    with uow_factory() as uow:
        assert uow.promo_codes.existing_hashes(["c" * 64, "d" * 64]) == set()


def test_get_by_hashes_prefers_the_first_hash_given(uow_factory: Factory) -> None:
    a = add_campaign(uow_factory, campaign("a" * 64))
    b = add_campaign(uow_factory, campaign("b" * 64))
    with uow_factory() as uow:
        assert uow.promo_codes.get_by_hashes(["b" * 64, "a" * 64]) == b
        assert uow.promo_codes.get_by_hashes(["0" * 64, "a" * 64]) == a
        assert uow.promo_codes.get_by_hashes(["0" * 64]) is None
        assert uow.promo_codes.get_by_hashes([]) is None


def test_search_filters_and_pages_by_id(uow_factory: Factory) -> None:
    a = add_campaign(uow_factory, campaign("a" * 64, campaign_name="Spring 100% sale"))
    b = add_campaign(uow_factory, campaign("b" * 64, campaign_name="Winter", promo_type=PromoType.PREMIUM_GRANT,
                                           discount_percent=None, grant_plan_code="P", grant_days=7))
    c = add_campaign(uow_factory, campaign("c" * 64, campaign_name="spring_b", status=CampaignStatus.PAUSED,
                                           paused_reason=PausedReason.MANUAL))
    with uow_factory() as uow:
        pc = uow.promo_codes
        assert pc.search(CampaignFilter(), 2, None) == [a, b]
        assert pc.search(CampaignFilter(), 2, b.id) == [c]
        assert pc.search(CampaignFilter(name_contains="SPRING"), 10, None) == [a, c]
        assert pc.search(CampaignFilter(name_contains="100%"), 10, None) == [a]
        assert pc.search(CampaignFilter(name_contains="g_b"), 10, None) == [c]
        assert pc.search(CampaignFilter(name_contains="%"), 10, None) == [a]
        assert pc.search(CampaignFilter(status=CampaignStatus.PAUSED), 10, None) == [c]
        assert pc.search(CampaignFilter(promo_type=PromoType.PREMIUM_GRANT), 10, None) == [b]


def test_set_status_moves_only_from_an_expected_state(uow_factory: Factory) -> None:
    c = add_campaign(uow_factory)
    later = T0 + timedelta(minutes=5)
    with uow_factory() as uow:
        pc = uow.promo_codes
        assert pc.set_status(c.id or 0, [CampaignStatus.PAUSED], CampaignStatus.ACTIVE, None, later) is None
        paused = uow.promo_codes.set_status(c.id or 0, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED,
                                            PausedReason.AUTO_BRUTEFORCE, later)
        assert paused is not None and paused.status is CampaignStatus.PAUSED
        assert paused.paused_reason is PausedReason.AUTO_BRUTEFORCE and paused.updated_at == later
        active = uow.promo_codes.set_status(c.id or 0, [CampaignStatus.PAUSED], CampaignStatus.ACTIVE,
                                            PausedReason.MANUAL, later)
        assert active is not None and active.paused_reason is None
        assert uow.promo_codes.set_status(999, [CampaignStatus.ACTIVE], CampaignStatus.PAUSED, None, later) is None
        uow.commit()


def test_capacity_claims_stop_at_the_limit_and_releases_never_go_below_zero(uow_factory: Factory) -> None:
    c = add_campaign(uow_factory)  # max_total_uses=2
    with uow_factory() as uow:
        assert [uow.promo_codes.claim_capacity(c.id or 0, T0) is not None for _ in range(3)] == [True, True, False]
        uow.promo_codes.release_capacity(c.id or 0, T0)
        claimed = uow.promo_codes.claim_capacity(c.id or 0, T0)
        assert claimed is not None and claimed.used_total == 2
        for _ in range(4):
            uow.promo_codes.release_capacity(c.id or 0, T0)
        assert (uow.promo_codes.get(c.id or 0) or c).used_total == 0
        uow.commit()
    unlimited = add_campaign(uow_factory, campaign("b" * 64, max_total_uses=None))
    paused = add_campaign(uow_factory, campaign("e" * 64, status=CampaignStatus.PAUSED))
    with uow_factory() as uow:
        for _ in range(5):
            assert uow.promo_codes.claim_capacity(unlimited.id or 0, T0) is not None
        assert uow.promo_codes.claim_capacity(paused.id or 0, T0) is None


def test_rollover_queries_find_past_validity_and_used_up_campaigns(uow_factory: Factory) -> None:
    past = add_campaign(uow_factory, campaign("a" * 64, valid_until=T0 + timedelta(minutes=1)))
    paused_past = add_campaign(uow_factory, campaign("b" * 64, valid_until=T0 + timedelta(minutes=1),
                                                     status=CampaignStatus.PAUSED, paused_reason=PausedReason.MANUAL))
    add_campaign(uow_factory, campaign("c" * 64, valid_until=None))
    used_up = add_campaign(uow_factory, campaign("d" * 64, max_total_uses=1, used_total=1))
    held = add_campaign(uow_factory, campaign("e" * 64, max_total_uses=1, used_total=1))
    with uow_factory() as uow:
        uow.redemptions.add(redemption(held.id or 0))
        uow.commit()
    with uow_factory() as uow:
        due = uow.promo_codes.due_for_expiry(T0 + timedelta(minutes=1), 10)
        assert sorted(c.id or 0 for c in due) == [past.id, paused_past.id]
        assert uow.promo_codes.due_for_expiry(T0, 10) == []
        assert [c.id for c in uow.promo_codes.due_for_depletion(10)] == [used_up.id]


def test_guard_lookups_see_only_active_campaigns(uow_factory: Factory) -> None:
    a = add_campaign(uow_factory, campaign("a" * 64, code_prefix="ABCD"))
    add_campaign(uow_factory, campaign("b" * 64, code_prefix="ABCD", status=CampaignStatus.PAUSED,
                                       paused_reason=PausedReason.MANUAL, updated_at=T0 + timedelta(hours=1)))
    with uow_factory() as uow:
        assert uow.promo_codes.active_with_prefix("ABCD") == [a]
        assert uow.promo_codes.active_with_hashes(["a" * 64, "b" * 64]) == [a]
        assert uow.promo_codes.count_paused() == 1
        assert uow.promo_codes.count_paused(T0 + timedelta(hours=1)) == 1
        assert uow.promo_codes.count_paused(T0 + timedelta(hours=2)) == 0


# --- promo_redemptions ------------------------------------------------------------------------------------


def test_an_idempotency_key_is_unique(uow_factory: Factory) -> None:
    c = add_campaign(uow_factory)
    with uow_factory() as uow:
        stored = uow.redemptions.add(redemption(c.id or 0))
        uow.commit()
    with uow_factory() as uow, pytest.raises(DuplicateIdempotencyKey):
        uow.redemptions.add(redemption(c.id or 0, user_id=2))
    with uow_factory() as uow:
        assert uow.redemptions.get_by_idempotency_key("k1") == stored
        assert uow.redemptions.get(stored.id or 0) == stored


def test_one_live_redemption_per_user_and_campaign_but_expired_ones_do_not_count(uow_factory: Factory) -> None:
    c = add_campaign(uow_factory)
    with uow_factory() as uow:
        uow.redemptions.add(redemption(c.id or 0, key="old", status=RedemptionStatus.EXPIRED))
        live = uow.redemptions.add(redemption(c.id or 0, key="k1"))
        uow.commit()
    with uow_factory() as uow, pytest.raises(LiveRedemptionExists):
        uow.redemptions.add(redemption(c.id or 0, key="k2", status=RedemptionStatus.APPLIED))
    with uow_factory() as uow:
        assert uow.redemptions.get_live(c.id or 0, 1) == live
        assert uow.redemptions.get_live(c.id or 0, 2) is None
        uow.redemptions.add(redemption(c.id or 0, user_id=2, key="k3"))
        uow.commit()


def test_a_reservation_binds_applies_and_revokes_only_from_the_right_state(uow_factory: Factory) -> None:
    c = add_campaign(uow_factory)
    soon = T0 + timedelta(minutes=1)
    with uow_factory() as uow:
        r = uow.redemptions.add(redemption(c.id or 0))
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
    c = add_campaign(uow_factory, campaign(max_total_uses=None))
    due_at = T0 + timedelta(minutes=15)
    with uow_factory() as uow:
        a = uow.redemptions.add(redemption(c.id or 0, user_id=1, key="a"))
        b = uow.redemptions.add(redemption(c.id or 0, user_id=2, key="b"))
        uow.redemptions.add(redemption(c.id or 0, user_id=3, key="c", reserved_until=due_at + timedelta(minutes=1)))
        uow.redemptions.add(redemption(c.id or 0, user_id=4, key="d", status=RedemptionStatus.APPLIED,
                                       reserved_until=None, discount_percent=None))
        uow.redemptions.bind_purchase(b.id or 0, 1, T0)
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.due_for_expiry(due_at - timedelta(seconds=1), 10) == []
        due = uow.redemptions.due_for_expiry(due_at, 10)
        assert [r.id for r in due] == [a.id]
        assert uow.redemptions.expire(a.id or 0, due_at - timedelta(seconds=1)) is None
        expired = uow.redemptions.expire(a.id or 0, due_at)
        assert expired is not None and expired.status is RedemptionStatus.EXPIRED
        assert uow.redemptions.expire(a.id or 0, due_at) is None
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.count_by_status(c.id or 0) == {
            RedemptionStatus.RESERVED: 2, RedemptionStatus.APPLIED: 1,
            RedemptionStatus.EXPIRED: 1, RedemptionStatus.REVOKED: 0,
        }
        assert uow.redemptions.count_created(T0, T0 + timedelta(seconds=1), False) == 4
        assert uow.redemptions.count_created(T0, T0 + timedelta(seconds=1), True) == 3
        assert uow.redemptions.count_created(T0 + timedelta(seconds=1), T0 + timedelta(hours=1), False) == 0


def test_applied_reservations_are_counted_in_their_creation_window(uow_factory: Factory) -> None:
    c = add_campaign(uow_factory, campaign(max_total_uses=None))
    with uow_factory() as uow:
        r = uow.redemptions.add(redemption(c.id or 0))
        uow.redemptions.add(redemption(c.id or 0, user_id=2, key="k2"))
        uow.redemptions.apply(r.id or 0, 5, T0)
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.count_applied_reservations(T0, T0 + timedelta(hours=1)) == 1
        assert uow.redemptions.count_applied_reservations(T0 + timedelta(hours=1), T0 + timedelta(hours=2)) == 0


# --- promo_attempts ---------------------------------------------------------------------------------------


def attempt(user: int, result: RedeemResult, at: datetime, h: str | None = "h" * 64,
            prefix: str | None = "ABCD") -> Attempt:
    return Attempt(user_id=user, normalized_code_hash=h, code_prefix=prefix, result=result, attempted_at=at)


def test_failure_stats_count_only_failures_in_the_window(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        for i, result in enumerate([RedeemResult.INVALID, RedeemResult.ACCEPTED, RedeemResult.RATE_LIMITED,
                                    RedeemResult.DEPLETED, RedeemResult.INVALID]):
            uow.attempts.add(attempt(1, result, T0 + timedelta(minutes=i)))
        uow.attempts.add(attempt(2, RedeemResult.INVALID, T0 + timedelta(minutes=9)))
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
            uow.attempts.add(attempt(100 + i % 3, RedeemResult.ALREADY_USED, T0 + timedelta(seconds=i), h="x" * 64))
        for i in range(4):
            uow.attempts.add(attempt(200 + i, RedeemResult.INVALID, T0 + timedelta(seconds=i), h=f"{i:064x}",
                                     prefix="ZZZZ"))
        uow.attempts.add(attempt(300, RedeemResult.INVALID, T0 - timedelta(hours=1), h="x" * 64, prefix="ZZZZ"))
        uow.attempts.add(attempt(301, RedeemResult.INVALID, T0, h=None, prefix=None))
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


# --- purchases --------------------------------------------------------------------------------------------


def test_one_open_purchase_per_user_and_product(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        p = uow.purchases.add(purchase())
        uow.commit()
    with uow_factory() as uow, pytest.raises(OpenPurchaseExists):
        uow.purchases.add(purchase())
    with uow_factory() as uow:
        assert uow.purchases.get_open(1, "PREMIUM_30D") == p
        uow.purchases.add(purchase(product="PREMIUM_7D"))
        uow.purchases.add(purchase(user_id=2))
        failed = uow.purchases.set_status(p.id or 0, [PurchaseStatus.CREATED], PurchaseStatus.FAILED, T0)
        assert failed is not None and failed.status is PurchaseStatus.FAILED
        assert uow.purchases.get_open(1, "PREMIUM_30D") is None
        again = uow.purchases.add(purchase())
        uow.commit()
    with uow_factory() as uow:
        assert uow.purchases.get_open(1, "PREMIUM_30D") == again


def test_payment_and_refund_set_their_timestamps_and_the_charge_id_is_unique(uow_factory: Factory) -> None:
    paid_at, refunded_at = T0 + timedelta(minutes=2), T0 + timedelta(days=1)
    with uow_factory() as uow:
        p = uow.purchases.add(purchase())
        q = uow.purchases.add(purchase(user_id=2))
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
    c = add_campaign(uow_factory, campaign(max_total_uses=None))
    with uow_factory() as uow:
        r1 = uow.redemptions.add(redemption(c.id or 0, user_id=1, key="a", status=RedemptionStatus.APPLIED))
        r2 = uow.redemptions.add(redemption(c.id or 0, user_id=2, key="b", status=RedemptionStatus.REVOKED))
        old = uow.purchases.add(purchase(user_id=1, product="PREMIUM_7D"))
        fresh = uow.purchases.add(purchase(user_id=1, product="PREMIUM_90D", created_at=T0 + timedelta(hours=1)))
        refunded = uow.purchases.add(purchase(user_id=1, status=PurchaseStatus.REFUNDED, promo_redemption_id=r1.id))
        uow.purchases.add(purchase(user_id=2, status=PurchaseStatus.REFUNDED, promo_redemption_id=r2.id))
        uow.purchases.add(purchase(user_id=3, status=PurchaseStatus.REFUNDED))
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
    add_campaign(uow_factory)
    with uow_factory() as uow:
        with pytest.raises(DuplicateCodeHash):
            uow.promo_codes.add(campaign())
        uow.rollback()
        uow.promo_codes.add(campaign("b" * 64))
        uow.commit()
    with uow_factory() as uow:
        assert uow.promo_codes.existing_hashes(["a" * 64, "b" * 64]) == {"a" * 64, "b" * 64}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_naive_datetimes_never_reach_a_table(uow_factory: Factory) -> None:
    with uow_factory() as uow, pytest.raises(Exception, match="naive"):
        uow.promo_codes.add(campaign(valid_from=datetime(2026, 1, 1)))


def test_expire_many_expires_only_due_unbound_reservations_and_releases_units_in_bulk(uow_factory: Factory) -> None:
    c = add_campaign(uow_factory, campaign(max_total_uses=10))
    due_at = T0 + timedelta(minutes=15)
    with uow_factory() as uow:
        ids = []
        for user in range(1, 6):
            assert uow.promo_codes.claim_capacity(c.id or 0, T0) is not None
            ids.append(uow.redemptions.add(redemption(c.id or 0, user_id=user, key=f"k{user}")).id or 0)
        uow.redemptions.bind_purchase(ids[1], 1, T0)  # bound: stays
        late = uow.redemptions.add(redemption(c.id or 0, user_id=9, key="late",
                                              reserved_until=due_at + timedelta(minutes=1)))
        uow.commit()
    with uow_factory() as uow:
        assert uow.redemptions.expire_many([], due_at) == []
        expired = uow.redemptions.expire_many([*ids, ids[0], late.id or 0, 999_999], due_at)
        assert sorted(r.id or 0 for r in expired) == sorted([ids[0], *ids[2:]])
        assert all(r.status is RedemptionStatus.EXPIRED for r in expired)
        assert uow.redemptions.expire_many(ids, due_at) == []  # already expired: nothing twice
        uow.promo_codes.release_capacity(c.id or 0, due_at, len(expired))
        assert (uow.promo_codes.get(c.id or 0) or c).used_total == 1
        uow.promo_codes.release_capacity(c.id or 0, due_at, 5)  # never below zero
        assert (uow.promo_codes.get(c.id or 0) or c).used_total == 0
        uow.commit()
    other = add_campaign(uow_factory, campaign("f" * 64, max_total_uses=None))
    with uow_factory() as uow:
        for _ in range(3):
            uow.promo_codes.claim_capacity(other.id or 0, T0)
        uow.promo_codes.release_capacity_many({other.id or 0: 2, c.id or 0: 1}, due_at)
        uow.promo_codes.release_capacity_many({}, due_at)
        assert (uow.promo_codes.get(other.id or 0) or other).used_total == 1
        assert (uow.promo_codes.get(c.id or 0) or c).used_total == 0
        uow.commit()


def test_redeem_snapshot_reads_what_the_single_reads_answer(uow_factory: Factory) -> None:
    a = add_campaign(uow_factory, campaign("a" * 64))
    b = add_campaign(uow_factory, campaign("b" * 64))
    with uow_factory() as uow:
        uow.redemptions.add(redemption(a.id or 0, user_id=1, key="gone", status=RedemptionStatus.EXPIRED))
        live = uow.redemptions.add(redemption(a.id or 0, user_id=1, key="k1"))
        other = uow.redemptions.add(redemption(b.id or 0, user_id=2, key="k2", status=RedemptionStatus.APPLIED))
        for i, result in enumerate([RedeemResult.INVALID, RedeemResult.ACCEPTED, RedeemResult.PAUSED]):
            uow.attempts.add(attempt(1, result, T0 + timedelta(minutes=i)))
        uow.commit()
    cases = [
        ("k1", 1, ["a" * 64], T0),  # key, failures, campaign and live redemption all found
        ("k2", 1, ["b" * 64, "a" * 64], T0 + timedelta(minutes=1)),  # the first hash wins; no live one for b
        ("new", 2, ["0" * 64, "b" * 64], T0),  # an unknown hash first (a previous pepper's); user 2's live
        ("new", 3, ["0" * 64], T0),  # nothing at all
        ("new", 1, [], T0),  # malformed code: no hash to look up
        ("gone", 1, ["a" * 64], T0 + timedelta(hours=1)),  # an expired key still answers; no failures in window
    ]
    with uow_factory() as uow:
        snaps = [uow.redemptions.redeem_snapshot(*case) for case in cases]
        parts = [snapshot_by_parts(uow.redemptions, uow.attempts, uow.promo_codes, *case) for case in cases]
    assert snaps == parts
    assert snaps[0] == RedeemSnapshot(live, 2, T0 + timedelta(minutes=2), a, live)
    assert snaps[1] == RedeemSnapshot(other, 1, T0 + timedelta(minutes=2), b, None)
    assert snaps[2] == RedeemSnapshot(None, 0, None, b, other)
    assert snaps[3] == RedeemSnapshot(None, 0, None, None, None)
    assert snaps[4] == RedeemSnapshot(None, 2, T0 + timedelta(minutes=2), None, None)
    assert snaps[5].by_key is not None and snaps[5].by_key.status is RedemptionStatus.EXPIRED
    assert (snaps[5].failures, snaps[5].campaign, snaps[5].live) == (0, a, live)


def test_add_and_claim_writes_the_redemption_and_attempt_then_claims_a_unit(uow_factory: Factory) -> None:
    """All of it or (after the caller's rollback) none of it, whether or not the adapter runs it on its own."""
    c = add_campaign(uow_factory, campaign(max_total_uses=1))
    paused = add_campaign(uow_factory, campaign("b" * 64, status=CampaignStatus.PAUSED,
                                                paused_reason=PausedReason.MANUAL))
    now = T0 + timedelta(minutes=1)
    ok = attempt(1, RedeemResult.ACCEPTED, now)
    with uow_factory() as uow:
        created = uow.redemptions.add_and_claim(redemption(c.id or 0), ok, now)
        assert created is not None
        stored, claimed = created
        assert stored.id is not None and attrs.evolve(stored, id=None) == redemption(c.id or 0)
        assert claimed == attrs.evolve(c, used_total=1, updated_at=now)
        assert uow.attempts.counts_by_result(T0, T0 + timedelta(hours=1)) == {RedeemResult.ACCEPTED: 1}
        uow.commit()
    with uow_factory() as uow:  # capacity used up, or paused: no unit (the caller rolls back)
        assert uow.redemptions.add_and_claim(redemption(c.id or 0, user_id=2, key="k2"), ok, now) is None
        uow.rollback()
        assert uow.redemptions.add_and_claim(redemption(paused.id or 0, key="k3"), ok, now) is None
        uow.rollback()
    with uow_factory() as uow, pytest.raises(DuplicateIdempotencyKey):
        uow.redemptions.add_and_claim(redemption(paused.id or 0, user_id=3, key="k1"), ok, now)
    with uow_factory() as uow, pytest.raises(LiveRedemptionExists):
        uow.redemptions.add_and_claim(redemption(c.id or 0, user_id=1, key="k4"), ok, now)
    with uow_factory() as uow:  # nothing of the refused or rolled-back calls was kept
        assert uow.promo_codes.get(c.id or 0) == attrs.evolve(c, used_total=1, updated_at=now)
        assert uow.promo_codes.get(paused.id or 0) == paused
        assert uow.redemptions.get_by_idempotency_key("k2") is None
        assert uow.redemptions.get_by_idempotency_key("k3") is None
        assert uow.attempts.counts_by_result(T0, T0 + timedelta(hours=1)) == {RedeemResult.ACCEPTED: 1}
