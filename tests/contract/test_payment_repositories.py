"""Payments ports on memory, SQLite and PostgreSQL: the reconciliation, dashboard, campaign and support queries
over ``purchases``, and the ``payment_reviews`` table whose unique ``dedup_key`` makes each difference one row."""

from __future__ import annotations

import threading
from datetime import timedelta, timezone
from typing import Any

import attrs

from domain.model import HourCount, PaymentReview, PaymentTotals, PromoCode, Purchase, PurchaseStatus
from ports.repositories import UnitOfWork
from tests.builders import (
    Factory,
    make_campaign,
    make_code,
    make_purchase,
    make_redemption,
    store_campaign_with_code,
    store_code,
)
from tests.conftest import T0

LATER = T0 + timedelta(hours=1)


def review(key: str = "k" * 64, **changes: Any) -> PaymentReview:
    base = PaymentReview(
        id=None, dedup_key=key, event="payments_reconciliation_diff_detected", kind="MISSING_LOCAL_PURCHASE",
        purchase_id=None, telegram_payment_charge_id="ch-1",
        details={"telegram_stars": 150, "figures": {"local": {"count": 2, "stars": 300}}, "charges": ["a", "b"],
                 "payload": None},
        created_at=T0,
    )
    return attrs.evolve(base, **changes)


def test_a_review_reads_back_with_its_details_and_a_second_one_with_the_same_key_is_not_added(
        uow_factory: Factory) -> None:
    with uow_factory() as uow:
        p = uow.purchases.add(make_purchase())
        first = uow.payment_reviews.add(review(purchase_id=p.id))
        assert first is not None and first.id is not None
        assert uow.payment_reviews.add(review(kind="OTHER")) is None
        uow.commit()
    with uow_factory() as uow:
        stored = uow.payment_reviews.get(first.id)
        assert stored is not None
        assert stored.details == first.details == review().details
        assert (stored.dedup_key, stored.kind, stored.purchase_id, stored.telegram_payment_charge_id) == (
            "k" * 64, "MISSING_LOCAL_PURCHASE", p.id, "ch-1")
        assert stored.created_at == T0 and stored.is_open and stored.resolution_note is None
        assert uow.payment_reviews.get(10_000) is None


def test_resolving_is_once_and_a_resolved_key_still_blocks_a_new_row(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        r = uow.payment_reviews.add(review())
        assert r is not None and r.id is not None
        uow.commit()
    with uow_factory() as uow:
        done = uow.payment_reviews.resolve(r.id, "refunded by hand", T0 + timedelta(hours=1))
        assert done is not None and done.resolved_at == T0 + timedelta(hours=1)
        assert done.resolution_note == "refunded by hand" and not done.is_open
        assert uow.payment_reviews.resolve(r.id, "again", T0 + timedelta(hours=2)) is None
        assert uow.payment_reviews.resolve(10_000, None, T0) is None
        uow.commit()
    with uow_factory() as uow:
        assert uow.payment_reviews.add(review()) is None
        assert uow.payment_reviews.count_open() == 0


def test_many_reviews_are_added_at_once_each_key_once(uow_factory: Factory) -> None:
    """Issue 17: a run finding thousands of differences records them in a few statements."""
    with uow_factory() as uow:
        assert uow.payment_reviews.add(review("key-0")) is not None
        uow.commit()
    with uow_factory() as uow:
        added = uow.payment_reviews.add_many([review(f"key-{i}") for i in range(1200)] + [review("key-7")])
        assert sorted(r.dedup_key for r in added) == sorted(f"key-{i}" for i in range(1, 1200))
        assert len({r.id for r in added}) == 1199 and all(r.id is not None for r in added)
        assert uow.payment_reviews.add_many([]) == []
        uow.commit()
    with uow_factory() as uow:
        assert uow.payment_reviews.count_open() == 1200
        assert uow.payment_reviews.add_many([review("key-3"), review("key-new")])[0].dedup_key == "key-new"
        assert uow.payment_reviews.existing_keys(["key-0", "key-1199", "key-1200", "key-0"]) == {"key-0", "key-1199"}
        assert uow.payment_reviews.existing_keys([]) == set()


def test_reviews_list_by_id_open_only_after_an_id_and_up_to_a_limit(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        ids = []
        for i in range(5):
            added = uow.payment_reviews.add(review(f"key-{i}"))
            assert added is not None and added.id is not None
            ids.append(added.id)
        uow.payment_reviews.resolve(ids[1], None, T0)
        uow.commit()
    with uow_factory() as uow:
        assert [r.id for r in uow.payment_reviews.list(open_only=False, limit=10)] == ids
        assert [r.id for r in uow.payment_reviews.list(open_only=True, limit=10)] == [ids[0], *ids[2:]]
        assert [r.id for r in uow.payment_reviews.list(open_only=True, limit=2, after_id=ids[0])] == ids[2:4]
        assert uow.payment_reviews.count_open() == 4


def test_an_uncommitted_review_is_rolled_back(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        uow.payment_reviews.add(review())
    with uow_factory() as uow:
        assert uow.payment_reviews.count_open() == 0
        assert uow.payment_reviews.add(review()) is not None


def test_settled_between_finds_payments_and_refunds_in_a_half_open_window(uow_factory: Factory) -> None:
    since, until = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    with uow_factory() as uow:
        at_start = uow.purchases.add(make_purchase(user_id=1, status=PurchaseStatus.PAID, paid_at=since,
                                              telegram_payment_charge_id="a"))
        uow.purchases.add(make_purchase(user_id=2, status=PurchaseStatus.PAID, paid_at=until,
                                   telegram_payment_charge_id="b"))
        refunded_inside = uow.purchases.add(make_purchase(
            user_id=3, status=PurchaseStatus.REFUNDED, paid_at=T0, refunded_at=until - timedelta(microseconds=1),
            telegram_payment_charge_id="c"))
        uow.purchases.add(make_purchase(user_id=4, status=PurchaseStatus.PAID, paid_at=since - timedelta(seconds=1),
                                   telegram_payment_charge_id="d"))
        uow.purchases.add(make_purchase(user_id=5))  # never paid
        uow.commit()
    with uow_factory() as uow:
        assert [p.id for p in uow.purchases.settled_between(since, until)] == [at_start.id, refunded_inside.id]
        assert uow.purchases.settled_between(until + timedelta(hours=1), until + timedelta(hours=2)) == []


def test_flagged_for_review_sees_flags_changed_since_a_moment(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        a = uow.purchases.add(make_purchase(user_id=1))
        b = uow.purchases.add(make_purchase(user_id=2))
        uow.purchases.add(make_purchase(user_id=3))
        uow.purchases.mark_review(a.id or 0, "AMOUNT_MISMATCH", T0 + timedelta(hours=1))
        uow.purchases.mark_review(b.id or 0, "USER_MISMATCH", T0 + timedelta(hours=3))
        uow.commit()
    with uow_factory() as uow:
        assert [p.id for p in uow.purchases.flagged_for_review(T0, 10)] == [a.id, b.id]
        assert [p.id for p in uow.purchases.flagged_for_review(T0, 1)] == [a.id]
        flagged = uow.purchases.flagged_for_review(T0 + timedelta(hours=2), 10)
        assert [(p.id, p.review_reason) for p in flagged] == [(b.id, "USER_MISMATCH")]


def test_totals_count_paid_by_paid_at_refunded_by_refunded_at_and_failed_by_their_last_change(
        uow_factory: Factory) -> None:
    since, until = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    inside = since + timedelta(minutes=5)
    with uow_factory() as uow:
        assert uow.purchases.totals(since, until) == PaymentTotals()
        uow.purchases.add(make_purchase(user_id=1, status=PurchaseStatus.PAID, paid_at=inside,
                                   telegram_payment_charge_id="a", final_stars_amount=120))
        # Paid inside, refunded inside: counts on both sides.
        uow.purchases.add(make_purchase(user_id=2, status=PurchaseStatus.REFUNDED, paid_at=inside, refunded_at=inside,
                                   telegram_payment_charge_id="b", final_stars_amount=50))
        # Paid before the window, refunded inside it: a refund only.
        uow.purchases.add(make_purchase(user_id=3, status=PurchaseStatus.REFUNDED, paid_at=T0, refunded_at=inside,
                                   telegram_payment_charge_id="c", final_stars_amount=1000))
        uow.purchases.add(make_purchase(user_id=4, status=PurchaseStatus.FAILED, updated_at=inside,
                                   final_stars_amount=350))
        uow.purchases.add(make_purchase(user_id=5, status=PurchaseStatus.FAILED, updated_at=until))  # after
        uow.purchases.add(make_purchase(user_id=6, status=PurchaseStatus.PAID, paid_at=until,
                                   telegram_payment_charge_id="f"))  # after
        uow.commit()
    with uow_factory() as uow:
        assert uow.purchases.totals(since, until) == PaymentTotals(
            paid_count=2, paid_stars=170, refunded_count=2, refunded_stars=1050, failed_count=1, failed_stars=350)


def test_racing_inserts_of_one_dedup_key_leave_exactly_one_row(uow_factory: Factory) -> None:
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def add() -> None:
        start.wait()
        with uow_factory() as uow:
            added = uow.payment_reviews.add(review("racing"))
            uow.commit()
        with lock:
            results.append(added is not None)

    threads = [threading.Thread(target=add) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    with uow_factory() as uow:
        assert uow.payment_reviews.count_open() == 1


# --- purchases for support, the dashboard series and campaign metrics -------------------------------------------


def paid_with(uow: UnitOfWork, code: PromoCode | None, user_id: int, paid_at: Any, final: int, discount: int = 30,
              **changes: Any) -> Purchase:
    """A purchase paid at ``paid_at`` (with a reservation of ``code`` when given), added in ``uow``."""
    redemption_id = None
    if code is not None:
        redemption_id = uow.redemptions.add(make_redemption(code, user_id=user_id, key=f"u{user_id}")).id
    fields: dict[str, Any] = {"status": PurchaseStatus.PAID, "paid_at": paid_at, "final_stars_amount": final,
                              "discount_stars_amount": discount, "promo_redemption_id": redemption_id, **changes}
    return uow.purchases.add(make_purchase(user_id=user_id, **fields))


def test_a_users_purchases_are_listed_newest_first_up_to_a_limit(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        first = uow.purchases.add(make_purchase(product="PREMIUM_7D", created_at=T0))
        newest = uow.purchases.add(make_purchase(product="PREMIUM_30D", created_at=T0 + timedelta(hours=2)))
        middle = uow.purchases.add(make_purchase(product="PREMIUM_90D", created_at=LATER))  # written last
        uow.purchases.add(make_purchase(user_id=2, created_at=T0 + timedelta(days=1)))
        uow.commit()
    with uow_factory() as uow:
        assert uow.purchases.for_user(1, 10) == [newest, middle, first]
        assert uow.purchases.for_user(1, 2) == [newest, middle]
        assert uow.purchases.for_user(3, 10) == []


def test_revenue_per_hour_sums_the_final_stars_of_purchases_paid_in_each_utc_hour(uow_factory: Factory) -> None:
    half_hour_zone = timezone(timedelta(hours=-3, minutes=-30))
    with uow_factory() as uow:
        paid_with(uow, None, 1, T0, 100, telegram_payment_charge_id="a")  # the window's first instant
        paid_with(uow, None, 2, (T0 + timedelta(minutes=59)).astimezone(half_hour_zone), 20,
                  telegram_payment_charge_id="b")
        # Refunded later: it was paid in that hour all the same.
        paid_with(uow, None, 3, T0 + timedelta(minutes=150), 300, status=PurchaseStatus.REFUNDED,
                  refunded_at=T0 + timedelta(hours=5), telegram_payment_charge_id="c")
        paid_with(uow, None, 4, T0 + timedelta(hours=3), 4000, telegram_payment_charge_id="d")  # the end: outside
        paid_with(uow, None, 5, T0 - timedelta(microseconds=1), 50000, telegram_payment_charge_id="e")  # before
        uow.purchases.add(make_purchase(user_id=6, created_at=LATER))  # never paid
        uow.commit()
    with uow_factory() as uow:
        series = uow.purchases.hourly_revenue(T0, T0 + timedelta(hours=3))
        assert series == [HourCount(T0, 120), HourCount(T0 + timedelta(hours=2), 300)]
        assert all(point.hour.utcoffset() == timedelta(0) for point in series)
        assert uow.purchases.hourly_revenue(T0 + timedelta(days=1), T0 + timedelta(days=2)) == []


def test_revenue_per_hour_of_a_campaign_counts_only_purchases_made_with_its_redemptions(uow_factory: Factory) -> None:
    campaign, first_code = store_campaign_with_code(uow_factory, make_campaign(per_user_limit=2), "a" * 64)
    second_code = store_code(uow_factory, make_code(campaign, "b" * 64))
    other, other_code = store_campaign_with_code(uow_factory, make_campaign("other"), "c" * 64)
    with uow_factory() as uow:
        paid_with(uow, first_code, 1, T0 + timedelta(minutes=5), 100)
        paid_with(uow, second_code, 2, T0 + timedelta(minutes=65), 200)  # another code of the same campaign
        paid_with(uow, other_code, 3, T0 + timedelta(minutes=10), 4000)
        paid_with(uow, None, 4, T0 + timedelta(minutes=15), 50000)  # no promo at all
        uow.commit()
    window = (T0, T0 + timedelta(hours=2))
    with uow_factory() as uow:
        assert uow.purchases.hourly_revenue(*window, campaign.id) == [
            HourCount(T0, 100), HourCount(LATER, 200)]
        assert uow.purchases.hourly_revenue(*window, other.id) == [HourCount(T0, 4000)]
        assert uow.purchases.hourly_revenue(*window) == [HourCount(T0, 54100), HourCount(LATER, 200)]
        assert uow.purchases.hourly_revenue(*window, 10_000) == []


def test_paid_in_campaign_counts_final_and_discount_stars_of_purchases_paid_since_a_moment(
        uow_factory: Factory) -> None:
    campaign, code = store_campaign_with_code(uow_factory)
    _, other_code = store_campaign_with_code(uow_factory, make_campaign("other"), "b" * 64)
    with uow_factory() as uow:
        paid_with(uow, code, 1, T0, 120, discount=30)
        paid_with(uow, code, 2, LATER, 100, discount=50, status=PurchaseStatus.REFUNDED, refunded_at=LATER)
        paid_with(uow, code, 3, T0 - timedelta(seconds=1), 7, discount=7)  # before
        r = uow.redemptions.add(make_redemption(code, user_id=4, key="open"))
        uow.purchases.add(make_purchase(user_id=4, promo_redemption_id=r.id))  # not paid
        paid_with(uow, other_code, 5, LATER, 999, discount=99)
        uow.commit()
    with uow_factory() as uow:
        assert uow.purchases.paid_in_campaign(campaign.id or 0, T0) == (2, 220, 80)
        assert uow.purchases.paid_in_campaign(campaign.id or 0, LATER) == (1, 100, 50)
        assert uow.purchases.paid_in_campaign(campaign.id or 0, LATER + timedelta(microseconds=1)) == (0, 0, 0)
        assert uow.purchases.paid_in_campaign(10_000, T0) == (0, 0, 0)
