"""What the internal API answers: every JSON object it sends, declared once as an attrs class whose fields carry
their schema (``shapes.limits``). The handlers write them with ``shapes.dump`` (each field by name from the domain
object or mapping it comes from) and the OpenAPI document's component schemas are generated from them
(``shapes.components``), so the document lists exactly the members an answer has.

The classes are declarations only: nothing constructs them. A class's name is its schema's name in the document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from domain.audit import ACTIONS, TARGET_TYPES
from domain.dashboard import MAX_WINDOW_HOURS, MIN_WINDOW_HOURS, NON_ACCEPTED_RESULTS
from domain.model import (
    ATTEMPT_RESULTS,
    CampaignStatus,
    LedgerSource,
    PausedReason,
    PromoType,
    PurchaseStatus,
    RedeemResult,
    RedemptionStatus,
    TargetScope,
)
from entrypoints.http.shapes import limits

ID = limits(minimum=1)
COUNT = limits(minimum=0)
RATE = limits(minimum=0, maximum=1)
HASH = limits(pattern="^[0-9a-f]{64}$")
NEXT_CURSOR = limits(minimum=1, description="pass as cursor for the next page; null: last page")


def counts(keys: Any, description: str | None = None) -> dict[str, Any]:
    """A ``dict[str, int]`` field with every key of ``keys`` present, zeros included."""
    return limits(keys=list(keys), values={"minimum": 0}, **({"description": description} if description else {}))


def counted(description: str) -> dict[str, Any]:
    return limits(minimum=0, description=description)


# --- errors ------------------------------------------------------------------------------------------------------


@attrs.frozen
class ErrorDetail:
    code: str
    message: str
    details: Any = attrs.field(metadata=limits(
        description="VALIDATION_ERROR: a list of {field, message}; otherwise an object or null"))


@attrs.frozen
class Error:
    error: ErrorDetail


# --- redeem, refund rollback, purchases --------------------------------------------------------------------------


@attrs.frozen
class Redemption:
    id: int = attrs.field(metadata=ID)
    promo_code_id: int = attrs.field(metadata=ID)
    campaign_id: int = attrs.field(metadata=ID)
    user_id: int = attrs.field(metadata=ID)
    promo_type: PromoType
    status: RedemptionStatus
    discount_percent: int | None = attrs.field(metadata=limits(minimum=1, maximum=99))
    discount_stars: int | None = attrs.field(metadata=limits(minimum=1))
    reserved_until: datetime | None
    grant_plan_code: str | None
    grant_days: int | None
    created_at: datetime


@attrs.frozen
class RedeemAccepted:
    result: str = attrs.field(metadata=limits(const=RedeemResult.ACCEPTED.value))
    replayed: bool
    redemption: Redemption


@attrs.frozen
class Rejection:
    code: str
    message: str
    details: dict[str, Any] | None


@attrs.frozen
class RedeemRejected:
    result: RedeemResult = attrs.field(metadata=limits(enum=[r.value for r in NON_ACCEPTED_RESULTS]))
    error: Rejection


@attrs.frozen
class RefundRollbackResult:
    purchase_id: int = attrs.field(metadata=ID)
    redemption_id: int = attrs.field(metadata=ID)
    status: str = attrs.field(metadata=limits(const=RedemptionStatus.REVOKED.value))
    replayed: bool = attrs.field(metadata=limits(description="true when it was already REVOKED"))


@attrs.frozen
class Purchase:
    """The purchases columns of SPEC 5 (and review_reason, set by payment recovery)."""

    id: int = attrs.field(metadata=ID)
    user_id: int = attrs.field(metadata=ID)
    product_code: str
    base_stars_amount: int
    discount_stars_amount: int
    final_stars_amount: int
    promo_redemption_id: int | None
    status: PurchaseStatus
    telegram_payment_charge_id: str | None
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    refunded_at: datetime | None
    review_reason: str | None = attrs.field(metadata=limits(description="set when payment recovery needs a human"))


@attrs.frozen
class Health:
    status: str
    database: str = attrs.field(default="", metadata=limits(description="readyz: ok"))
    redis: str = attrs.field(default="", metadata=limits(
        description="readyz: ok, down (status degraded, still 200: redeem works without Redis) or not_configured"))


# --- dashboard and campaign stats --------------------------------------------------------------------------------


@attrs.frozen
class Window:
    from_: datetime = attrs.field(metadata=limits(json_name="from"))
    to: datetime
    hours: int = attrs.field(metadata=limits(minimum=MIN_WINDOW_HOURS, maximum=MAX_WINDOW_HOURS))


@attrs.frozen
class SeriesHour:
    hour: datetime = attrs.field(metadata=limits(description="start of the hour (UTC)"))
    attempts: int = attrs.field(metadata=COUNT)
    accepted: int = attrs.field(metadata=COUNT)
    applied: int = attrs.field(metadata=COUNT)
    stars_revenue: int = attrs.field(metadata=counted("final Stars of purchases paid in the hour"))


SERIES = limits(description="one entry per hour the window touches, oldest first, zeros included")


@attrs.frozen
class Conversion:
    attempts_total: int = attrs.field(metadata=COUNT)
    attempts_accepted: int = attrs.field(metadata=COUNT)
    acceptance_rate: float = attrs.field(metadata=RATE)
    reservations_total: int = attrs.field(metadata=COUNT)
    reservations_applied: int = attrs.field(metadata=COUNT)
    reservation_apply_rate: float = attrs.field(metadata=RATE)


@attrs.frozen
class Failures:
    by_result: dict[str, int] = attrs.field(metadata=counts(NON_ACCEPTED_RESULTS))
    failure_rate: float = attrs.field(metadata=RATE)


@attrs.frozen
class AbusiveHash:
    normalized_code_hash: str = attrs.field(metadata=HASH)
    failures: int = attrs.field(metadata=COUNT)
    distinct_users: int = attrs.field(metadata=COUNT)
    last_seen: datetime


@attrs.frozen
class Guard:
    candidate_abusive_hashes: list[AbusiveHash]
    paused_campaigns_total: int = attrs.field(metadata=counted("PAUSED campaigns"))
    paused_codes_total: int = attrs.field(metadata=counted("codes PAUSED on their own"))
    paused_campaigns_recent: int = attrs.field(metadata=counted("campaigns and codes paused inside the window"))


@attrs.frozen
class MovementKind:
    kind: str = attrs.field(metadata=limits(
        description="withdrawal, withdrawal_returned, telegram_ads, paid_broadcast, affiliate_commission, gift, "
                    "premium_gift, paid_media, subscription, business_account_transfer, chat, other, or "
                    "user_<type> / partner_<type> for what Telegram adds later"))
    direction: str = attrs.field(metadata=limits(enum=["incoming", "outgoing"]))
    count: int = attrs.field(metadata=COUNT)
    stars: int = attrs.field(metadata=counted("whole Stars"))
    nanostar_amount: int = attrs.field(metadata=limits(minimum=0, maximum=999_999_999,
                                                       description="billionths of a Star on top of stars"))


@attrs.frozen
class OtherMovements:
    """Star transactions dated in the window that are no purchase payment nor its refund, per kind and direction,
    as the reconciliation job recorded them; never compared with purchases, never alerted."""

    count: int = attrs.field(metadata=counted("other movements in the window, all kinds"))
    kinds: list[MovementKind]


@attrs.frozen
class Payments:
    """Purchases paid (by paid_at), refunded (by refunded_at) and FAILED (by their last change) inside the window,
    their Stars, what waits for a human now, and the other Star movements."""

    paid_count: int = attrs.field(metadata=COUNT)
    paid_stars: int = attrs.field(metadata=COUNT)
    refunded_count: int = attrs.field(metadata=COUNT)
    refunded_stars: int = attrs.field(metadata=COUNT)
    failed_count: int = attrs.field(metadata=COUNT)
    failed_stars: int = attrs.field(metadata=COUNT)
    open_review_items: int = attrs.field(metadata=counted("unresolved payment review items (all time)"))
    purchases_in_review: int = attrs.field(metadata=counted("purchases flagged with a review_reason"))
    other_movements: OtherMovements


@attrs.frozen
class Dashboard:
    window: Window
    conversion: Conversion
    failures: Failures
    guard: Guard
    payments: Payments
    series: list[SeriesHour] = attrs.field(metadata=SERIES)


@attrs.frozen
class CampaignStats:
    campaign_id: int = attrs.field(metadata=ID)
    window: Window
    attempts_by_result: dict[str, int] = attrs.field(metadata=counts(
        ATTEMPT_RESULTS, "attempts on the campaign's codes in the window"))
    redemptions_by_status: dict[str, int] = attrs.field(metadata=counts(
        RedemptionStatus, "redemptions created in the window, by status now"))
    purchases_paid: int = attrs.field(metadata=COUNT)
    stars_revenue: int = attrs.field(metadata=counted("final Stars of its paid purchases"))
    discount_stars_given: int = attrs.field(metadata=COUNT)
    grant_days_given: int = attrs.field(metadata=COUNT)
    series: list[SeriesHour] = attrs.field(metadata=SERIES)


# --- campaigns and codes -----------------------------------------------------------------------------------------


@attrs.frozen
class Code:
    """The promo_codes columns (code_hash included; the plaintext is never stored)."""

    id: int = attrs.field(metadata=ID)
    campaign_id: int = attrs.field(metadata=ID)
    code_hash: str = attrs.field(metadata=HASH)
    code_prefix: str = attrs.field(metadata=limits(description="the first 4 characters of the normalized code"))
    status: CampaignStatus
    paused_reason: PausedReason | None
    max_total_uses: int | None = attrs.field(metadata=limits(description="the code's own cap; null = none"))
    used_total: int = attrs.field(metadata=COUNT)
    created_at: datetime
    updated_at: datetime
    campaign_name: str
    promo_type: PromoType
    target_scope: TargetScope
    valid_from: datetime
    valid_until: datetime | None


@attrs.frozen
class Campaign:
    """The promo_campaigns columns plus codes_total and codes_by_status."""

    id: int = attrs.field(metadata=ID)
    name: str
    promo_type: PromoType
    grant_plan_code: str | None
    grant_days: int | None
    discount_percent: int | None
    discount_stars: int | None
    applicable_products: list[str] = attrs.field(metadata=limits(description="empty = all"))
    target_scope: TargetScope
    status: CampaignStatus
    paused_reason: PausedReason | None
    valid_from: datetime
    valid_until: datetime | None
    max_total_uses: int | None = attrs.field(metadata=limits(description="the budget; null = unlimited"))
    per_user_limit: int = attrs.field(metadata=limits(minimum=1))
    used_total: int = attrs.field(metadata=COUNT)
    created_at: datetime
    updated_at: datetime
    codes_total: int = attrs.field(metadata=COUNT)
    codes_by_status: dict[str, int] = attrs.field(metadata=counts(
        CampaignStatus, "the campaign's codes by their own status"))


@attrs.frozen
class CampaignCreated(Campaign):
    """The new campaign, and in code the row of the chosen code created with it (null: none)."""

    code: Code | None


@attrs.frozen
class CampaignPage:
    items: list[Campaign]
    next_cursor: int | None = attrs.field(metadata=NEXT_CURSOR)


@attrs.frozen
class CodePage:
    items: list[Code]
    next_cursor: int | None = attrs.field(metadata=NEXT_CURSOR)


@attrs.frozen
class CodeLookup:
    code: Code
    campaign: Campaign


# --- audit and users ---------------------------------------------------------------------------------------------


@attrs.frozen
class AuditEntry:
    id: int = attrs.field(metadata=ID)
    at: datetime
    actor: str = attrs.field(metadata=limits(description="operator name, api or X-Actor, cli:<login>, job:<name>"))
    action: str = attrs.field(metadata=limits(enum=list(ACTIONS)))
    target_type: str = attrs.field(metadata=limits(enum=list(TARGET_TYPES)))
    target_id: str
    details: dict[str, Any] = attrs.field(metadata=limits(description="what changed (never a plaintext code)"))


@attrs.frozen
class AuditPage:
    items: list[AuditEntry]
    next_cursor: int | None = attrs.field(metadata=NEXT_CURSOR)


@attrs.frozen
class UserRedemption:
    id: int = attrs.field(metadata=ID)
    promo_code_id: int = attrs.field(metadata=ID)
    code_prefix: str | None
    campaign_id: int = attrs.field(metadata=ID)
    campaign_name: str | None
    promo_type: PromoType | None
    status: RedemptionStatus
    discount_percent: int | None
    discount_stars: int | None
    grant_plan_code: str | None
    grant_days: int | None
    reserved_until: datetime | None
    purchase_id: int | None = attrs.field(metadata=ID)
    applied_purchase_id: int | None = attrs.field(metadata=ID)
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None


@attrs.frozen
class UserEntitlement:
    plan_code: str
    expires_at: datetime
    active: bool
    updated_at: datetime


@attrs.frozen
class UserLedgerEntry:
    id: int | None = attrs.field(metadata=ID)
    plan_code: str
    days: int
    source: LedgerSource
    promo_redemption_id: int | None = attrs.field(metadata=ID)
    purchase_id: int | None = attrs.field(metadata=ID)
    expires_at_after: datetime
    created_at: datetime


@attrs.frozen
class UserAttempt:
    id: int | None = attrs.field(metadata=ID)
    attempted_at: datetime
    result: RedeemResult = attrs.field(metadata=limits(enum=[r.value for r in ATTEMPT_RESULTS]))
    code_prefix: str | None
    normalized_code_hash: str | None = attrs.field(metadata=HASH)
    campaign_id: int | None = attrs.field(metadata=ID)


@attrs.frozen
class Throttling:
    blocked: bool
    blocked_until: datetime | None
    failures_in_window: int = attrs.field(metadata=COUNT)
    fail_limit: int = attrs.field(metadata=limits(minimum=1))
    window_hours: int = attrs.field(metadata=limits(minimum=1))


@attrs.frozen
class User:
    """Newest first, at most 50 of each list; a user never seen has empty lists."""

    user_id: int = attrs.field(metadata=ID)
    redemptions: list[UserRedemption]
    purchases: list[Purchase]
    entitlements: list[UserEntitlement]
    entitlement_ledger: list[UserLedgerEntry]
    attempts: list[UserAttempt]
    throttling: Throttling


# Every answer's schema, for the document's components (nested shapes are found through these).
ANSWERS: tuple[type, ...] = (Error, RedeemAccepted, RedeemRejected, RefundRollbackResult, Purchase, Health, Dashboard,
                             CampaignStats, Code, Campaign, CampaignCreated, CampaignPage, CodePage, CodeLookup,
                             AuditEntry, AuditPage, User)
