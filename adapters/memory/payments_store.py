"""In-memory ``purchases``, ``payment_reviews`` and ``star_movements`` (ports ``Purchases``, ``PaymentReviews``,
``StarMovements``).

(``adapters.memory.payments`` is the fake Telegram payment gateway; these are the tables.) The database's
rules hold here too: one open purchase per ``(user_id, product_code)``, a unique
``telegram_payment_charge_id``, a unique review ``dedup_key``.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import attrs

from adapters.memory.store import MemoryTable, hour_start
from domain.errors import DuplicateChargeId, OpenPurchaseExists
from domain.model import (
    OPEN_PURCHASE_STATUSES,
    HourCount,
    MovementTotal,
    PaymentReview,
    PaymentTotals,
    Purchase,
    PurchaseStatus,
    RedemptionStatus,
    StarMovement,
)
from domain.star_transactions import total_movements


class InMemoryPurchases(MemoryTable):
    """The ``purchases`` table (port ``Purchases``)."""

    def add(self, purchase: Purchase) -> Purchase:
        """Insert; raises ``OpenPurchaseExists`` for a second open purchase of a product, ``DuplicateChargeId``
        for a charge id another purchase has."""
        if purchase.is_open and self.get_open(purchase.user_id, purchase.product_code) is not None:
            raise OpenPurchaseExists(f"{purchase.user_id}/{purchase.product_code}")
        if purchase.telegram_payment_charge_id is not None and self.get_by_charge_id(
            purchase.telegram_payment_charge_id
        ):
            raise DuplicateChargeId(purchase.telegram_payment_charge_id)
        new_id = self._s.next_id("purchases")
        return self._write(self._s.purchases, new_id, attrs.evolve(purchase, id=new_id))

    def get(self, purchase_id: int) -> Purchase | None:
        return self._s.purchases.get(purchase_id)

    def get_open(self, user_id: int, product_code: str) -> Purchase | None:
        for p in self._s.purchases.values():
            if p.user_id == user_id and p.product_code == product_code and p.is_open:
                return p
        return None

    def get_by_charge_id(self, telegram_payment_charge_id: str) -> Purchase | None:
        for p in self._s.purchases.values():
            if p.telegram_payment_charge_id == telegram_payment_charge_id:
                return p
        return None

    def get_by_charge_ids(self, telegram_payment_charge_ids: Sequence[str]) -> dict[str, Purchase]:
        wanted = set(telegram_payment_charge_ids)
        return {p.telegram_payment_charge_id: p for p in self._s.purchases.values()
                if p.telegram_payment_charge_id is not None and p.telegram_payment_charge_id in wanted}

    def user_has_paid(self, user_id: int) -> bool:
        """The user has a PAID or REFUNDED purchase."""
        return any(p.user_id == user_id and p.status in (PurchaseStatus.PAID, PurchaseStatus.REFUNDED)
                   for p in self._s.purchases.values())

    def set_status(
        self,
        purchase_id: int,
        expected: Sequence[PurchaseStatus],
        status: PurchaseStatus,
        now: datetime,
        telegram_payment_charge_id: str | None = None,
    ) -> Purchase | None:
        """Conditional status change; sets ``paid_at``/``refunded_at`` and the charge id."""
        p = self._s.purchases.get(purchase_id)
        if p is None or p.status not in expected:
            return None
        changes: dict[str, Any] = {"status": status, "updated_at": now}
        if telegram_payment_charge_id is not None:
            other = self.get_by_charge_id(telegram_payment_charge_id)
            if other is not None and other.id != purchase_id:
                raise DuplicateChargeId(telegram_payment_charge_id)
            changes["telegram_payment_charge_id"] = telegram_payment_charge_id
        if status is PurchaseStatus.PAID:
            changes["paid_at"] = now
        if status is PurchaseStatus.REFUNDED:
            changes["refunded_at"] = now
        return self._write(self._s.purchases, purchase_id, attrs.evolve(p, **changes))

    def mark_review(self, purchase_id: int, reason: str, now: datetime) -> Purchase | None:
        p = self._s.purchases.get(purchase_id)
        if p is None:
            return None
        return self._write(self._s.purchases, purchase_id, attrs.evolve(p, review_reason=reason, updated_at=now))

    def stale_open(self, cutoff: datetime, limit: int) -> list[Purchase]:
        due = [p for p in self._s.purchases.values() if p.status in OPEN_PURCHASE_STATUSES and p.created_at < cutoff]
        return sorted(due, key=lambda p: p.id or 0)[:limit]

    def refunded_needing_rollback(self, limit: int) -> list[Purchase]:
        """REFUNDED purchases whose promo redemption they applied is not REVOKED, by id."""
        due = []
        for p in self._s.purchases.values():
            if p.status is not PurchaseStatus.REFUNDED or p.promo_redemption_id is None:
                continue
            r = self._s.redemptions.get(p.promo_redemption_id)
            if r is not None and r.status is not RedemptionStatus.REVOKED and r.applied_purchase_id == p.id:
                due.append(p)
        return sorted(due, key=lambda p: p.id or 0)[:limit]

    def in_window(self, since: datetime, until: datetime) -> list[Purchase]:
        return sorted((p for p in self._s.purchases.values() if since <= p.created_at < until),
                      key=lambda p: p.id or 0)

    def count_in_review(self) -> int:
        return sum(1 for p in self._s.purchases.values() if p.review_reason is not None)

    def settled_between(self, since: datetime, until: datetime) -> list[Purchase]:
        """Purchases whose ``paid_at`` or ``refunded_at`` lies in ``[since, until)``, by id."""

        def inside(moment: datetime | None) -> bool:
            return moment is not None and since <= moment < until

        return sorted((p for p in self._s.purchases.values() if inside(p.paid_at) or inside(p.refunded_at)),
                      key=lambda p: p.id or 0)

    def flagged_for_review(self, since: datetime, limit: int) -> list[Purchase]:
        flagged = [p for p in self._s.purchases.values() if p.review_reason is not None and p.updated_at >= since]
        return sorted(flagged, key=lambda p: p.id or 0)[:limit]

    def totals(self, since: datetime, until: datetime) -> PaymentTotals:
        """Paid (by ``paid_at``), refunded (by ``refunded_at``) and FAILED (by ``updated_at``) in the window."""
        paid = refunded = failed = paid_stars = refunded_stars = failed_stars = 0
        for p in self._s.purchases.values():
            if p.paid_at is not None and since <= p.paid_at < until:
                paid += 1
                paid_stars += p.final_stars_amount
            if p.refunded_at is not None and since <= p.refunded_at < until:
                refunded += 1
                refunded_stars += p.final_stars_amount
            if p.status is PurchaseStatus.FAILED and since <= p.updated_at < until:
                failed += 1
                failed_stars += p.final_stars_amount
        return PaymentTotals(paid, paid_stars, refunded, refunded_stars, failed, failed_stars)

    def for_user(self, user_id: int, limit: int) -> list[Purchase]:
        """The user's purchases, newest first (by ``created_at``, then id)."""
        mine = [p for p in self._s.purchases.values() if p.user_id == user_id]
        return sorted(mine, key=lambda p: (p.created_at, p.id or 0), reverse=True)[:max(limit, 0)]

    def _paid_since(self, since: datetime, campaign_id: int | None) -> Iterator[Purchase]:
        """Purchases with ``paid_at`` at or after ``since`` (REFUNDED later included: they were paid); with
        ``campaign_id``, only those made with a redemption of that campaign."""
        for p in self._s.purchases.values():
            if p.paid_at is None or p.paid_at < since:
                continue
            if campaign_id is not None:
                r = self._s.redemptions.get(p.promo_redemption_id) if p.promo_redemption_id is not None else None
                if r is None or r.campaign_id != campaign_id:
                    continue
            yield p

    def hourly_revenue(self, since: datetime, until: datetime, campaign_id: int | None = None) -> list[HourCount]:
        """``final_stars_amount`` of purchases paid in ``[since, until)`` per UTC hour of ``paid_at``, by hour;
        empty hours left out. With ``campaign_id``, only purchases made with a redemption of that campaign."""
        per_hour: dict[datetime, int] = defaultdict(int)
        for p in self._paid_since(since, campaign_id):
            assert p.paid_at is not None
            if p.paid_at < until:
                per_hour[hour_start(p.paid_at)] += p.final_stars_amount
        return [HourCount(hour, stars) for hour, stars in sorted(per_hour.items())]

    def paid_in_campaign(self, campaign_id: int, since: datetime) -> tuple[int, int, int]:
        """(count, final Stars, discount Stars) of purchases paid at or after ``since`` with a redemption of the
        campaign."""
        count = final = discount = 0
        for p in self._paid_since(since, campaign_id):
            count += 1
            final += p.final_stars_amount
            discount += p.discount_stars_amount
        return count, final, discount


class InMemoryPaymentReviews(MemoryTable):
    """The ``payment_reviews`` table (port ``PaymentReviews``)."""

    def add(self, review: PaymentReview) -> PaymentReview | None:
        """Insert unless a review with the same ``dedup_key`` exists (open or resolved): then None."""
        if review.dedup_key in self._s.payment_review_keys:
            return None
        new_id = self._s.next_id("payment_reviews")
        stored = self._write(self._s.payment_reviews, new_id,
                             attrs.evolve(review, id=new_id, details=copy.deepcopy(review.details)))
        self._u.set(self._s.payment_review_keys, stored.dedup_key, new_id)
        return stored

    def add_many(self, reviews: Sequence[PaymentReview]) -> list[PaymentReview]:
        return [stored for stored in (self.add(r) for r in reviews) if stored is not None]

    def existing_keys(self, dedup_keys: Sequence[str]) -> set[str]:
        return {key for key in dedup_keys if key in self._s.payment_review_keys}

    def get(self, review_id: int) -> PaymentReview | None:
        return self._s.payment_reviews.get(review_id)

    def list(self, open_only: bool, limit: int, after_id: int | None = None) -> list[PaymentReview]:
        rows = (r for r in self._s.payment_reviews.values()
                if (not open_only or r.is_open) and (after_id is None or (r.id or 0) > after_id))
        return sorted(rows, key=lambda r: r.id or 0)[:limit]

    def count_open(self) -> int:
        return sum(1 for r in self._s.payment_reviews.values() if r.is_open)

    def resolve(self, review_id: int, note: str | None, now: datetime) -> PaymentReview | None:
        r = self._s.payment_reviews.get(review_id)
        if r is None or not r.is_open:
            return None
        return self._write(self._s.payment_reviews, review_id, attrs.evolve(r, resolved_at=now, resolution_note=note))


class InMemoryStarMovements(MemoryTable):
    """The ``star_movements`` table (port ``StarMovements``)."""

    def add_many(self, movements: Sequence[StarMovement]) -> int:
        added = 0
        for m in movements:
            key = (m.transaction_id, m.outgoing)
            if key not in self._s.star_movements:
                self._write(self._s.star_movements, key, m)
                added += 1
        return added

    def totals(self, since: datetime, end: datetime) -> list[MovementTotal]:
        return total_movements(m for m in self._s.star_movements.values() if since <= m.occurred_at < end)
