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
    STARS_DISCOUNT = "STARS_DISCOUNT"

    @property
    def is_discount(self) -> bool:
        """Settled through a purchase (a reservation), not granted at once."""
        return self is not PromoType.PREMIUM_GRANT


class TargetScope(enum.StrEnum):
    ALL = "ALL"
    FIRST_PURCHASE_ONLY = "FIRST_PURCHASE_ONLY"


class CampaignStatus(enum.StrEnum):
    """The states of a campaign, and of a code: both levels move through the same four (SPEC 3)."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    EXPIRED = "EXPIRED"
    DEPLETED = "DEPLETED"


# A code's status takes the same values as its campaign's.
CodeStatus = CampaignStatus


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
    """One row of ``promo_campaigns``: the terms of a promotion, its budget and per-user limit, shared by its codes."""

    id: int | None
    name: str
    promo_type: PromoType
    grant_plan_code: str | None
    grant_days: int | None
    discount_percent: int | None
    discount_stars: int | None
    applicable_products: tuple[str, ...]
    target_scope: TargetScope
    status: CampaignStatus
    paused_reason: PausedReason | None
    valid_from: datetime
    valid_until: datetime | None
    # The campaign's budget: redemptions across all its codes (None: unlimited).
    max_total_uses: int | None
    # Live (not EXPIRED) redemptions one user may hold across all codes of the campaign.
    per_user_limit: int
    used_total: int
    created_at: datetime
    updated_at: datetime

    def applies_to(self, product_code: str) -> bool:
        return not self.applicable_products or product_code in self.applicable_products

    def capacity_used_up(self) -> bool:
        """The budget is used up."""
        return self.max_total_uses is not None and self.used_total >= self.max_total_uses

    def is_past_validity(self, now: datetime) -> bool:
        return self.valid_until is not None and now >= self.valid_until

    def terms(self) -> CampaignTerms:
        return CampaignTerms(
            promo_type=self.promo_type, grant_plan_code=self.grant_plan_code, grant_days=self.grant_days,
            discount_percent=self.discount_percent, discount_stars=self.discount_stars,
            applicable_products=self.applicable_products, target_scope=self.target_scope,
        )


@attrs.frozen
class CampaignTerms:
    """What a campaign gives (a price or a grant) and to whom: fixed once the campaign exists."""

    promo_type: PromoType
    grant_plan_code: str | None = None
    grant_days: int | None = None
    discount_percent: int | None = None
    discount_stars: int | None = None
    applicable_products: tuple[str, ...] = ()
    target_scope: TargetScope = TargetScope.ALL


@attrs.frozen
class PromoCode:
    """One row of ``promo_codes``: one redeemable code of a campaign, with its own status and cap.

    ``campaign_name``, ``promo_type``, ``target_scope``, ``valid_from`` and ``valid_until`` are copies of the
    campaign's (kept equal by every change of the campaign), so the runbook queries on ``promo_codes`` alone
    show what the system acts on."""

    id: int | None
    campaign_id: int
    code_hash: str
    code_prefix: str
    status: CampaignStatus
    paused_reason: PausedReason | None
    # This code's own cap (1 for a single-use code); None: only the campaign's budget applies.
    max_total_uses: int | None
    used_total: int
    created_at: datetime
    updated_at: datetime
    campaign_name: str
    promo_type: PromoType
    target_scope: TargetScope
    valid_from: datetime
    valid_until: datetime | None

    def capacity_used_up(self) -> bool:
        """The code reached its own cap."""
        return self.max_total_uses is not None and self.used_total >= self.max_total_uses

    def is_past_validity(self, now: datetime) -> bool:
        return self.valid_until is not None and now >= self.valid_until


@attrs.frozen
class Redemption:
    """One row of ``promo_redemptions``."""

    id: int | None
    promo_code_id: int
    campaign_id: int
    user_id: int
    idempotency_key: str
    status: RedemptionStatus
    discount_percent: int | None
    discount_stars: int | None
    reserved_until: datetime | None
    purchase_id: int | None
    applied_purchase_id: int | None
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None = None
    # Which of the user's ``per_user_limit`` places in the campaign this redemption holds (1-based). The
    # database keeps one live redemption per (campaign, user, slot): that is how the limit is enforced.
    user_slot: int = 1

    @property
    def is_reservation(self) -> bool:
        return self.discount_percent is not None or self.discount_stars is not None


@attrs.frozen
class Attempt:
    """One row of ``promo_attempts``: every redeem call except replays and key reuse."""

    user_id: int
    normalized_code_hash: str | None
    code_prefix: str | None
    result: RedeemResult
    attempted_at: datetime
    id: int | None = None
    campaign_id: int | None = None


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
    """A premium plan sold for Telegram Stars. ``title`` (1..32 characters) and ``description`` (1..255) are what
    Telegram's ``sendInvoice`` accepts; the bot's invoice shows the description above its price line (the line alone
    without one)."""

    code: str
    title: str
    stars: int
    plan_code: str
    days: int
    description: str | None = None


@attrs.frozen
class CampaignFilter:
    status: CampaignStatus | None = None
    promo_type: PromoType | None = None
    name_contains: str | None = None


class Unchanged(enum.Enum):
    """The value of a field a change leaves as it is (``None`` may be a real new value)."""

    UNCHANGED = "UNCHANGED"


UNCHANGED = Unchanged.UNCHANGED


@attrs.frozen
class CampaignChanges:
    """The changeable fields of a campaign (SPEC 3); each ``UNCHANGED`` unless given."""

    name: str | Unchanged = UNCHANGED
    valid_until: datetime | Unchanged | None = UNCHANGED
    max_total_uses: int | Unchanged | None = UNCHANGED
    per_user_limit: int | Unchanged = UNCHANGED

    def changed(self) -> dict[str, Any]:
        """The given fields by name."""
        return {k: v for k, v in attrs.asdict(self, recurse=False).items() if v is not UNCHANGED}


@attrs.frozen
class CodeFilter:
    campaign_id: int | None = None
    status: CampaignStatus | None = None
    code_prefix: str | None = None


@attrs.frozen(eq=False)
class AuditEntry:
    """One row of ``audit_log``: a change and who made it. Never updated or deleted; never a plaintext code.

    ``actor``: the console operator's name, ``api`` (or the request's ``X-Actor``), ``cli:<login>``,
    ``job:<name>``. ``target_type``: ``campaign``, ``promo_code``, ``purchase``, ``payment_review``."""

    id: int | None
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    details: dict[str, Any]


@attrs.frozen
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None


@attrs.frozen
class HourCount:
    """One hour of a time series (``hour`` is the start of the hour, UTC) and a count or sum in it."""

    hour: datetime
    value: int


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
    """One Telegram Star transaction as ``getStarTransactions`` reports it (Bot API ``StarTransaction``).

    ``partner`` is the ``type`` of its ``source`` (incoming) or ``receiver`` (outgoing) ``TransactionPartner``:
    ``user``, ``chat``, ``affiliate_program``, ``fragment``, ``telegram_ads``, ``telegram_api``, ``other`` or a
    type Telegram adds later (``""`` when the transaction names none). ``transaction_type`` is the user partner's
    (``invoice_payment``, ``paid_media_payment``, ``gift_purchase``, ...), None for the others. What each one is
    for the payments jobs is decided by ``domain.star_transactions.classify``. The defaults describe an invoice
    payment by a user, the only transaction the jobs compare with purchases.
    """

    id: str
    amount: int
    date: datetime
    user_id: int | None
    # True for Stars leaving the bot (a refund, a withdrawal, an ads top-up, ...); False for incoming ones.
    outgoing: bool
    payload: str | None = None
    partner: str = "user"
    transaction_type: str | None = "invoice_payment"
    nanostar_amount: int = 0  # 1/1,000,000,000 shares of a Star on top of ``amount`` (0..999,999,999)
    subscription_period: int | None = None  # seconds; only a subscription's invoice payment carries it
    gift: bool = False  # a gift went with it (a gift sent by the bot to a user or a chat)


@attrs.frozen
class StarMovement:
    """A Star transaction that is neither a purchase payment nor its refund (SPEC 6 ``other_movements``): a
    withdrawal, an ads top-up, a paid broadcast, a gift, an affiliate commission, ... Recorded by the
    reconciliation job (one row per Telegram transaction and direction) for the dashboard; never a difference."""

    transaction_id: str
    outgoing: bool
    kind: str
    partner: str
    transaction_type: str | None
    stars: int
    nanostars: int
    occurred_at: datetime


@attrs.frozen
class MovementTotal:
    """Star movements of one kind and direction inside a window: how many and their exact sum
    (``stars`` whole Stars plus ``nanostars`` 0..999,999,999 billionths)."""

    kind: str
    outgoing: bool
    count: int
    stars: int
    nanostars: int


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
    the first code whose hash exists and its campaign, the user's live (not EXPIRED) redemption of that
    code, and the ``user_slot`` of every live redemption the user holds in that campaign."""

    by_key: Redemption | None
    failures: int
    latest_failure: datetime | None
    code: PromoCode | None
    campaign: Campaign | None
    live: Redemption | None
    held_slots: tuple[int, ...] = ()
