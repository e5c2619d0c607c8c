"""Payment recovery (SPEC 6, issue 10): settle purchases stuck between the charge and the settlement.

*Recovery* settles purchases stuck between the charge and the settlement (a crash after Telegram took
the money): every incoming payment whose charge id is unknown locally and whose payload names a
purchase is settled through ``CheckoutService.successful_payment`` — idempotent by charge id, so two
recoveries racing settle once. What cannot be settled safely is marked for review (one review item each;
one alert per kind for a run's new items, ``domain.payment_jobs``). Only purchase payments are candidates
(``domain.star_transactions.classify``): a withdrawal, a gift, a paid-media payment is never settled or
reviewed.
"""

from __future__ import annotations

import enum
import logging
from datetime import timedelta
from typing import Any

import attrs

from domain.alerts import PAYMENTS_RECOVERY_REVIEW_REQUIRED, dedup_key
from domain.checkout import REVIEW_PROMO_NOT_RESERVED
from domain.dashboard import iso
from domain.errors import CheckoutError, DomainError, NotFound, StorageUnavailable
from domain.model import StarTransaction
from domain.payment_jobs import PaymentsJob, ReviewAlerting, ReviewItem, validate_window_hours
from domain.star_transactions import Role, classify, fetch_transactions, parse_purchase_payload

log = logging.getLogger("starpromo.payments")


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


class RecoveryService(PaymentsJob):
    """``run_payment_recovery``: settle payments Telegram took but we never settled."""

    def recover(self, window_hours: int | None = None) -> RecoverySummary:
        hours = validate_window_hours(self._policy.recovery_window_hours if window_hours is None else window_hours)
        now = self._clock.now()
        since = now - timedelta(hours=hours)
        # Younger payments are most likely being settled by the webhook right now (harmless, but noisy).
        before = now - timedelta(minutes=self._policy.recovery_grace_minutes)
        scan = fetch_transactions(self._gateway, since)
        summary = RecoverySummary(pages=scan.pages, transactions_read=scan.read)
        reviews: list[ReviewItem] = []
        roles = [(tx, classify(tx).role) for tx in scan.transactions]
        payments = sorted((tx for tx, role in roles if role is Role.PAYMENT and tx.date <= before),
                          key=lambda t: (t.date, t.id))
        with self._uow() as uow:
            known = uow.purchases.get_by_charge_ids([tx.id for tx in payments])
        unknown = [tx for tx in payments if tx.id not in known]
        # A payment Telegram already refunded must not be settled (premium and the promo for money that
        # went back); reconciliation reports the pair for a human.
        refunded = {tx.id for tx, role in roles if role is Role.REFUND}
        for tx in unknown:
            if tx.id in refunded:
                summary.refunded_in_telegram += 1
                log.info("refunded payment not recovered", extra={
                    "event": "payment_recovery_skipped_refunded", "purchase_id": parse_purchase_payload(tx.payload),
                    "stars": tx.amount})
                continue
            summary.candidates += 1
            self._recover_one(tx, summary, reviews)
        # Payments settled elsewhere (the webhook) whose promo reservation was gone: flagged, never alerted.
        with self._uow() as uow:
            flagged = uow.purchases.flagged_for_review(since, self._policy.job_batch_size)
        for p in flagged:
            if p.review_reason == REVIEW_PROMO_NOT_RESERVED and p.id is not None:
                self._review(reviews, ReviewKind.PROMO_NOT_RESERVED, p.id, p.telegram_payment_charge_id,
                             f"purchase {p.id} was paid but its promo reservation was gone; settled at the price paid",
                             {"product_code": p.product_code, "paid_stars": p.final_stars_amount,
                              "promo_redemption_id": p.promo_redemption_id, "user_id": p.user_id})
        alerting = ReviewAlerting(self._uow, self._clock, self._notifier, self._alerts)
        summary.reviews = len(alerting.record(PAYMENTS_RECOVERY_REVIEW_REQUIRED, reviews, mark_purchase=True))
        summary.alerts_sent = alerting.sent
        summary.alerts_failed = alerting.failed
        return summary

    def _recover_one(self, tx: StarTransaction, summary: RecoverySummary, reviews: list[ReviewItem]) -> None:
        base = {"telegram_stars": tx.amount, "user_id": tx.user_id, "payload": tx.payload,
                "transaction_date": iso(tx.date)}
        purchase_id = parse_purchase_payload(tx.payload)
        if purchase_id is None:
            self._review(reviews, ReviewKind.UNKNOWN_PURCHASE, None, tx.id,
                         f"payment of {tx.amount} Stars names no purchase (payload {tx.payload!r})", base)
            return
        try:
            p = self._checkout.get(purchase_id)
        except NotFound:
            self._review(reviews, ReviewKind.UNKNOWN_PURCHASE, None, tx.id,
                         f"payment of {tx.amount} Stars names purchase {purchase_id}, which does not exist",
                         {**base, "payload_purchase_id": purchase_id})
            return
        details = {**base, "purchase_id": purchase_id, "product_code": p.product_code,
                   "purchase_status": p.status.value, "expected_stars": p.final_stars_amount}
        if tx.user_id is not None and tx.user_id != p.user_id:
            self._review(reviews, ReviewKind.USER_MISMATCH, purchase_id, tx.id,
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
            self._review(reviews, kind, purchase_id, tx.id,
                         f"payment for purchase {purchase_id} cannot be settled: {exc.message}",
                         {**details, "error_code": exc.code})
            return
        except StorageUnavailable:
            raise
        except DomainError as exc:
            self._review(reviews, ReviewKind.SETTLEMENT_REFUSED, purchase_id, tx.id,
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

    @staticmethod
    def _review(reviews: list[ReviewItem], kind: ReviewKind, purchase_id: int | None, charge_id: str | None,
                text: str, details: dict[str, Any]) -> None:
        """A review item, recorded (and alerted, one alert per kind) at the end of the run."""
        key = dedup_key(PAYMENTS_RECOVERY_REVIEW_REQUIRED, kind.value,
                        charge_id if charge_id is not None else purchase_id)
        reviews.append(ReviewItem(kind.value, key, text, details, purchase_id, charge_id))

