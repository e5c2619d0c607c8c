"""In-memory repositories and unit of work: thread-safe, shipped for tests and library users.

A unit of work holds the store's lock from ``__enter__`` to ``__exit__`` (serializable, like a
database with one writer) and keeps an undo log, so ``rollback`` restores every row it touched.
The same uniqueness rules as the database are enforced on insert.
"""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import attrs

from domain.errors import (
    DuplicateChargeId,
    DuplicateCodeHash,
    DuplicateIdempotencyKey,
    LiveRedemptionExists,
    OpenPurchaseExists,
)
from domain.model import (
    FAILURE_RESULTS,
    OPEN_PURCHASE_STATUSES,
    Attempt,
    Campaign,
    CampaignStatus,
    Entitlement,
    LedgerEntry,
    PausedReason,
    PaymentReview,
    PaymentTotals,
    Purchase,
    PurchaseStatus,
    RedeemResult,
    RedeemSnapshot,
    Redemption,
    RedemptionStatus,
)
from domain.redemption import add_and_claim_by_parts, snapshot_by_parts
from ports.entitlements import EntitlementLedger, Entitlements
from ports.repositories import (
    Attempts,
    CampaignFilter,
    HashFailureStats,
    PaymentReviews,
    PrefixFailureStats,
    ProcessedUpdates,
    PromoCodes,
    Purchases,
    Redemptions,
)

_MISSING = object()


class MemoryStore:
    """All tables of one in-memory database. Share one store between units of work."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.campaigns: dict[int, Campaign] = {}
        self.redemptions: dict[int, Redemption] = {}
        self.attempts: list[Attempt] = []
        self.purchases: dict[int, Purchase] = {}
        self.entitlements: dict[int, Entitlement] = {}
        self.ledger: list[LedgerEntry] = []
        self.kv: dict[str, Any] = {}
        self.processed_updates: dict[int, datetime] = {}
        self.code_hashes: dict[str, int] = {}
        self.payment_reviews: dict[int, PaymentReview] = {}
        self.payment_review_keys: dict[str, int] = {}
        self._ids: dict[str, itertools.count[int]] = defaultdict(lambda: itertools.count(1))

    def next_id(self, table: str) -> int:
        return next(self._ids[table])


class _Undo:
    def __init__(self) -> None:
        self.log: list[Callable[[], None]] = []

    def set(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        old = table.get(key, _MISSING)

        def undo() -> None:
            if old is _MISSING:
                table.pop(key, None)
            else:
                table[key] = old

        self.log.append(undo)
        table[key] = value

    def append(self, table: list[Any], value: Any) -> None:
        self.log.append(table.pop)
        table.append(value)

    def rollback(self) -> None:
        while self.log:
            self.log.pop()()


class InMemoryPromoCodes:
    def __init__(self, store: MemoryStore, undo: _Undo) -> None:
        self._s = store
        self._u = undo

    def add(self, campaign: Campaign) -> Campaign:
        if campaign.code_hash in self._s.code_hashes:
            raise DuplicateCodeHash(campaign.code_hash)
        stored = attrs.evolve(campaign, id=self._s.next_id("promo_codes"))
        assert stored.id is not None
        self._u.set(self._s.campaigns, stored.id, stored)
        self._u.set(self._s.code_hashes, stored.code_hash, stored.id)
        return stored

    def add_many(self, campaigns: Sequence[Campaign]) -> list[int]:
        batch = [c.code_hash for c in campaigns]
        if len(set(batch)) != len(batch) or any(h in self._s.code_hashes for h in batch):
            raise DuplicateCodeHash("duplicate code hash in bulk insert")
        return [self.add(c).id for c in campaigns]  # type: ignore[misc]

    def get(self, promo_code_id: int) -> Campaign | None:
        return self._s.campaigns.get(promo_code_id)

    def get_by_hashes(self, code_hashes: Sequence[str]) -> Campaign | None:
        for h in code_hashes:
            cid = self._s.code_hashes.get(h)
            if cid is not None:
                return self._s.campaigns[cid]
        return None

    def existing_hashes(self, code_hashes: Sequence[str]) -> set[str]:
        return {h for h in code_hashes if h in self._s.code_hashes}

    def search(self, flt: CampaignFilter, limit: int, after_id: int | None) -> list[Campaign]:
        out = []
        for cid in sorted(self._s.campaigns):
            c = self._s.campaigns[cid]
            if after_id is not None and cid <= after_id:
                continue
            if flt.status is not None and c.status is not flt.status:
                continue
            if flt.promo_type is not None and c.promo_type is not flt.promo_type:
                continue
            if flt.name_contains and flt.name_contains.lower() not in c.campaign_name.lower():
                continue
            out.append(c)
            if len(out) >= limit:
                break
        return out

    def set_status(
        self,
        promo_code_id: int,
        expected: Sequence[CampaignStatus],
        status: CampaignStatus,
        paused_reason: PausedReason | None,
        now: datetime,
    ) -> Campaign | None:
        c = self._s.campaigns.get(promo_code_id)
        if c is None or c.status not in expected:
            return None
        reason = paused_reason if status is CampaignStatus.PAUSED else None
        updated = attrs.evolve(c, status=status, paused_reason=reason, updated_at=now)
        self._u.set(self._s.campaigns, promo_code_id, updated)
        return updated

    def claim_capacity(self, promo_code_id: int, now: datetime) -> Campaign | None:
        c = self._s.campaigns.get(promo_code_id)
        if c is None or c.status is not CampaignStatus.ACTIVE or c.capacity_used_up():
            return None
        updated = attrs.evolve(c, used_total=c.used_total + 1, updated_at=now)
        self._u.set(self._s.campaigns, promo_code_id, updated)
        return updated

    def release_capacity(self, promo_code_id: int, now: datetime, units: int = 1) -> None:
        c = self._s.campaigns.get(promo_code_id)
        if c is not None and c.used_total > 0 and units > 0:
            self._u.set(self._s.campaigns, promo_code_id,
                        attrs.evolve(c, used_total=max(0, c.used_total - units), updated_at=now))

    def release_capacity_many(self, units: Mapping[int, int], now: datetime) -> None:
        for promo_code_id in sorted(units):
            self.release_capacity(promo_code_id, now, units[promo_code_id])

    def due_for_expiry(self, now: datetime, limit: int) -> list[Campaign]:
        due = [
            c for c in self._s.campaigns.values()
            if c.status in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED) and c.is_past_validity(now)
        ]
        return sorted(due, key=lambda c: c.id or 0)[:limit]

    def due_for_depletion(self, limit: int) -> list[Campaign]:
        reserved = {
            r.promo_code_id for r in self._s.redemptions.values() if r.status is RedemptionStatus.RESERVED
        }
        due = [
            c for c in self._s.campaigns.values()
            if c.status is CampaignStatus.ACTIVE and c.capacity_used_up() and c.id not in reserved
        ]
        return sorted(due, key=lambda c: c.id or 0)[:limit]

    def active_with_prefix(self, code_prefix: str) -> list[Campaign]:
        return [c for c in self._s.campaigns.values()
                if c.status is CampaignStatus.ACTIVE and c.code_prefix == code_prefix]

    def active_with_hashes(self, code_hashes: Sequence[str]) -> list[Campaign]:
        wanted = set(code_hashes)
        return [c for c in self._s.campaigns.values()
                if c.status is CampaignStatus.ACTIVE and c.code_hash in wanted]

    def count_paused(self, since: datetime | None = None) -> int:
        return sum(
            1 for c in self._s.campaigns.values()
            if c.status is CampaignStatus.PAUSED and (since is None or c.updated_at >= since)
        )


class InMemoryRedemptions:
    def __init__(self, store: MemoryStore, undo: _Undo) -> None:
        self._s = store
        self._u = undo

    def add(self, redemption: Redemption) -> Redemption:
        for r in self._s.redemptions.values():
            if r.idempotency_key == redemption.idempotency_key:
                raise DuplicateIdempotencyKey(redemption.idempotency_key)
        if redemption.status is not RedemptionStatus.EXPIRED and self.get_live(
            redemption.promo_code_id, redemption.user_id
        ):
            raise LiveRedemptionExists(f"{redemption.promo_code_id}/{redemption.user_id}")
        stored = attrs.evolve(redemption, id=self._s.next_id("promo_redemptions"))
        self._u.set(self._s.redemptions, stored.id, stored)
        return stored

    def get(self, redemption_id: int) -> Redemption | None:
        return self._s.redemptions.get(redemption_id)

    def get_by_idempotency_key(self, idempotency_key: str) -> Redemption | None:
        for r in self._s.redemptions.values():
            if r.idempotency_key == idempotency_key:
                return r
        return None

    def get_live(self, promo_code_id: int, user_id: int) -> Redemption | None:
        for r in self._s.redemptions.values():
            if r.promo_code_id == promo_code_id and r.user_id == user_id and r.status is not RedemptionStatus.EXPIRED:
                return r
        return None

    def redeem_snapshot(self, idempotency_key: str, user_id: int, code_hashes: Sequence[str],
                        failures_since: datetime) -> RedeemSnapshot:
        return snapshot_by_parts(self, InMemoryAttempts(self._s, self._u), InMemoryPromoCodes(self._s, self._u),
                                 idempotency_key, user_id, code_hashes, failures_since)

    def add_and_claim(self, redemption: Redemption, attempt: Attempt, now: datetime
                      ) -> tuple[Redemption, Campaign] | None:
        return add_and_claim_by_parts(self, InMemoryAttempts(self._s, self._u), InMemoryPromoCodes(self._s, self._u),
                                      redemption, attempt, now)

    def _put(self, r: Redemption, **changes: Any) -> Redemption:
        updated = attrs.evolve(r, **changes)
        self._u.set(self._s.redemptions, r.id, updated)
        return updated

    def bind_purchase(self, redemption_id: int, purchase_id: int, now: datetime) -> Redemption | None:
        r = self._s.redemptions.get(redemption_id)
        if (
            r is None
            or r.status is not RedemptionStatus.RESERVED
            or r.reserved_until is None
            or now >= r.reserved_until
            or r.purchase_id not in (None, purchase_id)
        ):
            return None
        return self._put(r, purchase_id=purchase_id, updated_at=now)

    def unbind_purchase(self, redemption_id: int, purchase_id: int, now: datetime) -> None:
        r = self._s.redemptions.get(redemption_id)
        if r is not None and r.purchase_id == purchase_id and r.status is RedemptionStatus.RESERVED:
            self._put(r, purchase_id=None, updated_at=now)

    def apply(self, redemption_id: int, purchase_id: int, now: datetime) -> Redemption | None:
        r = self._s.redemptions.get(redemption_id)
        if r is None or r.status is not RedemptionStatus.RESERVED:
            return None
        return self._put(r, status=RedemptionStatus.APPLIED, applied_purchase_id=purchase_id,
                         purchase_id=purchase_id, updated_at=now)

    def expire(self, redemption_id: int, now: datetime) -> Redemption | None:
        r = self._s.redemptions.get(redemption_id)
        if (
            r is None
            or r.status is not RedemptionStatus.RESERVED
            or r.purchase_id is not None
            or r.reserved_until is None
            or now < r.reserved_until
        ):
            return None
        return self._put(r, status=RedemptionStatus.EXPIRED, updated_at=now)

    def expire_many(self, redemption_ids: Sequence[int], now: datetime) -> list[Redemption]:
        return [r for r in (self.expire(i, now) for i in dict.fromkeys(redemption_ids)) if r is not None]

    def revoke(self, redemption_id: int, now: datetime) -> Redemption | None:
        r = self._s.redemptions.get(redemption_id)
        if r is None or r.status not in (RedemptionStatus.RESERVED, RedemptionStatus.APPLIED):
            return None
        return self._put(r, status=RedemptionStatus.REVOKED, revoked_at=now, updated_at=now)

    def due_for_expiry(self, now: datetime, limit: int) -> list[Redemption]:
        due = [
            r for r in self._s.redemptions.values()
            if r.status is RedemptionStatus.RESERVED and r.purchase_id is None
            and r.reserved_until is not None and r.reserved_until <= now
        ]
        return sorted(due, key=lambda r: r.id or 0)[:limit]

    def count_created(self, since: datetime, until: datetime, reservations_only: bool) -> int:
        return sum(
            1 for r in self._s.redemptions.values()
            if since <= r.created_at < until and (not reservations_only or r.discount_percent is not None)
        )

    def count_applied_reservations(self, since: datetime, until: datetime) -> int:
        return sum(
            1 for r in self._s.redemptions.values()
            if since <= r.created_at < until and r.discount_percent is not None
            and r.applied_purchase_id is not None
        )

    def count_by_status(self, promo_code_id: int) -> dict[RedemptionStatus, int]:
        out = dict.fromkeys(RedemptionStatus, 0)
        for r in self._s.redemptions.values():
            if r.promo_code_id == promo_code_id:
                out[r.status] += 1
        return out


class InMemoryAttempts:
    def __init__(self, store: MemoryStore, undo: _Undo) -> None:
        self._s = store
        self._u = undo

    def add(self, attempt: Attempt) -> None:
        self._u.append(self._s.attempts, attrs.evolve(attempt, id=self._s.next_id("promo_attempts")))

    def failure_stats(self, user_id: int, since: datetime) -> tuple[int, datetime | None]:
        times = [a.attempted_at for a in self._s.attempts
                 if a.user_id == user_id and a.attempted_at >= since and a.result in FAILURE_RESULTS]
        return len(times), max(times, default=None)

    def hash_failures(self, since: datetime, min_failures: int, min_users: int) -> list[HashFailureStats]:
        groups: dict[str, list[Attempt]] = defaultdict(list)
        for a in self._s.attempts:
            if a.attempted_at >= since and a.result in FAILURE_RESULTS and a.normalized_code_hash:
                groups[a.normalized_code_hash].append(a)
        out = []
        for h, rows in groups.items():
            users = len({a.user_id for a in rows})
            if len(rows) >= min_failures and users >= min_users:
                out.append(HashFailureStats(h, len(rows), users, max(a.attempted_at for a in rows)))
        return sorted(out, key=lambda s: (-s.failures, s.normalized_code_hash))

    def invalid_prefix_failures(self, since: datetime, min_failures: int) -> list[PrefixFailureStats]:
        groups: dict[str, list[Attempt]] = defaultdict(list)
        for a in self._s.attempts:
            if a.attempted_at >= since and a.result is RedeemResult.INVALID and a.code_prefix:
                groups[a.code_prefix].append(a)
        return sorted(
            (PrefixFailureStats(p, len(rows), len({a.user_id for a in rows}), max(a.attempted_at for a in rows))
             for p, rows in groups.items() if len(rows) >= min_failures),
            key=lambda s: (-s.failures, s.code_prefix),
        )

    def counts_by_result(self, since: datetime, until: datetime) -> dict[RedeemResult, int]:
        out: dict[RedeemResult, int] = {}
        for a in self._s.attempts:
            if since <= a.attempted_at < until:
                out[a.result] = out.get(a.result, 0) + 1
        return out


class InMemoryPurchases:
    def __init__(self, store: MemoryStore, undo: _Undo) -> None:
        self._s = store
        self._u = undo

    def add(self, purchase: Purchase) -> Purchase:
        if purchase.is_open and self.get_open(purchase.user_id, purchase.product_code) is not None:
            raise OpenPurchaseExists(f"{purchase.user_id}/{purchase.product_code}")
        if purchase.telegram_payment_charge_id is not None and self.get_by_charge_id(
            purchase.telegram_payment_charge_id
        ):
            raise DuplicateChargeId(purchase.telegram_payment_charge_id)
        stored = attrs.evolve(purchase, id=self._s.next_id("purchases"))
        self._u.set(self._s.purchases, stored.id, stored)
        return stored

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

    def user_has_paid(self, user_id: int) -> bool:
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
        updated = attrs.evolve(p, **changes)
        self._u.set(self._s.purchases, purchase_id, updated)
        return updated

    def mark_review(self, purchase_id: int, reason: str, now: datetime) -> Purchase | None:
        p = self._s.purchases.get(purchase_id)
        if p is None:
            return None
        updated = attrs.evolve(p, review_reason=reason, updated_at=now)
        self._u.set(self._s.purchases, purchase_id, updated)
        return updated

    def stale_open(self, cutoff: datetime, limit: int) -> list[Purchase]:
        due = [p for p in self._s.purchases.values() if p.status in OPEN_PURCHASE_STATUSES and p.created_at < cutoff]
        return sorted(due, key=lambda p: p.id or 0)[:limit]

    def refunded_needing_rollback(self, limit: int) -> list[Purchase]:
        due = []
        for p in self._s.purchases.values():
            if p.status is not PurchaseStatus.REFUNDED or p.promo_redemption_id is None:
                continue
            r = self._s.redemptions.get(p.promo_redemption_id)
            if r is not None and r.status is not RedemptionStatus.REVOKED:
                due.append(p)
        return sorted(due, key=lambda p: p.id or 0)[:limit]

    def in_window(self, since: datetime, until: datetime) -> list[Purchase]:
        return sorted((p for p in self._s.purchases.values() if since <= p.created_at < until),
                      key=lambda p: p.id or 0)

    def count_in_review(self) -> int:
        return sum(1 for p in self._s.purchases.values() if p.review_reason is not None)

    def settled_between(self, since: datetime, until: datetime) -> list[Purchase]:
        def inside(moment: datetime | None) -> bool:
            return moment is not None and since <= moment < until

        return sorted((p for p in self._s.purchases.values() if inside(p.paid_at) or inside(p.refunded_at)),
                      key=lambda p: p.id or 0)

    def flagged_for_review(self, since: datetime, limit: int) -> list[Purchase]:
        flagged = [p for p in self._s.purchases.values() if p.review_reason is not None and p.updated_at >= since]
        return sorted(flagged, key=lambda p: p.id or 0)[:limit]

    def totals(self, since: datetime, until: datetime) -> PaymentTotals:
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


class InMemoryPaymentReviews:
    def __init__(self, store: MemoryStore, undo: _Undo) -> None:
        self._s = store
        self._u = undo

    def add(self, review: PaymentReview) -> PaymentReview | None:
        if review.dedup_key in self._s.payment_review_keys:
            return None
        stored = attrs.evolve(review, id=self._s.next_id("payment_reviews"), details=dict(review.details))
        assert stored.id is not None
        self._u.set(self._s.payment_reviews, stored.id, stored)
        self._u.set(self._s.payment_review_keys, stored.dedup_key, stored.id)
        return stored

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
        updated = attrs.evolve(r, resolved_at=now, resolution_note=note)
        self._u.set(self._s.payment_reviews, review_id, updated)
        return updated


class InMemoryEntitlements:
    def __init__(self, store: MemoryStore, undo: _Undo) -> None:
        self._s = store
        self._u = undo

    def get(self, user_id: int) -> Entitlement | None:
        return self._s.entitlements.get(user_id)

    def put(self, entitlement: Entitlement) -> None:
        self._u.set(self._s.entitlements, entitlement.user_id, entitlement)


class InMemoryLedger:
    def __init__(self, store: MemoryStore, undo: _Undo) -> None:
        self._s = store
        self._u = undo

    def add(self, entry: LedgerEntry) -> LedgerEntry:
        stored = attrs.evolve(entry, id=self._s.next_id("entitlement_ledger"))
        self._u.append(self._s.ledger, stored)
        return stored

    def for_user(self, user_id: int) -> list[LedgerEntry]:
        return [e for e in self._s.ledger if e.user_id == user_id]


class InMemoryProcessedUpdates:
    def __init__(self, store: MemoryStore, undo: _Undo) -> None:
        self._s = store
        self._u = undo

    def add(self, update_id: int, now: datetime) -> bool:
        if update_id in self._s.processed_updates:
            return False
        self._u.set(self._s.processed_updates, update_id, now)
        return True

    def delete_before(self, cutoff: datetime, limit: int) -> int:
        old = [u for u, at in self._s.processed_updates.items() if at < cutoff][:limit]
        for u in old:
            self._u.set(self._s.processed_updates, u, self._s.processed_updates[u])
            del self._s.processed_updates[u]
        return len(old)


class InMemoryUnitOfWork:
    """One serializable transaction over a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._undo = _Undo()
        self.promo_codes: PromoCodes = InMemoryPromoCodes(store, self._undo)
        self.redemptions: Redemptions = InMemoryRedemptions(store, self._undo)
        self.attempts: Attempts = InMemoryAttempts(store, self._undo)
        self.purchases: Purchases = InMemoryPurchases(store, self._undo)
        self.entitlements: Entitlements = InMemoryEntitlements(store, self._undo)
        self.ledger: EntitlementLedger = InMemoryLedger(store, self._undo)
        self.processed_updates: ProcessedUpdates = InMemoryProcessedUpdates(store, self._undo)
        self.payment_reviews: PaymentReviews = InMemoryPaymentReviews(store, self._undo)

    def __enter__(self) -> Self:
        self._store.lock.acquire()
        self._undo.log.clear()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            self._store.lock.release()

    def commit(self) -> None:
        self._undo.log.clear()

    def rollback(self) -> None:
        self._undo.rollback()


class InMemoryUnitOfWorkFactory:
    """Callable producing units of work over one shared store."""

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()

    def __call__(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.store)
