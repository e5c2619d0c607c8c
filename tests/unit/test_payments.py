"""Payments reliability in the domain (issue 10) on the in-memory adapters: paging, the comparison's
edges (window, grace, margin), dedup of differences, what recovery refuses, failures kept apart."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from adapters.memory import InMemoryNotifier, InMemoryUnitOfWorkFactory, ManualClock
from adapters.memory.payments import InMemoryPaymentGateway
from domain.alerts import RoutedAlert
from domain.checkout import CheckoutService
from domain.errors import DomainError, InvalidPurchaseState, NotFound, StorageUnavailable, ValidationError
from domain.model import Purchase, PurchaseStatus, StarTransaction
from domain.payment_reviews import PaymentReviewService
from domain.policy import PromoPolicy
from domain.reconciliation import DiffKind, ReconciliationService
from domain.recovery import RecoveryService, ReviewKind
from domain.star_transactions import fetch_transactions, parse_purchase_payload


class PagedGateway:
    """Serves a fixed list in the given order and records each page request."""

    def __init__(self, txs: list[StarTransaction]) -> None:
        self.txs = txs
        self.calls: list[tuple[int, int]] = []

    def refund_star_payment(self, user_id: int, telegram_payment_charge_id: str) -> None:
        raise AssertionError("not used")

    def get_star_transactions(self, offset: int, limit: int) -> list[StarTransaction]:
        self.calls.append((offset, limit))
        return self.txs[offset:offset + limit]


class BrokenNotifier:
    def notify(self, alert: RoutedAlert) -> None:
        raise ConnectionError("receiver down")


def tx(i: int, date: datetime, amount: int = 150, outgoing: bool = False,
       payload: str | None = None) -> StarTransaction:
    return StarTransaction(id=f"ch-{i}", amount=amount, date=date, user_id=7, outgoing=outgoing, payload=payload)


@pytest.fixture
def gateway() -> InMemoryPaymentGateway:
    return InMemoryPaymentGateway()


@pytest.fixture
def notifier() -> InMemoryNotifier:
    return InMemoryNotifier()


@pytest.fixture
def reconciliation(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, gateway: InMemoryPaymentGateway,
                   checkout: CheckoutService, notifier: InMemoryNotifier) -> ReconciliationService:
    return ReconciliationService(uow_factory, clock, gateway, checkout, notifier)


@pytest.fixture
def recovery(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, gateway: InMemoryPaymentGateway,
             checkout: CheckoutService, notifier: InMemoryNotifier) -> RecoveryService:
    return RecoveryService(uow_factory, clock, gateway, checkout, notifier)


def paid(checkout: CheckoutService, gateway: InMemoryPaymentGateway, clock: ManualClock, user_id: int,
         charge: str, product: str = "PREMIUM_30D", in_telegram: bool = True) -> Purchase:
    p = checkout.init(user_id, product)
    assert p.id is not None
    checkout.mark_invoice_sent(p.id)
    settled = checkout.successful_payment(p.id, charge, p.final_stars_amount).purchase
    if in_telegram:
        gateway.transactions.append(StarTransaction(id=charge, amount=p.final_stars_amount, date=clock.now(),
                                                    user_id=user_id, outgoing=False, payload=f"purchase:{p.id}"))
    return settled


def stuck_invoice(checkout: CheckoutService, gateway: InMemoryPaymentGateway, clock: ManualClock, charge: str,
                  payer: int) -> Purchase:
    """User 5's PREMIUM_7D invoice that Telegram says ``payer`` paid, never settled here."""
    p = checkout.init(5, "PREMIUM_7D")
    assert p.id is not None
    checkout.mark_invoice_sent(p.id)
    gateway.transactions.append(StarTransaction(id=charge, amount=50, date=clock.now(), user_id=payer,
                                                outgoing=False, payload=f"purchase:{p.id}"))
    return p


# --- paging -----------------------------------------------------------------------------------------------


def test_newest_first_pages_stop_at_the_first_page_reaching_past_the_window(clock: ManualClock) -> None:
    now = clock.now()
    txs = [tx(i, now - timedelta(minutes=i)) for i in range(1000)]  # newest first
    gw = PagedGateway(txs)
    scan = fetch_transactions(gw, now - timedelta(minutes=250))
    assert len(scan.transactions) == 251
    assert gw.calls == [(0, 100), (100, 100), (200, 100)]
    assert scan.pages == 3 and scan.read == 300


def test_chronological_pages_are_read_to_the_end(clock: ManualClock) -> None:
    now = clock.now()
    txs = [tx(i, now - timedelta(minutes=1000 - i)) for i in range(1000)]  # oldest first
    gw = PagedGateway(txs)
    scan = fetch_transactions(gw, now - timedelta(minutes=250))
    assert len(scan.transactions) == 250
    assert scan.pages == 11  # ten full pages and the empty one that ends it


def test_a_transaction_seen_on_two_pages_counts_once(clock: ManualClock) -> None:
    now = clock.now()
    txs = [tx(i, now - timedelta(minutes=i)) for i in range(150)]
    txs.insert(100, txs[99])  # a new payment shifted the offsets while we paged
    scan = fetch_transactions(PagedGateway(txs), now - timedelta(days=1))
    assert len(scan.transactions) == 150


def test_a_refund_and_its_payment_share_the_id_and_both_count(clock: ManualClock) -> None:
    now = clock.now()
    scan = fetch_transactions(PagedGateway([tx(1, now, outgoing=True), tx(1, now - timedelta(minutes=5))]),
                              now - timedelta(hours=1))
    assert sorted(t.outgoing for t in scan.transactions) == [False, True]


def test_more_pages_than_allowed_is_an_error_not_a_truncated_comparison(clock: ManualClock) -> None:
    now = clock.now()
    gw = PagedGateway([tx(i, now) for i in range(500)])
    with pytest.raises(DomainError, match="narrow it"):
        fetch_transactions(gw, now - timedelta(hours=1), page_size=100, max_pages=3)


@pytest.mark.parametrize(("payload", "expected"), [
    ("purchase:42", 42), ("purchase:0", 0), ("purchase:", None), ("purchase:-1", None), ("purchase:4x", None),
    ("purchase:١٢", None), ("order:42", None), (None, None), ("purchase:" + "9" * 19, None),
])
def test_only_a_purchase_payload_names_a_purchase(payload: str | None, expected: int | None) -> None:
    assert parse_purchase_payload(payload) == expected


# --- reconciliation edges ------------------------------------------------------------------------------------


def test_a_payment_younger_than_the_grace_is_not_a_difference_yet(
        reconciliation: ReconciliationService, gateway: InMemoryPaymentGateway, clock: ManualClock) -> None:
    gateway.transactions.append(tx(1, clock.now() - timedelta(minutes=14)))
    assert reconciliation.reconcile().matches
    clock.advance(minutes=1)
    report = reconciliation.reconcile()
    assert [d.kind for d in report.differences] == [DiffKind.MISSING_LOCAL_PURCHASE]


def test_a_counterpart_just_outside_the_window_still_matches(
        reconciliation: ReconciliationService, checkout: CheckoutService, gateway: InMemoryPaymentGateway,
        clock: ManualClock, notifier: InMemoryNotifier) -> None:
    p = paid(checkout, gateway, clock, 1, "ch-edge", in_telegram=False)
    # Telegram dated the payment a few minutes before we settled it, before the window starts.
    gateway.transactions.append(StarTransaction(id="ch-edge", amount=p.final_stars_amount,
                                                date=clock.now() - timedelta(minutes=3), user_id=1, outgoing=False))
    clock.advance(hours=24, minutes=1)  # our paid_at is inside the 24 h window, Telegram's date is not
    report = reconciliation.reconcile()
    assert report.matches, report.differences
    assert notifier.alerts == []


def test_each_difference_is_recorded_once_and_raised_once(
        reconciliation: ReconciliationService, checkout: CheckoutService, gateway: InMemoryPaymentGateway,
        clock: ManualClock, notifier: InMemoryNotifier, uow_factory: InMemoryUnitOfWorkFactory) -> None:
    paid(checkout, gateway, clock, 1, "ch-only-local", in_telegram=False)
    gateway.transactions.append(tx(99, clock.now()))
    clock.advance(minutes=20)
    first = reconciliation.reconcile()
    second = reconciliation.reconcile()
    assert sorted(d.kind for d in first.differences) == [DiffKind.MISSING_LOCAL_PURCHASE,
                                                          DiffKind.MISSING_TELEGRAM_TRANSACTION]
    assert all(d.new for d in first.differences) and not any(d.new for d in second.differences)
    assert [d.dedup_key for d in first.differences] == [d.dedup_key for d in second.differences]
    assert len(notifier.alerts) == 2 and first.alerts_sent == 2 and second.alerts_sent == 0
    assert {a.dedup_key for a in notifier.alerts} == {d.dedup_key for d in first.differences}
    assert len(uow_factory.store.payment_reviews) == 2


def test_the_comparison_without_acting_writes_and_raises_nothing(
        reconciliation: ReconciliationService, checkout: CheckoutService, gateway: InMemoryPaymentGateway,
        clock: ManualClock, notifier: InMemoryNotifier, uow_factory: InMemoryUnitOfWorkFactory) -> None:
    p = paid(checkout, gateway, clock, 1, "ch-r")
    gateway.transactions.append(StarTransaction(id="ch-r", amount=p.final_stars_amount, date=clock.now(), user_id=1,
                                                outgoing=True))
    clock.advance(minutes=20)
    report = reconciliation.reconcile(act=False)
    assert [d.kind for d in report.differences] == [DiffKind.REFUND_ONLY_IN_TELEGRAM]
    assert not report.differences[0].new
    assert notifier.alerts == [] and uow_factory.store.payment_reviews == {}
    assert checkout.get(p.id or 0).status is PurchaseStatus.PAID
    assert report.figures["drift"]["refunds_count"] == 1


def test_figures_count_and_sum_each_side_per_product(
        reconciliation: ReconciliationService, checkout: CheckoutService, gateway: InMemoryPaymentGateway,
        clock: ManualClock) -> None:
    paid(checkout, gateway, clock, 1, "a", "PREMIUM_7D")
    paid(checkout, gateway, clock, 2, "b", "PREMIUM_30D")
    paid(checkout, gateway, clock, 3, "c", "PREMIUM_30D")
    clock.advance(minutes=20)
    report = reconciliation.reconcile(window_hours=2)
    assert report.matches
    assert report.figures["telegram"]["payments"] == {"count": 3, "stars": 350}
    assert report.figures["local"]["payments"] == {"count": 3, "stars": 350}
    assert report.figures["products"]["PREMIUM_30D"] == {"local_stars": 300, "telegram_stars": 300, "drift": 0}
    assert report.window["hours"] == 2


@pytest.mark.parametrize("hours", [0, 721, -1, True, "24"])
def test_a_window_outside_1_to_720_hours_is_refused_naming_the_field(
        reconciliation: ReconciliationService, hours: object) -> None:
    with pytest.raises(ValidationError) as err:
        reconciliation.reconcile(window_hours=hours)  # type: ignore[arg-type]
    assert err.value.errors[0]["field"] == "window_hours"


def test_a_failing_alert_channel_is_counted_and_never_fails_the_job(
        uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, gateway: InMemoryPaymentGateway,
        checkout: CheckoutService) -> None:
    service = ReconciliationService(uow_factory, clock, gateway, checkout, BrokenNotifier())
    gateway.transactions.append(tx(1, clock.now()))
    clock.advance(minutes=20)
    report = service.reconcile()
    assert report.alerts_failed == 1 and report.alerts_sent == 0
    assert len(uow_factory.store.payment_reviews) == 1  # recorded: ops see it in `payments reviews`


# --- recovery edges -----------------------------------------------------------------------------------------


def test_a_payment_from_another_user_is_reviewed_not_settled(
        recovery: RecoveryService, checkout: CheckoutService, gateway: InMemoryPaymentGateway, clock: ManualClock,
        notifier: InMemoryNotifier) -> None:
    p = stuck_invoice(checkout, gateway, clock, "ch-x", payer=6)
    assert p.id is not None
    clock.advance(minutes=3)
    summary = recovery.recover()
    assert summary.settled == [] and summary.reviews == 1
    assert checkout.get(p.id).status is PurchaseStatus.INVOICE_SENT
    assert checkout.get(p.id).review_reason == ReviewKind.USER_MISMATCH.value
    assert [a.event for a in notifier.alerts] == ["payments_recovery_review_required"]
    assert notifier.alerts[0].details["items"][0]["purchase_user_id"] == 5


def test_a_payment_younger_than_the_recovery_grace_is_left_to_the_webhook(
        recovery: RecoveryService, checkout: CheckoutService, gateway: InMemoryPaymentGateway,
        clock: ManualClock) -> None:
    p = stuck_invoice(checkout, gateway, clock, "ch-y", payer=5)
    clock.advance(minutes=1)
    assert recovery.recover().candidates == 0
    clock.advance(minutes=1)
    assert recovery.recover().settled == [p.id]
    assert recovery.recover().candidates == 0  # settled: its charge id is known now


def test_a_database_outage_fails_the_recovery_instead_of_filing_reviews(
        uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, gateway: InMemoryPaymentGateway,
        notifier: InMemoryNotifier) -> None:
    class DownCheckout(CheckoutService):
        def successful_payment(self, purchase_id: int, charge_id: str, amount: int,  # type: ignore[no-untyped-def]
                               recorder: Any = None):
            raise StorageUnavailable("database unreachable")

    checkout = DownCheckout(uow_factory, clock)
    p = checkout.init(5, "PREMIUM_7D")
    assert p.id is not None
    gateway.transactions.append(StarTransaction(id="ch-z", amount=50, date=clock.now(), user_id=5, outgoing=False,
                                                payload=f"purchase:{p.id}"))
    clock.advance(minutes=3)
    with pytest.raises(StorageUnavailable):
        RecoveryService(uow_factory, clock, gateway, checkout, notifier).recover()
    assert notifier.alerts == [] and uow_factory.store.payment_reviews == {}


def test_policy_windows_and_graces_come_from_the_policy(
        uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, gateway: InMemoryPaymentGateway,
        checkout: CheckoutService) -> None:
    policy = PromoPolicy(reconciliation_window_hours=1, reconciliation_grace_minutes=1)
    service = ReconciliationService(uow_factory, clock, gateway, checkout, policy=policy)
    gateway.transactions.append(tx(1, clock.now() - timedelta(minutes=2)))
    gateway.transactions.append(tx(2, clock.now() - timedelta(hours=3)))  # outside the 1 h window
    report = service.reconcile()
    assert report.window["hours"] == 1
    assert [d.charge_id for d in report.differences] == ["ch-1"]


# --- review items: resolved by a person -------------------------------------------------------------------


def test_resolving_a_review_is_one_audit_entry_by_that_person_and_a_second_resolve_is_refused(
        reconciliation: ReconciliationService, gateway: InMemoryPaymentGateway, clock: ManualClock,
        uow_factory: InMemoryUnitOfWorkFactory) -> None:
    gateway.transactions.append(tx(1, clock.now()))
    clock.advance(minutes=20)
    [difference] = reconciliation.reconcile().differences
    [review] = uow_factory.store.payment_reviews.values()
    assert review.id is not None and review.dedup_key == difference.dedup_key
    reviews = PaymentReviewService(uow_factory, clock)
    clock.advance(hours=1)
    done = reviews.resolve(review.id, "refunded by hand", actor="alice")
    assert (done.resolved_at, done.resolution_note) == (clock.now(), "refunded by hand")
    assert reviews.count_open() == 0
    [entry] = uow_factory.store.audit
    assert (entry.actor, entry.action, entry.target_type, entry.target_id, entry.at) == (
        "alice", "payment_review.resolved", "payment_review", str(review.id), clock.now())
    assert entry.details == {"kind": "MISSING_LOCAL_PURCHASE", "purchase_id": None, "note": "refunded by hand"}
    with pytest.raises(InvalidPurchaseState, match="already resolved"):
        reviews.resolve(review.id, "again", actor="bob")
    assert len(uow_factory.store.audit) == 1
    assert uow_factory.store.payment_reviews[review.id].resolution_note == "refunded by hand"


def test_resolving_a_missing_review_or_with_an_overlong_note_writes_nothing(
        uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> None:
    reviews = PaymentReviewService(uow_factory, clock)
    with pytest.raises(NotFound):
        reviews.resolve(404, None, actor="alice")
    with pytest.raises(ValidationError) as err:
        reviews.resolve(1, "x" * 501, actor="alice")
    assert err.value.errors[0]["field"] == "note"
    assert uow_factory.store.audit == []
