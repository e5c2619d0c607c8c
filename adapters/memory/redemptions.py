"""In-memory ``promo_redemptions`` and ``promo_attempts`` (ports ``Redemptions``, ``Attempts``).

The database's unique rules hold on insert: one redemption per ``idempotency_key``, one live (not EXPIRED)
redemption per ``(promo_code_id, user_id)`` and one per ``(campaign_id, user_id, user_slot)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from adapters.memory.promo import InMemoryCampaigns, InMemoryPromoCodes
from adapters.memory.store import MemoryTable, hour_start
from domain.errors import DuplicateIdempotencyKey, LiveRedemptionExists, UserSlotTaken
from domain.maintenance import expire_due_by_parts
from domain.model import (
    FAILURE_RESULTS,
    Attempt,
    Campaign,
    HashFailureStats,
    HourCount,
    PrefixFailureStats,
    PromoCode,
    RedeemResult,
    RedeemSnapshot,
    Redemption,
    RedemptionStatus,
)
from domain.redemption import add_and_claim_by_parts, snapshot_by_parts


def _is_live(r: Redemption) -> bool:
    return r.status is not RedemptionStatus.EXPIRED


class InMemoryRedemptions(MemoryTable):
    """The ``promo_redemptions`` table (port ``Redemptions``)."""

    def add(self, redemption: Redemption) -> Redemption:
        """Insert; raises ``DuplicateIdempotencyKey``, ``LiveRedemptionExists`` (the user holds a live redemption
        of this code) or ``UserSlotTaken`` (a live redemption of the user in the campaign holds this
        ``user_slot``). EXPIRED rows take part in neither of the last two rules."""
        if self.get_by_idempotency_key(redemption.idempotency_key) is not None:
            raise DuplicateIdempotencyKey(redemption.idempotency_key)
        if _is_live(redemption):
            if self.get_live(redemption.promo_code_id, redemption.user_id) is not None:
                raise LiveRedemptionExists(f"{redemption.promo_code_id}/{redemption.user_id}")
            if redemption.user_slot in self.held_slots(redemption.campaign_id, redemption.user_id):
                raise UserSlotTaken(f"{redemption.campaign_id}/{redemption.user_id}/{redemption.user_slot}")
        new_id = self._s.next_id("promo_redemptions")
        return self._write(self._s.redemptions, new_id, attrs.evolve(redemption, id=new_id))

    def get(self, redemption_id: int) -> Redemption | None:
        return self._s.redemptions.get(redemption_id)

    def get_by_idempotency_key(self, idempotency_key: str) -> Redemption | None:
        for r in self._s.redemptions.values():
            if r.idempotency_key == idempotency_key:
                return r
        return None

    def get_live(self, promo_code_id: int, user_id: int) -> Redemption | None:
        """The user's redemption of this code that is not EXPIRED."""
        for r in self._s.redemptions.values():
            if r.promo_code_id == promo_code_id and r.user_id == user_id and _is_live(r):
                return r
        return None

    def held_slots(self, campaign_id: int, user_id: int) -> tuple[int, ...]:
        """The ``user_slot`` of every live (not EXPIRED) redemption the user holds in the campaign, ascending."""
        return tuple(sorted(
            r.user_slot for r in self._s.redemptions.values()
            if r.campaign_id == campaign_id and r.user_id == user_id and _is_live(r)
        ))

    def redeem_snapshot(self, idempotency_key: str, user_id: int, code_hashes: Sequence[str],
                        failures_since: datetime) -> RedeemSnapshot:
        """The reads of redeem checks 1-7, composed by ``domain.redemption.snapshot_by_parts``."""
        return snapshot_by_parts(self, InMemoryAttempts(self._s, self._u), InMemoryPromoCodes(self._s, self._u),
                                 InMemoryCampaigns(self._s, self._u), idempotency_key, user_id, code_hashes,
                                 failures_since)

    def add_and_claim(self, redemption: Redemption, attempt: Attempt, now: datetime
                      ) -> tuple[Redemption, PromoCode, Campaign] | None:
        """``add``, ``Attempts.add`` and ``PromoCodes.claim_capacity``, composed by
        ``domain.redemption.add_and_claim_by_parts``: None when no unit could be claimed (the caller rolls back)."""
        return add_and_claim_by_parts(self, InMemoryAttempts(self._s, self._u), InMemoryPromoCodes(self._s, self._u),
                                      redemption, attempt, now)

    def _put(self, r: Redemption, **changes: Any) -> Redemption:
        return self._write(self._s.redemptions, r.id, attrs.evolve(r, **changes))

    def bind_purchase(self, redemption_id: int, purchase_id: int, now: datetime) -> Redemption | None:
        """Bind a RESERVED, unexpired, unbound reservation (or one already bound to this purchase)."""
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

    def expire_due(self, now: datetime, limit: int) -> tuple[int, list[tuple[int, int]]]:
        return expire_due_by_parts(self, now, limit)

    def count_created(self, since: datetime, until: datetime, reservations_only: bool) -> int:
        return sum(
            1 for r in self._s.redemptions.values()
            if since <= r.created_at < until and (not reservations_only or r.is_reservation)
        )

    def count_applied_reservations(self, since: datetime, until: datetime) -> int:
        """Discount reservations created in ``[since, until)`` that reached APPLIED (or later REVOKED)."""
        return sum(
            1 for r in self._s.redemptions.values()
            if since <= r.created_at < until and r.is_reservation and r.applied_purchase_id is not None
        )

    def count_by_status(self, promo_code_id: int) -> dict[RedemptionStatus, int]:
        """Redemptions of one code per status, every status present."""
        out = dict.fromkeys(RedemptionStatus, 0)
        for r in self._s.redemptions.values():
            if r.promo_code_id == promo_code_id:
                out[r.status] += 1
        return out

    def count_by_status_in_campaign(self, campaign_id: int, since: datetime | None = None
                                    ) -> dict[RedemptionStatus, int]:
        """The campaign's redemptions (all its codes) per current status, every status present; with ``since``,
        only those created at or after it."""
        out = dict.fromkeys(RedemptionStatus, 0)
        for r in self._s.redemptions.values():
            if r.campaign_id == campaign_id and (since is None or r.created_at >= since):
                out[r.status] += 1
        return out

    def for_user(self, user_id: int, limit: int) -> list[Redemption]:
        """The user's redemptions, newest first (by ``created_at``, then id)."""
        mine = [r for r in self._s.redemptions.values() if r.user_id == user_id]
        return sorted(mine, key=lambda r: (r.created_at, r.id or 0), reverse=True)[:max(limit, 0)]

    def for_code(self, promo_code_id: int, limit: int, before_id: int | None = None) -> list[Redemption]:
        """The code's redemptions, newest first (by id); with ``before_id``, only those with a smaller id."""
        rows = [r for r in self._s.redemptions.values()
                if r.promo_code_id == promo_code_id and (before_id is None or (r.id or 0) < before_id)]
        return sorted(rows, key=lambda r: r.id or 0, reverse=True)[:max(limit, 0)]

    def _applied_at(self, r: Redemption) -> datetime | None:
        """When the redemption was applied: a grant when it was created (APPLIED at once; REVOKED later still
        was), a reservation when the purchase that applied it was paid; None when it never was."""
        if not r.is_reservation:
            return r.created_at if r.status in (RedemptionStatus.APPLIED, RedemptionStatus.REVOKED) else None
        purchase = self._s.purchases.get(r.applied_purchase_id) if r.applied_purchase_id is not None else None
        return purchase.paid_at if purchase is not None else None

    def hourly_applied(self, since: datetime, until: datetime, campaign_id: int | None = None) -> list[HourCount]:
        """Redemptions applied per UTC hour in ``[since, until)``, by hour: grants by ``created_at``, discounts by
        the ``paid_at`` of the purchase that applied them (``applied_purchase_id``); REVOKED ones that were applied
        count too; hours without any are left out. With ``campaign_id``, only that campaign's."""
        per_hour: dict[datetime, int] = defaultdict(int)
        for r in self._s.redemptions.values():
            if campaign_id is not None and r.campaign_id != campaign_id:
                continue
            at = self._applied_at(r)
            if at is not None and since <= at < until:
                per_hour[hour_start(at)] += 1
        return [HourCount(hour, n) for hour, n in sorted(per_hour.items())]

    def given_in_campaign(self, campaign_id: int, since: datetime) -> tuple[int, int]:
        """(discount Stars, grant days) the campaign gave since ``since``: the ``discount_stars_amount`` of the
        purchases paid (``paid_at``) at or after it with the campaign's redemptions (refunded later included), and
        the campaign's ``grant_days`` times its grants created at or after it (APPLIED, or REVOKED later)."""
        mine = {r.id: r for r in self._s.redemptions.values() if r.campaign_id == campaign_id}
        discount = sum(
            p.discount_stars_amount for p in self._s.purchases.values()
            if p.promo_redemption_id in mine and p.paid_at is not None and p.paid_at >= since
        )
        grants = sum(
            1 for r in mine.values()
            if not r.is_reservation and r.created_at >= since
            and r.status in (RedemptionStatus.APPLIED, RedemptionStatus.REVOKED)
        )
        campaign = self._s.campaigns.get(campaign_id)
        days = campaign.grant_days if campaign is not None and campaign.grant_days is not None else 0
        return discount, grants * days


class InMemoryAttempts(MemoryTable):
    """The ``promo_attempts`` table (port ``Attempts``), append only."""

    def add(self, attempt: Attempt) -> None:
        self._append(self._s.attempts, attrs.evolve(attempt, id=self._s.next_id("promo_attempts")))

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

    def _in_window(self, since: datetime, until: datetime, campaign_id: int | None) -> list[Attempt]:
        return [a for a in self._s.attempts
                if since <= a.attempted_at < until and (campaign_id is None or a.campaign_id == campaign_id)]

    def counts_by_result(self, since: datetime, until: datetime, campaign_id: int | None = None
                         ) -> dict[RedeemResult, int]:
        """Attempts per result in ``[since, until)`` (results without attempts left out); with ``campaign_id``,
        only those on that campaign's codes."""
        out: dict[RedeemResult, int] = {}
        for a in self._in_window(since, until, campaign_id):
            out[a.result] = out.get(a.result, 0) + 1
        return out

    def hourly(self, since: datetime, until: datetime, campaign_id: int | None = None
               ) -> list[tuple[datetime, int, int]]:
        """(hour, attempts, accepted) per UTC hour of ``attempted_at`` in ``[since, until)``, by hour; empty hours
        left out."""
        per_hour: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
        for a in self._in_window(since, until, campaign_id):
            counts = per_hour[hour_start(a.attempted_at)]
            counts[0] += 1
            counts[1] += a.result is RedeemResult.ACCEPTED
        return [(hour, total, accepted) for hour, (total, accepted) in sorted(per_hour.items())]

    def roll_up(self, since: datetime, before: datetime) -> int:
        """Nothing to fold: the counts above read the list itself."""
        return 0

    def for_user(self, user_id: int, limit: int) -> list[Attempt]:
        """The user's latest attempts, newest first (by ``attempted_at``, then id)."""
        mine = [a for a in self._s.attempts if a.user_id == user_id]
        return sorted(mine, key=lambda a: (a.attempted_at, a.id or 0), reverse=True)[:max(limit, 0)]
