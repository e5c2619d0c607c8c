"""Entities and value objects of the promo-code domain (SPEC sections 3-5).

Entities are frozen attrs classes: a change is an ``attrs.evolve`` that a repository persists,
so a half-applied change never lives in shared memory.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs


class PromoType(enum.StrEnum):
    PREMIUM_GRANT = "PREMIUM_GRANT"
    PERCENT_DISCOUNT = "PERCENT_DISCOUNT"


class TargetScope(enum.StrEnum):
    ALL = "ALL"
    FIRST_PURCHASE_ONLY = "FIRST_PURCHASE_ONLY"


class CampaignStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    EXPIRED = "EXPIRED"
    DEPLETED = "DEPLETED"


class PausedReason(enum.StrEnum):
    MANUAL = "MANUAL"
    AUTO_BRUTEFORCE = "AUTO_BRUTEFORCE"


class RedemptionStatus(enum.StrEnum):
    RESERVED = "RESERVED"
    APPLIED = "APPLIED"
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


class RedeemResult(enum.StrEnum):
    ACCEPTED = "ACCEPTED"
    INVALID = "INVALID"
    PAUSED = "PAUSED"
    EXPIRED = "EXPIRED"
    NOT_APPLICABLE = "NOT_APPLICABLE"
    DEPLETED = "DEPLETED"
    ALREADY_USED = "ALREADY_USED"
    RATE_LIMITED = "RATE_LIMITED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


# Results that count as failures for throttling and the brute-force guard.
FAILURE_RESULTS: frozenset[RedeemResult] = frozenset(
    r
    for r in RedeemResult
    if r not in (RedeemResult.ACCEPTED, RedeemResult.RATE_LIMITED, RedeemResult.IDEMPOTENCY_KEY_REUSED)
)

# Results an attempt row can carry (idempotent replays and key reuse write no attempt).
ATTEMPT_RESULTS: tuple[RedeemResult, ...] = tuple(
    r for r in RedeemResult if r is not RedeemResult.IDEMPOTENCY_KEY_REUSED
)


class PurchaseStatus(enum.StrEnum):
    CREATED = "CREATED"
    INVOICE_SENT = "INVOICE_SENT"
    PAID = "PAID"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


OPEN_PURCHASE_STATUSES: frozenset[PurchaseStatus] = frozenset(
    {PurchaseStatus.CREATED, PurchaseStatus.INVOICE_SENT}
)

LIVE_REDEMPTION_STATUSES: frozenset[RedemptionStatus] = frozenset(
    {RedemptionStatus.RESERVED, RedemptionStatus.APPLIED, RedemptionStatus.REVOKED}
)


@attrs.frozen
class Campaign:
    """One row of ``promo_codes``: one code and the rules that come with it."""

    id: int | None
    campaign_name: str
    code_hash: str
    code_prefix: str
    promo_type: PromoType
    grant_plan_code: str | None
    grant_days: int | None
    discount_percent: int | None
    applicable_products: tuple[str, ...]
    target_scope: TargetScope
    status: CampaignStatus
    paused_reason: PausedReason | None
    valid_from: datetime
    valid_until: datetime | None
    max_total_uses: int | None
    used_total: int
    created_at: datetime
    updated_at: datetime

    def applies_to(self, product_code: str) -> bool:
        return not self.applicable_products or product_code in self.applicable_products

    def capacity_used_up(self) -> bool:
        return self.max_total_uses is not None and self.used_total >= self.max_total_uses

    def is_past_validity(self, now: datetime) -> bool:
        return self.valid_until is not None and now >= self.valid_until


@attrs.frozen
class Redemption:
    """One row of ``promo_redemptions``."""

    id: int | None
    promo_code_id: int
    user_id: int
    idempotency_key: str
    status: RedemptionStatus
    discount_percent: int | None
    reserved_until: datetime | None
    purchase_id: int | None
    applied_purchase_id: int | None
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None = None


@attrs.frozen
class Attempt:
    """One row of ``promo_attempts``: every redeem call except replays and key reuse."""

    user_id: int
    normalized_code_hash: str | None
    code_prefix: str | None
    result: RedeemResult
    attempted_at: datetime
    id: int | None = None


@attrs.frozen
class Purchase:
    """One row of ``purchases``: a premium plan bought for Telegram Stars."""

    id: int | None
    user_id: int
    product_code: str
    base_stars_amount: int
    discount_stars_amount: int
    final_stars_amount: int
    promo_redemption_id: int | None
    status: PurchaseStatus
    telegram_payment_charge_id: str | None
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None = None
    refunded_at: datetime | None = None
    review_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_PURCHASE_STATUSES


@attrs.frozen
class Entitlement:
    """A user's premium entitlement: the plan and the moment it ends."""

    user_id: int
    plan_code: str
    expires_at: datetime
    updated_at: datetime


class LedgerSource(enum.StrEnum):
    PROMO_GRANT = "PROMO_GRANT"
    PURCHASE = "PURCHASE"
    REFUND_REVOKE = "REFUND_REVOKE"


@attrs.frozen
class LedgerEntry:
    """One row of ``entitlement_ledger``: an auditable change of a user's entitlement."""

    user_id: int
    plan_code: str
    days: int
    source: LedgerSource
    promo_redemption_id: int | None
    purchase_id: int | None
    expires_at_after: datetime
    created_at: datetime
    id: int | None = None


@attrs.frozen
class Product:
    """A premium plan sold for Telegram Stars."""

    code: str
    title: str
    stars: int
    plan_code: str
    days: int


@attrs.frozen
class CampaignFilter:
    status: CampaignStatus | None = None
    promo_type: PromoType | None = None
    name_contains: str | None = None


@attrs.frozen
class HashFailureStats:
    """Failed attempts for one normalized code hash inside a window."""

    normalized_code_hash: str
    failures: int
    distinct_users: int
    last_seen: datetime


@attrs.frozen
class PrefixFailureStats:
    code_prefix: str
    failures: int
    distinct_users: int
    last_seen: datetime


@attrs.frozen
class StarTransaction:
    """One Telegram Star transaction as ``getStarTransactions`` reports it."""

    id: str
    amount: int
    date: datetime
    user_id: int | None
    # True for money going back to a user (a refund); False for an incoming payment.
    outgoing: bool
    payload: str | None = None


@attrs.frozen
class PaymentTotals:
    """Purchases settled, refunded and failed inside a window, with their Stars (dashboard ``payments``).

    ``paid`` counts by ``paid_at`` (a purchase refunded later still was paid then), ``refunded`` by
    ``refunded_at``, ``failed`` by the last change of a purchase that is ``FAILED`` now.
    """

    paid_count: int = 0
    paid_stars: int = 0
    refunded_count: int = 0
    refunded_stars: int = 0
    failed_count: int = 0
    failed_stars: int = 0


@attrs.frozen(eq=False)
class PaymentReview:
    """One row of ``payment_reviews``: a payment difference or an unsafe recovery a human must look at.

    ``dedup_key`` is unique: the same difference found again by a later run is the same row, which is
    how each distinct difference raises exactly one alert. ``details`` holds the figures (JSON).
    """

    id: int | None
    dedup_key: str
    event: str
    kind: str
    purchase_id: int | None
    telegram_payment_charge_id: str | None
    details: dict[str, Any]
    created_at: datetime
    resolved_at: datetime | None = None
    resolution_note: str | None = None

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


@attrs.frozen
class RedeemSnapshot:
    """What redeem checks 1-7 read, read together (one round trip on PostgreSQL): the redemption holding
    the idempotency key, the user's failed attempts since the throttling window began (count and latest),
    the campaign of the first code hash that exists, and the user's live (not EXPIRED) redemption of it."""

    by_key: Redemption | None
    failures: int
    latest_failure: datetime | None
    campaign: Campaign | None
    live: Redemption | None
