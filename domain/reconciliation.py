"""Payments reconciliation (SPEC 6, issue 10): what we believe was paid against what Telegram says.

*Reconciliation* compares what we believe was paid (``purchases``) with what Telegram says
(``getStarTransactions``) over a trailing window: counts, Stars totals, per-product Stars, and each
difference — an incoming payment with no local purchase, a local payment Telegram does not know, an
amount that differs (per payment, summed per product), a refund only Telegram knows (the purchase is then
marked REFUNDED so the refund rollback job revokes its promo redemption), a local refund Telegram does not
know. Each difference is one review item; a run raises one alert per kind of new difference, with the count
(``domain.payment_jobs``).

Only purchase payments and their refunds are compared (``domain.star_transactions.classify``). Every other
Star movement — withdrawals, ads, paid broadcasts, gifts, affiliate commissions, paid media, subscriptions —
is reported apart as ``other_movements`` (count and Stars per kind) and recorded for the dashboard; it is
never a difference and never alerts.
"""

from __future__ import annotations

import enum
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from domain.alert_groups import AlertItem
from domain.alerts import PAYMENTS_RECONCILIATION_DIFF_DETECTED, dedup_key
from domain.dashboard import iso
from domain.errors import InvalidPurchaseState, NotFound
from domain.model import Purchase, PurchaseStatus, StarTransaction
from domain.payment_jobs import PaymentsJob, ReviewAlerting, ReviewItem, validate_window_hours
from domain.star_transactions import (
    Role,
    classify,
    fetch_transactions,
    movement,
    movements_document,
    parse_purchase_payload,
    total_movements,
)

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
    movements_recorded: int = 0

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
                "other_movements": self.figures["other_movements"]["count"],
                "movements_recorded": self.movements_recorded,
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

        roles = {(tx.id, tx.outgoing): classify(tx).role for tx in scan.transactions}
        compared = [tx for tx in scan.transactions if roles[(tx.id, tx.outgoing)] is not Role.OTHER]
        incoming = {tx.id: tx for tx in compared if roles[(tx.id, tx.outgoing)] is Role.PAYMENT}
        refunds = {tx.id: tx for tx in compared if roles[(tx.id, tx.outgoing)] is Role.REFUND}
        # Everything else moved Stars too, but is no purchase's business: counted apart, never a difference.
        others = [movement(tx) for tx in scan.transactions
                  if roles[(tx.id, tx.outgoing)] is Role.OTHER and since <= tx.date <= now]
        with self._uow() as uow:
            local = uow.purchases.settled_between(since - MATCH_MARGIN, now + timedelta(microseconds=1))
            by_charge = {p.telegram_payment_charge_id: p for p in local if p.telegram_payment_charge_id}
            # Counterparts settled outside the margin, looked up together.
            by_charge.update(uow.purchases.get_by_charge_ids(
                [tx.id for tx in compared if core(tx.date) and tx.id not in by_charge]))

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
            "other_movements": movements_document(total_movements(others)),
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

        recorded_movements = 0
        if others:
            with self._uow() as uow:
                recorded_movements = uow.star_movements.add_many(others)
                uow.commit()
        refunds_marked = sum(self._mark_refunded(d.purchase_id) for d in diffs
                             if d.kind is DiffKind.REFUND_ONLY_IN_TELEGRAM and d.purchase_id is not None)
        alerting = ReviewAlerting(self._uow, self._clock, self._notifier, self._alerts)
        new_keys = alerting.record(
            PAYMENTS_RECONCILIATION_DIFF_DETECTED,
            [ReviewItem(d.kind.value, d.dedup_key, d.summary, d.details, d.purchase_id, d.charge_id) for d in diffs],
            {"window": window}, describe=_describe, alert_context={"figures": figures})
        recorded = tuple(attrs.evolve(d, new=d.dedup_key in new_keys) for d in diffs)
        return ReconciliationReport(window, figures, recorded, scan.pages, scan.read, refunds_marked,
                                    alerting.sent, alerting.failed, recorded_movements)

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
                # One difference per payment (its own stable key: a later drift alerts only itself); the
                # alert sums them per product.
                kind = DiffKind.AMOUNT_DRIFT
                drift = tx.amount - p.final_stars_amount
                diffs.append(Difference(
                    kind, dedup_key(event, kind.value, tx.id),
                    f"{p.product_code}: Telegram has {tx.amount} Stars where we have {p.final_stars_amount} "
                    f"for purchase {p.id} (drift {drift:+d})",
                    {"product_code": p.product_code, "local_stars": p.final_stars_amount,
                     "telegram_stars": tx.amount, "drift": drift},
                    purchase_id=p.id, charge_id=tx.id))
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


_HEADLINES = {
    DiffKind.MISSING_LOCAL_PURCHASE: "{n} Telegram payments ({telegram} Stars) have no local purchase",
    DiffKind.MISSING_TELEGRAM_TRANSACTION: "{n} purchases paid here ({local} Stars) have no Telegram payment",
    DiffKind.AMOUNT_DRIFT: "{n} payments differ in amount: Telegram {telegram} Stars, here {local} (drift {drift:+d})",
    DiffKind.REFUND_ONLY_IN_TELEGRAM: "{n} refunds ({telegram} Stars) only in Telegram; purchases marked REFUNDED",
    DiffKind.REFUND_MISSING_IN_TELEGRAM: "{n} purchases REFUNDED here ({local} Stars) show no refund in Telegram",
    DiffKind.REFUND_OF_UNKNOWN_PAYMENT: "{n} Telegram refunds ({telegram} Stars) of payments we do not have as paid",
}


def _stars(items: Sequence[AlertItem], field: str) -> int:
    return sum(int(i.details.get(field) or 0) for i in items)


def _describe(kind: str, items: Sequence[AlertItem]) -> tuple[str | None, Mapping[str, Any]]:
    """The headline of a group of new differences of one kind (the item's own summary for one), with the Stars
    it adds up to; a drift group also sums per product."""
    telegram, local = _stars(items, "telegram_stars"), _stars(items, "local_stars")
    extra: dict[str, Any] = {"telegram_stars": telegram, "local_stars": local}
    if kind == DiffKind.AMOUNT_DRIFT:
        per_product: dict[str, dict[str, int]] = defaultdict(
            lambda: {"payments": 0, "local_stars": 0, "telegram_stars": 0, "drift": 0})
        for i in items:
            entry = per_product[str(i.details.get("product_code"))]
            entry["payments"] += 1
            for field in ("local_stars", "telegram_stars", "drift"):
                entry[field] += int(i.details.get(field) or 0)
        extra["by_product"] = dict(sorted(per_product.items()))
    if len(items) == 1:
        return None, extra
    return _HEADLINES[DiffKind(kind)].format(n=len(items), telegram=telegram, local=local,
                                             drift=telegram - local), extra
