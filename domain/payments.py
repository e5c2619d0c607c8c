"""Payments reliability (SPEC 6, issue 10): reconciliation with Telegram and payment recovery.

*Reconciliation* compares what we believe was paid (``purchases``) with what Telegram says
(``getStarTransactions``) over a trailing window: counts, Stars totals, per-product Stars, and each
difference — an incoming payment with no local purchase, a local payment Telegram does not know, an
amount that differs per product, a refund only Telegram knows (the purchase is then marked REFUNDED
so the refund rollback job revokes its promo redemption), a local refund Telegram does not know.

*Recovery* settles purchases stuck between the charge and the settlement (a crash after Telegram took
the money): every incoming payment whose charge id is unknown locally and whose payload names a
purchase is settled through ``CheckoutService.successful_payment`` — idempotent by charge id, so two
recoveries racing settle once. What cannot be settled safely is marked for review.

Each difference or review becomes one ``payment_reviews`` row keyed by a stable ``dedup_key``; the
alert is raised only by the run that inserted the row, after the commit — so a difference raises
exactly one alert however many runs see it, and the same key goes to PagerDuty as ``dedup_key``.

Transactions are read 100 per page (the Bot API maximum) until a short page, or — when the pages
come newest first — until a page reaches past the window. Ordering is detected, not assumed.
"""

from __future__ import annotations

import enum
import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import attrs

from domain import audit
from domain.alerts import (
    PAYMENTS_RECONCILIATION_DIFF_DETECTED,
    PAYMENTS_RECOVERY_REVIEW_REQUIRED,
    AlertPolicy,
    RoutedAlert,
    dedup_key,
)
from domain.checkout import REVIEW_PROMO_NOT_RESERVED, CheckoutService
from domain.dashboard import iso
from domain.errors import (
    CheckoutError,
    DomainError,
    InvalidPurchaseState,
    NotFound,
    StorageUnavailable,
    ValidationError,
)
from domain.model import PaymentReview, Purchase, PurchaseStatus, StarTransaction
from domain.policy import PromoPolicy

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.notifier import Notifier
    from ports.payments import PaymentGateway
    from ports.repositories import UnitOfWorkFactory

log = logging.getLogger("starpromo.payments")

PAGE_SIZE = 100  # getStarTransactions: limit 1..100
MAX_PAGES = 2_000  # 200,000 transactions: beyond that the window is too wide for one run
# A local payment and its Telegram transaction carry slightly different moments; look this far
# outside the window for the counterpart of something inside it.
MATCH_MARGIN = timedelta(hours=1)
PURCHASE_PAYLOAD_PREFIX = "purchase:"
MIN_WINDOW_HOURS = 1
MAX_WINDOW_HOURS = 720


class DiffKind(enum.StrEnum):
    """Reconciliation differences (``payments_reconciliation_diff_detected``)."""

    MISSING_LOCAL_PURCHASE = "MISSING_LOCAL_PURCHASE"
    MISSING_TELEGRAM_TRANSACTION = "MISSING_TELEGRAM_TRANSACTION"
    AMOUNT_DRIFT = "AMOUNT_DRIFT"
    REFUND_ONLY_IN_TELEGRAM = "REFUND_ONLY_IN_TELEGRAM"
    REFUND_MISSING_IN_TELEGRAM = "REFUND_MISSING_IN_TELEGRAM"
    REFUND_OF_UNKNOWN_PAYMENT = "REFUND_OF_UNKNOWN_PAYMENT"


class ReviewKind(enum.StrEnum):
    """Why recovery could not settle a payment safely (``payments_recovery_review_required``)."""

    UNKNOWN_PURCHASE = "UNKNOWN_PURCHASE"
    USER_MISMATCH = "USER_MISMATCH"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    DOUBLE_PAYMENT = "DOUBLE_PAYMENT"
    CHARGE_ID_REUSED = "CHARGE_ID_REUSED"
    UNKNOWN_PRODUCT = "UNKNOWN_PRODUCT"
    PROMO_NOT_RESERVED = REVIEW_PROMO_NOT_RESERVED  # settled at the price paid, reservation gone
    SETTLEMENT_REFUSED = "SETTLEMENT_REFUSED"


_CHECKOUT_REVIEW = {
    "AMOUNT_MISMATCH": ReviewKind.AMOUNT_MISMATCH,
    "ALREADY_PAID": ReviewKind.DOUBLE_PAYMENT,
    "CHARGE_ID_REUSED": ReviewKind.CHARGE_ID_REUSED,
    "UNKNOWN_PRODUCT": ReviewKind.UNKNOWN_PRODUCT,
}


def parse_purchase_payload(payload: str | None) -> int | None:
    """The purchase id of an invoice payload ``purchase:<id>``; None for anything else."""
    if payload is None or not payload.startswith(PURCHASE_PAYLOAD_PREFIX):
        return None
    raw = payload[len(PURCHASE_PAYLOAD_PREFIX):]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


def validate_window_hours(value: object, field: str = "window_hours") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_WINDOW_HOURS <= value <= MAX_WINDOW_HOURS:
        raise ValidationError.single(field, f"must be an integer {MIN_WINDOW_HOURS}..{MAX_WINDOW_HOURS}")
    return value


@attrs.frozen
class TransactionScan:
    """Telegram transactions dated at or after ``since``, deduplicated, and how they were read."""

    transactions: tuple[StarTransaction, ...]
    pages: int
    read: int


def fetch_transactions(gateway: PaymentGateway, since: datetime, page_size: int = PAGE_SIZE,
                       max_pages: int = MAX_PAGES) -> TransactionScan:
    """Page through ``getStarTransactions`` (offset/limit) until everything since ``since`` is read.

    Stops at a short page, or — pages coming newest first — at a page whose oldest entry is older
    than ``since``. A transaction seen twice (new ones shift the offsets while we page) counts once.
    More than ``max_pages`` pages is an error: a silently truncated comparison would lie.
    """
    seen: set[tuple[str, bool]] = set()
    kept: list[StarTransaction] = []
    offset = pages = read = 0
    while True:
        if pages >= max_pages:
            raise DomainError(f"more than {max_pages * page_size} Star transactions in the window; "
                              "narrow it (--window-hours)", {"pages": pages})
        page = gateway.get_star_transactions(offset, page_size)
        pages += 1
        read += len(page)
        for tx in page:
            key = (tx.id, tx.outgoing)
            if key not in seen and tx.date >= since:
                seen.add(key)
                kept.append(tx)
        if len(page) < page_size:
            break
        offset += len(page)
        newest_first = page[0].date > page[-1].date and all(a.date >= b.date for a, b in pairwise(page))
        if newest_first and page[-1].date < since:
            break
    return TransactionScan(tuple(kept), pages, read)


# --- reconciliation -------------------------------------------------------------------------------------


@attrs.frozen
class Difference:
    kind: DiffKind
    dedup_key: str
    summary: str
    details: dict[str, Any]
    purchase_id: int | None = None
    charge_id: str | None = None
    new: bool = False  # first seen by this run (a review row was inserted, an alert raised)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "dedup_key": self.dedup_key, "summary": self.summary,
                "purchase_id": self.purchase_id, "telegram_payment_charge_id": self.charge_id,
                "new": self.new, "details": self.details}


@attrs.frozen
class ReconciliationReport:
    """The comparison of one window and what this run did about it."""

    window: dict[str, Any]
    figures: dict[str, Any]
    differences: tuple[Difference, ...]
    pages: int
    transactions_read: int
    refunds_marked: int = 0
    alerts_sent: int = 0
    alerts_failed: int = 0

    @property
    def matches(self) -> bool:
        return not self.differences

    def as_dict(self) -> dict[str, Any]:
        """The job summary: counts only (the structured log line)."""
        by_kind: dict[str, int] = defaultdict(int)
        for d in self.differences:
            by_kind[d.kind.value] += 1
        return {"pages": self.pages, "transactions_read": self.transactions_read,
                "differences": len(self.differences), "new_differences": sum(1 for d in self.differences if d.new),
                "differences_by_kind": dict(sorted(by_kind.items())), "refunds_marked": self.refunds_marked,
                "alerts_sent": self.alerts_sent, "alerts_failed": self.alerts_failed}

    def to_document(self) -> dict[str, Any]:
        """Everything: window, figures, each difference (``starpromo payments reconcile --json``)."""
        return {**self.as_dict(), "window": self.window, "matches": self.matches, "figures": self.figures,
                "differences": [d.as_dict() for d in self.differences]}


def _totals(amounts: Iterable[int]) -> dict[str, int]:
    values = list(amounts)
    return {"count": len(values), "stars": sum(values)}


class _Alerting:
    """Records a review row per difference and raises its alert once (after the commit)."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock, notifier: Notifier | None,
                 alerts: AlertPolicy | None) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._notifier = notifier
        self._alerts = alerts or AlertPolicy.default()
        self.sent = 0
        self.failed = 0

    def record(self, event: str, kind: str, key: str, summary: str, details: dict[str, Any],
               purchase_id: int | None, charge_id: str | None, mark_purchase: bool = False) -> bool:
        """Insert the review row (and flag the purchase); raise the alert when the row is new."""
        now = self._clock.now()
        with self._uow() as uow:
            # Only link a purchase that exists: an unknown purchase id lives in the details.
            linked = purchase_id if purchase_id is not None and uow.purchases.get(purchase_id) else None
            review = uow.payment_reviews.add(PaymentReview(
                id=None, dedup_key=key, event=event, kind=kind, purchase_id=linked,
                telegram_payment_charge_id=charge_id, details=details, created_at=now))
            if review is None:
                return False
            if mark_purchase and linked is not None:
                uow.purchases.mark_review(linked, kind, now)
            uow.commit()
        log.warning(summary, extra={"event": event, "kind": kind, "review_id": review.id, "dedup_key": key,
                                    "purchase_id": linked})
        self._raise(self._alerts.route(event, summary, {"kind": kind, "review_id": review.id, **details}, now,
                                       dedup=key))
        return True

    def _raise(self, alert: RoutedAlert) -> None:
        if self._notifier is None:
            self.sent += 1
            return
        try:
            self._notifier.notify(alert)
        except Exception as exc:  # an alert channel must never fail the job that raised the alert
            self.failed += 1
            log.error("alert notification failed", extra={"event": "alert_notify_failed", "alert_event": alert.event,
                                                           "dedup_key": alert.dedup_key,
                                                           "error_type": type(exc).__name__})
            return
        self.sent += 1


class _PaymentsJob:
    """What both payments jobs work with: the tables, the clock, Telegram, checkout, and alerting."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock, gateway: PaymentGateway,
                 checkout: CheckoutService, notifier: Notifier | None = None, alerts: AlertPolicy | None = None,
                 policy: PromoPolicy | None = None) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._gateway = gateway
        self._checkout = checkout
        self._notifier = notifier
        self._alerts = alerts
        self._policy = policy or PromoPolicy()


class ReconciliationService(_PaymentsJob):
    """``run_payments_reconciliation``: local purchases vs Telegram Star transactions."""

    def reconcile(self, window_hours: int | None = None, act: bool = True) -> ReconciliationReport:
        """Compare the trailing window. With ``act`` (the job), each new difference is recorded for
        review and alerted once, and refunds only Telegram knows mark their purchase REFUNDED; without
        it (``payments reconcile`` from the CLI) nothing is written and nothing is raised."""
        hours = validate_window_hours(self._policy.reconciliation_window_hours if window_hours is None
                                      else window_hours)
        now = self._clock.now()
        since = now - timedelta(hours=hours)
        # A payment younger than the grace may still be on its way (webhook, queue, recovery).
        settled_before = now - timedelta(minutes=self._policy.reconciliation_grace_minutes)
        scan = fetch_transactions(self._gateway, since - MATCH_MARGIN)

        def core(moment: datetime | None) -> bool:
            return moment is not None and since <= moment <= settled_before

        incoming = {tx.id: tx for tx in scan.transactions if not tx.outgoing}
        refunds = {tx.id: tx for tx in scan.transactions if tx.outgoing}
        with self._uow() as uow:
            local = uow.purchases.settled_between(since - MATCH_MARGIN, now + timedelta(microseconds=1))
            by_charge = {p.telegram_payment_charge_id: p for p in local if p.telegram_payment_charge_id}
            for tx in scan.transactions:  # counterparts settled outside the margin
                if core(tx.date) and tx.id not in by_charge:
                    found = uow.purchases.get_by_charge_id(tx.id)
                    if found is not None:
                        by_charge[tx.id] = found

        in_core_incoming = [tx for tx in incoming.values() if core(tx.date)]
        in_core_refunds = [tx for tx in refunds.values() if core(tx.date)]
        local_paid = [p for p in local if core(p.paid_at)]
        local_refunded = [p for p in local if core(p.refunded_at)]

        per_product: dict[str, dict[str, int]] = defaultdict(lambda: {"local_stars": 0, "telegram_stars": 0})
        for p in local_paid:
            per_product[p.product_code]["local_stars"] += p.final_stars_amount
        for tx in in_core_incoming:
            matched = by_charge.get(tx.id)
            per_product[matched.product_code if matched else "UNMATCHED"]["telegram_stars"] += tx.amount
        products = {code: {**v, "drift": v["telegram_stars"] - v["local_stars"]}
                    for code, v in sorted(per_product.items())}
        figures: dict[str, Any] = {
            "telegram": {"payments": _totals(tx.amount for tx in in_core_incoming),
                         "refunds": _totals(tx.amount for tx in in_core_refunds)},
            "local": {"payments": _totals(p.final_stars_amount for p in local_paid),
                      "refunds": _totals(p.final_stars_amount for p in local_refunded)},
            "products": products,
        }
        figures["drift"] = {
            "payments_count": figures["telegram"]["payments"]["count"] - figures["local"]["payments"]["count"],
            "payments_stars": figures["telegram"]["payments"]["stars"] - figures["local"]["payments"]["stars"],
            "refunds_count": figures["telegram"]["refunds"]["count"] - figures["local"]["refunds"]["count"],
            "refunds_stars": figures["telegram"]["refunds"]["stars"] - figures["local"]["refunds"]["stars"],
        }
        window = {"from": iso(since), "to": iso(now), "hours": hours,
                  "settled_before": iso(settled_before)}

        diffs = self._differences(in_core_incoming, in_core_refunds, local_paid, local_refunded, incoming, refunds,
                                  by_charge)
        if not act:
            return ReconciliationReport(window, figures, tuple(diffs), scan.pages, scan.read)

        alerting = _Alerting(self._uow, self._clock, self._notifier, self._alerts)
        recorded: list[Difference] = []
        refunds_marked = 0
        for d in diffs:
            if d.kind is DiffKind.REFUND_ONLY_IN_TELEGRAM and d.purchase_id is not None:
                refunds_marked += self._mark_refunded(d.purchase_id)
            new = alerting.record(PAYMENTS_RECONCILIATION_DIFF_DETECTED, d.kind.value, d.dedup_key, d.summary,
                                  {**d.details, "window": window, "figures": figures}, d.purchase_id, d.charge_id)
            recorded.append(attrs.evolve(d, new=new))
        return ReconciliationReport(window, figures, tuple(recorded), scan.pages, scan.read, refunds_marked,
                                    alerting.sent, alerting.failed)

    def _mark_refunded(self, purchase_id: int) -> int:
        try:
            before = self._checkout.get(purchase_id)
            if before.status is PurchaseStatus.REFUNDED:
                return 0
            self._checkout.mark_refunded(purchase_id)
        except (NotFound, InvalidPurchaseState):
            return 0  # changed meanwhile; the difference is still recorded for a human
        log.info("refund seen only in Telegram marked", extra={"event": "payment_refund_reconciled",
                                                                "purchase_id": purchase_id})
        return 1

    @staticmethod
    def _differences(in_core_incoming: list[StarTransaction], in_core_refunds: list[StarTransaction],
                     local_paid: list[Purchase], local_refunded: list[Purchase],
                     incoming: dict[str, StarTransaction], refunds: dict[str, StarTransaction],
                     by_charge: dict[str, Purchase]) -> list[Difference]:
        event = PAYMENTS_RECONCILIATION_DIFF_DETECTED
        diffs: list[Difference] = []
        drift: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for tx in sorted(in_core_incoming, key=lambda t: (t.date, t.id)):
            p = by_charge.get(tx.id)
            if p is None:
                kind = DiffKind.MISSING_LOCAL_PURCHASE
                diffs.append(Difference(
                    kind, dedup_key(event, kind.value, tx.id),
                    f"Telegram payment of {tx.amount} Stars has no local purchase",
                    {"telegram_stars": tx.amount, "user_id": tx.user_id, "payload": tx.payload,
                     "transaction_date": iso(tx.date), "payload_purchase_id": parse_purchase_payload(tx.payload)},
                    charge_id=tx.id))
            elif tx.amount != p.final_stars_amount:
                drift[p.product_code].append({"purchase_id": p.id, "telegram_payment_charge_id": tx.id,
                                              "local_stars": p.final_stars_amount, "telegram_stars": tx.amount})
        for product, rows in sorted(drift.items()):
            kind = DiffKind.AMOUNT_DRIFT
            local_stars = sum(r["local_stars"] for r in rows)
            telegram_stars = sum(r["telegram_stars"] for r in rows)
            charges = sorted(r["telegram_payment_charge_id"] for r in rows)
            diffs.append(Difference(
                kind, dedup_key(event, kind.value, product, charges),
                f"{product}: Telegram has {telegram_stars} Stars where we have {local_stars} "
                f"({len(rows)} payment(s), drift {telegram_stars - local_stars:+d})",
                {"product_code": product, "local_stars": local_stars, "telegram_stars": telegram_stars,
                 "drift": telegram_stars - local_stars, "payments": rows}))
        diffs += [_local_only(DiffKind.MISSING_TELEGRAM_TRANSACTION, p, "paid_at", p.paid_at,
                              f"purchase {p.id} is paid ({p.final_stars_amount} Stars) but Telegram has no such "
                              "payment")
                  for p in local_paid if p.telegram_payment_charge_id not in incoming]
        for tx in sorted(in_core_refunds, key=lambda t: (t.date, t.id)):
            p = by_charge.get(tx.id)
            if p is not None and p.status is PurchaseStatus.REFUNDED:
                continue
            if p is not None and p.status is PurchaseStatus.PAID:
                kind = DiffKind.REFUND_ONLY_IN_TELEGRAM
                summary = f"Telegram refunded purchase {p.id} ({tx.amount} Stars); marked REFUNDED here"
            else:
                kind = DiffKind.REFUND_OF_UNKNOWN_PAYMENT
                summary = f"Telegram refunded {tx.amount} Stars of a payment we do not have as paid"
            diffs.append(Difference(
                kind, dedup_key(event, kind.value, tx.id), summary,
                {"telegram_stars": tx.amount, "user_id": tx.user_id, "transaction_date": iso(tx.date),
                 "local_status": p.status.value if p is not None else None,
                 "product_code": p.product_code if p is not None else None},
                purchase_id=p.id if p is not None else None, charge_id=tx.id))
        diffs += [_local_only(DiffKind.REFUND_MISSING_IN_TELEGRAM, p, "refunded_at", p.refunded_at,
                              f"purchase {p.id} is REFUNDED here but Telegram shows no refund")
                  for p in local_refunded if p.telegram_payment_charge_id not in refunds]
        return diffs


def _local_only(kind: DiffKind, p: Purchase, moment_name: str, moment: datetime | None, summary: str) -> Difference:
    """A difference about a purchase Telegram does not show (its payment or its refund)."""
    return Difference(
        kind, dedup_key(PAYMENTS_RECONCILIATION_DIFF_DETECTED, kind.value, p.id), summary,
        {"product_code": p.product_code, "local_stars": p.final_stars_amount, "user_id": p.user_id,
         moment_name: iso(moment) if moment else None},
        purchase_id=p.id, charge_id=p.telegram_payment_charge_id)


# --- recovery ---------------------------------------------------------------------------------------------


@attrs.define
class RecoverySummary:
    pages: int = 0
    transactions_read: int = 0
    candidates: int = 0
    settled: list[int] = attrs.field(factory=list)
    already_settled: int = 0
    refunded_in_telegram: int = 0  # never settled: Telegram already gave the money back
    reviews: int = 0
    alerts_sent: int = 0
    alerts_failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class RecoveryService(_PaymentsJob):
    """``run_payment_recovery``: settle payments Telegram took but we never settled."""

    def recover(self, window_hours: int | None = None) -> RecoverySummary:
        hours = validate_window_hours(self._policy.recovery_window_hours if window_hours is None else window_hours)
        now = self._clock.now()
        since = now - timedelta(hours=hours)
        # Younger payments are most likely being settled by the webhook right now (harmless, but noisy).
        before = now - timedelta(minutes=self._policy.recovery_grace_minutes)
        scan = fetch_transactions(self._gateway, since)
        summary = RecoverySummary(pages=scan.pages, transactions_read=scan.read)
        alerting = _Alerting(self._uow, self._clock, self._notifier, self._alerts)
        payments = sorted((tx for tx in scan.transactions if not tx.outgoing and tx.date <= before),
                          key=lambda t: (t.date, t.id))
        with self._uow() as uow:
            unknown = [tx for tx in payments if uow.purchases.get_by_charge_id(tx.id) is None]
        # A payment Telegram already refunded must not be settled (premium and the promo for money that
        # went back); reconciliation reports the pair for a human.
        refunded = {tx.id for tx in scan.transactions if tx.outgoing}
        for tx in unknown:
            if tx.id in refunded:
                summary.refunded_in_telegram += 1
                log.info("refunded payment not recovered", extra={
                    "event": "payment_recovery_skipped_refunded", "purchase_id": parse_purchase_payload(tx.payload),
                    "stars": tx.amount})
                continue
            summary.candidates += 1
            self._recover_one(tx, summary, alerting)
        # Payments settled elsewhere (the webhook) whose promo reservation was gone: flagged, never alerted.
        with self._uow() as uow:
            flagged = uow.purchases.flagged_for_review(since, self._policy.job_batch_size)
        for p in flagged:
            if p.review_reason == REVIEW_PROMO_NOT_RESERVED and p.id is not None:
                self._review(alerting, summary, ReviewKind.PROMO_NOT_RESERVED, p.id, p.telegram_payment_charge_id,
                             f"purchase {p.id} was paid but its promo reservation was gone; settled at the price paid",
                             {"product_code": p.product_code, "paid_stars": p.final_stars_amount,
                              "promo_redemption_id": p.promo_redemption_id, "user_id": p.user_id})
        summary.alerts_sent = alerting.sent
        summary.alerts_failed = alerting.failed
        return summary

    def _recover_one(self, tx: StarTransaction, summary: RecoverySummary, alerting: _Alerting) -> None:
        base = {"telegram_stars": tx.amount, "user_id": tx.user_id, "payload": tx.payload,
                "transaction_date": iso(tx.date)}
        purchase_id = parse_purchase_payload(tx.payload)
        if purchase_id is None:
            self._review(alerting, summary, ReviewKind.UNKNOWN_PURCHASE, None, tx.id,
                         f"payment of {tx.amount} Stars names no purchase (payload {tx.payload!r})", base)
            return
        try:
            p = self._checkout.get(purchase_id)
        except NotFound:
            self._review(alerting, summary, ReviewKind.UNKNOWN_PURCHASE, None, tx.id,
                         f"payment of {tx.amount} Stars names purchase {purchase_id}, which does not exist",
                         {**base, "payload_purchase_id": purchase_id})
            return
        details = {**base, "purchase_id": purchase_id, "product_code": p.product_code,
                   "purchase_status": p.status.value, "expected_stars": p.final_stars_amount}
        if tx.user_id is not None and tx.user_id != p.user_id:
            self._review(alerting, summary, ReviewKind.USER_MISMATCH, purchase_id, tx.id,
                         f"payment for purchase {purchase_id} came from user {tx.user_id}, not its buyer",
                         {**details, "purchase_user_id": p.user_id})
            return
        try:
            settlement = self._checkout.successful_payment(purchase_id, tx.id, tx.amount)
        except CheckoutError as exc:
            if exc.code == "ALREADY_PAID" and self._settled_by(purchase_id, tx.id):
                # A racing recovery (or the webhook) settled this very charge between the charge-id
                # lookup and the purchase read of successful_payment: a replay, not a double payment.
                summary.already_settled += 1
                return
            kind = _CHECKOUT_REVIEW.get(exc.code, ReviewKind.SETTLEMENT_REFUSED)
            self._review(alerting, summary, kind, purchase_id, tx.id,
                         f"payment for purchase {purchase_id} cannot be settled: {exc.message}",
                         {**details, "error_code": exc.code})
            return
        except StorageUnavailable:
            raise
        except DomainError as exc:
            self._review(alerting, summary, ReviewKind.SETTLEMENT_REFUSED, purchase_id, tx.id,
                         f"payment for purchase {purchase_id} cannot be settled: {exc}", details)
            return
        if settlement.replayed:
            summary.already_settled += 1
            return
        summary.settled.append(purchase_id)
        log.info("stuck payment settled", extra={"event": "payment_recovered", "purchase_id": purchase_id,
                                                   "stars": tx.amount})

    def _settled_by(self, purchase_id: int, charge_id: str) -> bool:
        try:
            return self._checkout.get(purchase_id).telegram_payment_charge_id == charge_id
        except NotFound:
            return False

    def _review(self, alerting: _Alerting, summary: RecoverySummary, kind: ReviewKind, purchase_id: int | None,
                charge_id: str | None, text: str, details: dict[str, Any]) -> None:
        event = PAYMENTS_RECOVERY_REVIEW_REQUIRED
        key = dedup_key(event, kind.value, charge_id if charge_id is not None else purchase_id)
        if alerting.record(event, kind.value, key, text, details, purchase_id, charge_id, mark_purchase=True):
            summary.reviews += 1


# --- review items -----------------------------------------------------------------------------------------

MAX_REVIEW_PAGE = 500
MAX_RESOLUTION_NOTE = 500


class PaymentReviewService:
    """The review items a human works through (``starpromo payments reviews`` / ``payments resolve``)."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow_factory
        self._clock = clock

    def list(self, open_only: bool = True, limit: int = 50, after_id: int | None = None) -> list[PaymentReview]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_REVIEW_PAGE:
            raise ValidationError.single("limit", f"must be an integer 1..{MAX_REVIEW_PAGE}")
        with self._uow() as uow:
            return uow.payment_reviews.list(open_only, limit, after_id)

    def count_open(self) -> int:
        with self._uow() as uow:
            return uow.payment_reviews.count_open()

    def resolve(self, review_id: int, note: str | None = None, *, actor: str) -> PaymentReview:
        """Mark a review resolved. Resolving one that is already resolved is an error saying when."""
        if note is not None and len(note) > MAX_RESOLUTION_NOTE:
            raise ValidationError.single("note", f"must be at most {MAX_RESOLUTION_NOTE} characters")
        with self._uow() as uow:
            now = self._clock.now()
            done = uow.payment_reviews.resolve(review_id, note, now)
            if done is None:
                current = uow.payment_reviews.get(review_id)
                if current is None:
                    raise NotFound(f"payment review {review_id} not found")
                raise InvalidPurchaseState(
                    f"payment review {review_id} was already resolved at {iso(current.resolved_at)}"
                    if current.resolved_at else f"payment review {review_id} cannot be resolved",
                    {"resolved_at": iso(current.resolved_at) if current.resolved_at else None})
            audit.record(uow, now, actor, audit.PAYMENT_REVIEW_RESOLVED, audit.PAYMENT_REVIEW, review_id,
                         {"kind": done.kind, "purchase_id": done.purchase_id, "note": note})
            uow.commit()
        log.info("payment review resolved", extra={"event": "payment_review_resolved", "review_id": review_id,
                                                    "kind": done.kind})
        return done
