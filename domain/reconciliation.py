"""Payments reconciliation (SPEC 6, issue 10): what we believe was paid against what Telegram says.

*Reconciliation* compares what we believe was paid (``purchases``) with what Telegram says
(``getStarTransactions``) over a trailing window: counts, Stars totals, per-product Stars, and each
difference — an incoming payment with no local purchase, a local payment Telegram does not know, an
amount that differs per product, a refund only Telegram knows (the purchase is then marked REFUNDED
so the refund rollback job revokes its promo redemption), a local refund Telegram does not know.
Each difference is one review item and one alert (``domain.payment_jobs``).
"""

from __future__ import annotations

import enum
import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import attrs

from domain.alerts import PAYMENTS_RECONCILIATION_DIFF_DETECTED, dedup_key
from domain.dashboard import iso
from domain.errors import InvalidPurchaseState, NotFound
from domain.model import Purchase, PurchaseStatus, StarTransaction
from domain.payment_jobs import PaymentsJob, ReviewAlerting, validate_window_hours
from domain.star_transactions import fetch_transactions, parse_purchase_payload

log = logging.getLogger("starpromo.payments")

# A local payment and its Telegram transaction carry slightly different moments; look this far
# outside the window for the counterpart of something inside it.
MATCH_MARGIN = timedelta(hours=1)


class DiffKind(enum.StrEnum):
    """Reconciliation differences (``payments_reconciliation_diff_detected``)."""

    MISSING_LOCAL_PURCHASE = "MISSING_LOCAL_PURCHASE"
    MISSING_TELEGRAM_TRANSACTION = "MISSING_TELEGRAM_TRANSACTION"
    AMOUNT_DRIFT = "AMOUNT_DRIFT"
    REFUND_ONLY_IN_TELEGRAM = "REFUND_ONLY_IN_TELEGRAM"
    REFUND_MISSING_IN_TELEGRAM = "REFUND_MISSING_IN_TELEGRAM"
    REFUND_OF_UNKNOWN_PAYMENT = "REFUND_OF_UNKNOWN_PAYMENT"


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



class ReconciliationService(PaymentsJob):
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

        alerting = ReviewAlerting(self._uow, self._clock, self._notifier, self._alerts)
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
