"""Repositories and the unit of work.

Every method that changes a counter or a status is *conditional*: it states the state it expects
and returns ``None``/``False`` when another writer got there first. SQL adapters implement these as
one ``UPDATE ... WHERE ... RETURNING``; the in-memory adapter under its lock. Inserts that would
break a uniqueness rule raise the matching ``domain.errors.ConstraintViolation`` subclass; after
such an error the unit of work must be rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from domain.model import (
    Attempt,
    AuditEntry,
    AuditFilter,
    Campaign,
    CampaignChanges,
    CampaignFilter,
    CampaignStatus,
    CodeFilter,
    HashFailureStats,
    HourCount,
    MovementTotal,
    PausedReason,
    PaymentReview,
    PaymentTotals,
    PrefixFailureStats,
    PromoCode,
    Purchase,
    PurchaseStatus,
    RedeemResult,
    RedeemSnapshot,
    Redemption,
    RedemptionStatus,
    StarMovement,
)
from ports.entitlements import EntitlementLedger, Entitlements
from ports.operators import Operators, SignInFailures
from ports.outbox import TelegramOutbox

__all__ = ["CampaignFilter", "CodeFilter", "HashFailureStats", "PrefixFailureStats", "UnitOfWork", "UnitOfWorkFactory"]


class Campaigns(Protocol):
    """The ``promo_campaigns`` table: one row per campaign (terms, budget, per-user limit)."""

    def add(self, campaign: Campaign) -> Campaign:
        """Insert; returns the row with its id. Raises ``DuplicateCampaignName``."""
        ...

    def get(self, campaign_id: int) -> Campaign | None: ...

    def get_by_name(self, name: str) -> Campaign | None: ...

    def get_many(self, campaign_ids: Sequence[int]) -> dict[int, Campaign]: ...

    def search(self, flt: CampaignFilter, limit: int, before_id: int | None) -> list[Campaign]:
        """Campaigns matching ``flt``, newest first (by id, descending), starting below ``before_id``."""
        ...

    def set_status(
        self,
        campaign_id: int,
        expected: Sequence[CampaignStatus],
        status: CampaignStatus,
        paused_reason: PausedReason | None,
        now: datetime,
    ) -> Campaign | None:
        """Move to ``status`` only from one of ``expected``; None when the row is elsewhere."""
        ...

    def change(self, campaign_id: int, changes: CampaignChanges, now: datetime) -> Campaign | None:
        """Apply the changed fields of ``changes`` (``CampaignChanges.UNCHANGED`` leaves one as it is) in one
        conditional update: a new ``max_total_uses`` only when not below ``used_total``. None when the campaign
        is missing or the condition failed. Raises ``DuplicateCampaignName``. The copies of ``name`` and
        ``valid_until`` on its codes are the caller's (``PromoCodes.copy_campaign_fields``)."""
        ...

    def release_capacity_many(self, units: Mapping[int, int], now: datetime) -> None:
        """``used_total - units`` for many campaigns (``campaign_id -> units``, never below zero), rows locked
        in id order: expired reservations give their units back."""
        ...

    def due_for_expiry(self, now: datetime, limit: int) -> list[Campaign]:
        """ACTIVE or PAUSED campaigns whose ``valid_until`` has passed, by id. Not locked: the caller expires their
        codes first (code rows before campaign rows), then moves each campaign with a conditional ``set_status``."""
        ...

    def due_for_depletion(self, limit: int) -> list[Campaign]:
        """ACTIVE campaigns with ``used_total >= max_total_uses`` and no RESERVED redemption."""
        ...

    def active_with_code_prefix(self, code_prefix: str) -> list[Campaign]:
        """ACTIVE campaigns that have a code (in any status) starting with ``code_prefix``."""
        ...

    def count_paused(self, since: datetime | None = None) -> int:
        """PAUSED campaigns; with ``since``, only those paused at or after it."""
        ...

    def code_counts(self, campaign_ids: Sequence[int]) -> dict[int, dict[CampaignStatus, int]]:
        """Codes per status of each campaign (every status present, zeros included)."""
        ...


class PromoCodes(Protocol):
    """The ``promo_codes`` table: one row per code."""

    def add(self, code: PromoCode) -> PromoCode:
        """Insert; returns the row with its id. Raises ``DuplicateCodeHash``."""
        ...

    def add_many(self, codes: Sequence[PromoCode]) -> list[int]:
        """Bulk insert; returns the ids in input order. Raises ``DuplicateCodeHash``."""
        ...

    def get(self, promo_code_id: int) -> PromoCode | None: ...

    def get_many(self, promo_code_ids: Sequence[int]) -> dict[int, PromoCode]:
        """The stored codes among ``promo_code_ids``, by id (one query: a support page lists many)."""
        ...

    def get_by_hashes(self, code_hashes: Sequence[str]) -> PromoCode | None:
        """The code whose ``code_hash`` is any of ``code_hashes`` (first match wins)."""
        ...

    def existing_hashes(self, code_hashes: Sequence[str]) -> set[str]:
        """Those of ``code_hashes`` already stored."""
        ...

    def search(self, flt: CodeFilter, limit: int, after_id: int | None) -> list[PromoCode]:
        """Codes matching ``flt`` ordered by id, starting after ``after_id``."""
        ...

    def set_status(
        self,
        promo_code_id: int,
        expected: Sequence[CampaignStatus],
        status: CampaignStatus,
        paused_reason: PausedReason | None,
        now: datetime,
    ) -> PromoCode | None:
        """Move to ``status`` only from one of ``expected``; None when the row is elsewhere."""
        ...

    def expire_for_campaign(self, campaign_id: int, now: datetime) -> int:
        """The campaign's ACTIVE and PAUSED codes -> EXPIRED (the campaign expired); returns how many."""
        ...

    def copy_campaign_fields(self, campaign_id: int, name: str, valid_until: datetime | None, now: datetime) -> int:
        """Set the copies of the campaign's ``name`` and ``valid_until`` on its codes (called BEFORE the campaign row
        changes: code rows are locked before campaign rows); returns how many codes there are."""
        ...

    def claim_capacity(self, promo_code_id: int, now: datetime) -> tuple[PromoCode, Campaign] | None:
        """One unit from the code's cap and its campaign's budget together: both ``used_total + 1`` while both
        are ACTIVE and below their ``max_total_uses``, or neither (None)."""
        ...

    def release_capacity_many(self, units: Mapping[int, int], now: datetime) -> None:
        """``used_total - units`` for many codes (``promo_code_id -> units``, never below zero), rows locked in
        id order. The campaigns' units are ``Campaigns.release_capacity_many``'s."""
        ...

    def due_for_depletion(self, limit: int) -> list[PromoCode]:
        """ACTIVE codes with ``used_total >= max_total_uses`` and no RESERVED redemption."""
        ...

    def active_with_hashes(self, code_hashes: Sequence[str]) -> list[PromoCode]: ...

    def count_paused(self, since: datetime | None = None) -> int:
        """PAUSED codes (paused on their own); with ``since``, only those paused at or after it."""
        ...


class Redemptions(Protocol):
    """The ``promo_redemptions`` table."""

    def add(self, redemption: Redemption) -> Redemption:
        """Insert; raises ``DuplicateIdempotencyKey``, ``LiveRedemptionExists`` (the user holds this code) or
        ``UserSlotTaken`` (the user holds a live redemption in the same ``user_slot`` of the campaign)."""
        ...

    def get(self, redemption_id: int) -> Redemption | None: ...

    def get_by_idempotency_key(self, idempotency_key: str) -> Redemption | None: ...

    def get_live(self, promo_code_id: int, user_id: int) -> Redemption | None:
        """The user's redemption of this code that is not EXPIRED."""
        ...

    def held_slots(self, campaign_id: int, user_id: int) -> tuple[int, ...]:
        """The ``user_slot`` of each of the user's live (not EXPIRED) redemptions in the campaign, ascending."""
        ...

    def for_user(self, user_id: int, limit: int) -> list[Redemption]:
        """The user's redemptions, newest first."""
        ...

    def for_code(self, promo_code_id: int, limit: int, before_id: int | None = None) -> list[Redemption]:
        """The code's redemptions, newest first (by id); with ``before_id``, only those with a smaller id (paging)."""
        ...

    def redeem_snapshot(self, idempotency_key: str, user_id: int, code_hashes: Sequence[str],
                        failures_since: datetime) -> RedeemSnapshot:
        """The reads of redeem checks 1-7 in one call, as ``get_by_idempotency_key``,
        ``Attempts.failure_stats``, ``PromoCodes.get_by_hashes``, ``Campaigns.get``, ``get_live`` and
        ``held_slots`` would answer them (``domain.redemption.snapshot_by_parts`` composes exactly that;
        adapters may read it at once)."""
        ...

    def add_and_claim(self, redemption: Redemption, attempt: Attempt, now: datetime
                      ) -> tuple[Redemption, PromoCode, Campaign] | None:
        """``add(redemption)``, ``Attempts.add(attempt)`` and ``PromoCodes.claim_capacity`` of the redemption's
        code in one call, in that order (``domain.redemption.add_and_claim_by_parts``): the stored redemption,
        the claimed code and campaign, or None when no unit could be claimed. Raises as ``add``. On None
        or an error the caller rolls back, and nothing of the call survives that. The caller commits right
        after a success, so an adapter may make the call its own transaction when the unit of work has no
        other write open (PostgreSQL does: one statement instead of BEGIN, statement, COMMIT)."""
        ...

    def bind_purchase(self, redemption_id: int, purchase_id: int, now: datetime) -> Redemption | None:
        """Bind a RESERVED, unexpired, unbound reservation (or one already bound to this purchase)."""
        ...

    def unbind_purchase(self, redemption_id: int, purchase_id: int, now: datetime) -> None:
        """Undo ``bind_purchase`` when the purchase fails; the reservation may then expire."""
        ...

    def apply(self, redemption_id: int, purchase_id: int, now: datetime) -> Redemption | None:
        """RESERVED -> APPLIED with ``applied_purchase_id``; None when not RESERVED."""
        ...

    def expire(self, redemption_id: int, now: datetime) -> Redemption | None:
        """RESERVED, past ``reserved_until`` and unbound -> EXPIRED; None otherwise."""
        ...

    def expire_many(self, redemption_ids: Sequence[int], now: datetime) -> list[Redemption]:
        """``expire`` for a batch in one statement; returns those this call expired (any order)."""
        ...

    def revoke(self, redemption_id: int, now: datetime) -> Redemption | None:
        """RESERVED/APPLIED -> REVOKED; None otherwise."""
        ...

    def due_for_expiry(self, now: datetime, limit: int) -> list[Redemption]:
        """RESERVED, unbound, ``reserved_until <= now`` (locked, skip-locked)."""
        ...

    def expire_due(self, now: datetime, limit: int) -> tuple[int, list[tuple[int, int]]]:
        """``expire_many`` of ``due_for_expiry(now, limit)`` in one step (one batch of the expiry job): how many
        were due, and the ``(promo_code_id, campaign_id)`` of each reservation this call expired (only those give
        units back). Reference: ``domain.maintenance.expire_due_by_parts``."""
        ...

    def count_created(self, since: datetime, until: datetime, reservations_only: bool) -> int:
        """Redemptions created in ``[since, until)``; ``reservations_only``: only discount reservations
        (``discount_percent`` or ``discount_stars`` set)."""
        ...

    def count_applied_reservations(self, since: datetime, until: datetime) -> int:
        """Discount reservations (percent or Stars) created in the window that reached APPLIED (or later REVOKED)."""
        ...

    def count_by_status(self, promo_code_id: int) -> dict[RedemptionStatus, int]: ...

    def count_by_status_in_campaign(self, campaign_id: int, since: datetime | None = None
                                    ) -> dict[RedemptionStatus, int]:
        """The campaign's redemptions per status (every status present); with ``since``, created at or after it."""
        ...

    def hourly_applied(self, since: datetime, until: datetime, campaign_id: int | None = None) -> list[HourCount]:
        """Redemptions APPLIED per hour in ``[since, until)``: grants by ``created_at``, discounts by the ``paid_at``
        of the purchase that applied them (``applied_purchase_id``); hours without any are left out. REVOKED ones
        that were applied count too."""
        ...

    def given_in_campaign(self, campaign_id: int, since: datetime) -> tuple[int, int]:
        """(discount Stars, grant days) the campaign gave since ``since``: the ``discount_stars_amount`` of the
        purchases paid with its redemptions, and ``grant_days`` times its grants created (APPLIED or REVOKED)."""
        ...


class Attempts(Protocol):
    """The ``promo_attempts`` table (append only)."""

    def add(self, attempt: Attempt) -> None: ...

    def failure_stats(self, user_id: int, since: datetime) -> tuple[int, datetime | None]:
        """(count, latest) of the user's failed attempts since ``since`` (throttling)."""
        ...

    def hash_failures(self, since: datetime, min_failures: int, min_users: int) -> list[HashFailureStats]:
        """Hashes with at least ``min_failures`` failures from ``min_users`` distinct users."""
        ...

    def invalid_prefix_failures(self, since: datetime, min_failures: int) -> list[PrefixFailureStats]:
        """Prefixes with at least ``min_failures`` INVALID attempts since ``since``."""
        ...

    def counts_by_result(self, since: datetime, until: datetime, campaign_id: int | None = None
                         ) -> dict[RedeemResult, int]:
        """Attempts per result in ``[since, until)``; with ``campaign_id``, only those on that campaign's codes."""
        ...

    def hourly(self, since: datetime, until: datetime, campaign_id: int | None = None
               ) -> list[tuple[datetime, int, int]]:
        """(hour, attempts, accepted) per hour of ``attempted_at`` in ``[since, until)``; empty hours left out."""
        ...

    def roll_up(self, since: datetime, before: datetime) -> int:
        """Fold the attempts of every complete UTC hour from the hour of ``since`` to ``before`` that is not folded
        yet into per-hour counts, which ``counts_by_result`` and ``hourly`` then read instead of the rows; the
        number of hours folded now (PostgreSQL; elsewhere a no-op returning 0). ``before`` must lie far enough
        behind the clock that no attempt of those hours can still arrive (``domain.dashboard.ROLLUP_GRACE``);
        commit to keep the result."""
        ...

    def for_user(self, user_id: int, limit: int) -> list[Attempt]:
        """The user's latest attempts, newest first."""
        ...


class Purchases(Protocol):
    """The ``purchases`` table."""

    def add(self, purchase: Purchase) -> Purchase:
        """Insert; raises ``OpenPurchaseExists`` for a second open purchase of a product."""
        ...

    def get(self, purchase_id: int) -> Purchase | None: ...

    def get_open(self, user_id: int, product_code: str) -> Purchase | None: ...

    def get_by_charge_id(self, telegram_payment_charge_id: str) -> Purchase | None: ...

    def get_by_charge_ids(self, telegram_payment_charge_ids: Sequence[str]) -> dict[str, Purchase]:
        """The purchases carrying any of these charge ids, by charge id (the payments jobs' bulk lookup)."""
        ...

    def user_has_paid(self, user_id: int) -> bool:
        """The user has a PAID or REFUNDED purchase."""
        ...

    def set_status(
        self,
        purchase_id: int,
        expected: Sequence[PurchaseStatus],
        status: PurchaseStatus,
        now: datetime,
        telegram_payment_charge_id: str | None = None,
    ) -> Purchase | None:
        """Conditional status change; sets ``paid_at``/``refunded_at`` and the charge id.
        Raises ``DuplicateChargeId`` when the charge id belongs to another purchase."""
        ...

    def mark_review(self, purchase_id: int, reason: str, now: datetime) -> Purchase | None: ...

    def stale_open(self, cutoff: datetime, limit: int) -> list[Purchase]:
        """Open purchases created before ``cutoff`` (locked, skip-locked)."""
        ...

    def refunded_needing_rollback(self, limit: int) -> list[Purchase]:
        """REFUNDED purchases whose promo redemption is not REVOKED and was applied by this very purchase
        (``applied_purchase_id``; a payment flagged for review is not) (locked, skip-locked)."""
        ...

    def in_window(self, since: datetime, until: datetime) -> list[Purchase]: ...

    def count_in_review(self) -> int: ...

    def settled_between(self, since: datetime, until: datetime) -> list[Purchase]:
        """Purchases whose ``paid_at`` or ``refunded_at`` lies in ``[since, until)``, by id (reconciliation)."""
        ...

    def flagged_for_review(self, since: datetime, limit: int) -> list[Purchase]:
        """Purchases with a ``review_reason`` changed at or after ``since``, by id."""
        ...

    def totals(self, since: datetime, until: datetime) -> PaymentTotals:
        """Paid (by ``paid_at``), refunded (by ``refunded_at``) and FAILED (by ``updated_at``) counts and
        Stars (``final_stars_amount``) in ``[since, until)``."""
        ...

    def for_user(self, user_id: int, limit: int) -> list[Purchase]:
        """The user's purchases, newest first."""
        ...

    def hourly_revenue(self, since: datetime, until: datetime, campaign_id: int | None = None) -> list[HourCount]:
        """``final_stars_amount`` of purchases paid in ``[since, until)`` per hour of ``paid_at``; with
        ``campaign_id``, only purchases made with a redemption of that campaign."""
        ...

    def paid_in_campaign(self, campaign_id: int, since: datetime) -> tuple[int, int, int]:
        """(count, final Stars, discount Stars) of purchases paid since ``since`` with a redemption of the campaign."""
        ...


class PaymentReviews(Protocol):
    """The ``payment_reviews`` table: differences and unsafe recoveries waiting for a human."""

    def add(self, review: PaymentReview) -> PaymentReview | None:
        """Insert unless a review with the same ``dedup_key`` exists (open or resolved): then None."""
        ...

    def add_many(self, reviews: Sequence[PaymentReview]) -> list[PaymentReview]:
        """Insert each unless its ``dedup_key`` exists (open or resolved); the rows inserted, with their ids."""
        ...

    def existing_keys(self, dedup_keys: Sequence[str]) -> set[str]:
        """Which of these keys have a review (open or resolved): what a run need not insert again."""
        ...

    def get(self, review_id: int) -> PaymentReview | None: ...

    def list(self, open_only: bool, limit: int, after_id: int | None = None) -> list[PaymentReview]:
        """Reviews by id, starting after ``after_id``; only unresolved ones when ``open_only``."""
        ...

    def count_open(self) -> int: ...

    def resolve(self, review_id: int, note: str | None, now: datetime) -> PaymentReview | None:
        """Mark an open review resolved; None when it is missing or already resolved."""
        ...


class StarMovements(Protocol):
    """The ``star_movements`` table: Star transactions that are no purchase payment nor its refund (withdrawals,
    ads, paid broadcasts, gifts, affiliate commissions, ...), one row per transaction id and direction."""

    def add_many(self, movements: Sequence[StarMovement]) -> int:
        """Insert those not recorded yet (the same transaction seen again is the same row); how many were new."""
        ...

    def totals(self, since: datetime, end: datetime) -> list[MovementTotal]:
        """Per kind and direction, sorted by both: the count and exact Stars of the movements with
        ``since <= occurred_at < end``."""
        ...


class ProcessedUpdates(Protocol):
    """The ``processed_updates`` table: Telegram ``update_id``s already taken in (webhook dedup)."""

    def add(self, update_id: int, now: datetime) -> bool:
        """Record ``update_id``; False when it was recorded before (a duplicate delivery)."""
        ...

    def seen(self, update_id: int) -> bool:
        """``update_id`` is recorded (read only)."""
        ...

    def delete_before(self, cutoff: datetime, limit: int) -> int:
        """Forget ids recorded before ``cutoff`` (housekeeping); returns how many were removed."""
        ...


class AuditLog(Protocol):
    """The ``audit_log`` table: append only. An entry is written in the transaction of the change it records."""

    def add(self, entry: AuditEntry) -> AuditEntry: ...

    def search(self, flt: AuditFilter, limit: int, before_id: int | None) -> list[AuditEntry]:
        """Entries matching ``flt``, newest first, starting below ``before_id``."""
        ...


class UnitOfWork(Protocol):
    """One transaction. ``__exit__`` rolls back whatever was not committed."""

    campaigns: Campaigns
    promo_codes: PromoCodes
    audit: AuditLog
    redemptions: Redemptions
    attempts: Attempts
    purchases: Purchases
    entitlements: Entitlements
    ledger: EntitlementLedger
    processed_updates: ProcessedUpdates
    payment_reviews: PaymentReviews
    star_movements: StarMovements
    operators: Operators
    sign_in_failures: SignInFailures
    telegram_outbox: TelegramOutbox

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
