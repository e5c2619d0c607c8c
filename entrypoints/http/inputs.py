"""What the internal API accepts: every request body and query, declared once (attrs fields with
``shapes.limits``) for both the checks and the OpenAPI document. Limits mirror the domain's constants; the domain
checks the rules that involve several fields or the store.

Plaintext codes travel in bodies only, never in a path or a query string (those reach access logs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import attrs

from domain import audit
from domain.batch import DEFAULT_CODE_LENGTH, MAX_CODE_LENGTH, MIN_CODE_LENGTH
from domain.campaigns import (
    CODE_RULE,
    MAX_CAMPAIGN_NAME,
    MAX_DISCOUNT_STARS,
    MAX_GRANT_DAYS,
    MAX_LIST_LIMIT,
    MAX_PER_USER_LIMIT,
    MAX_PLAN_CODE,
    MAX_REASON,
    MAX_USES,
    CampaignSpec,
    validate_name,
    validate_terms,
)
from domain.codes import MAX_RAW_CODE_LENGTH, parse_code
from domain.dashboard import DEFAULT_WINDOW_HOURS, MAX_WINDOW_HOURS, MIN_WINDOW_HOURS
from domain.model import CampaignStatus, PromoType, TargetScope
from entrypoints.http.convert import MAX_INT64, Problems
from entrypoints.http.shapes import limits

MAX_GENERATE_COUNT = 100_000
MAX_PRODUCTS = 100
MAX_PRODUCT_CODE = 64
MAX_PREFIX_INPUT = 64
DEFAULT_PAGE = 50
POSITIVE_ID = "must be a positive 64-bit integer"
PLAINTEXT = f"the plaintext code as typed (at most {MAX_RAW_CODE_LENGTH} characters; dashes and spaces are ignored)"


# Limits shared by several fields.
ID_LIMITS = limits(minimum=1, maximum=MAX_INT64, message=POSITIVE_ID)
BUDGET: dict[str, Any] = {"minimum": 1, "maximum": MAX_USES}
PAGE_LIMIT = limits(minimum=1, maximum=MAX_LIST_LIMIT, description="items per page")
CURSOR = limits(minimum=1, maximum=MAX_INT64, message="must be the next_cursor of an earlier page",
                description="next_cursor of the previous page")


# --- bodies ------------------------------------------------------------------------------------------------------


@attrs.frozen
class RedeemRequest:
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"user_id": 42, "code": "SPRING-2026", "idempotency_key": "tg:42:1"}]

    user_id: int = attrs.field(metadata=limits(minimum=1, maximum=MAX_INT64, message=POSITIVE_ID,
                                               description="Telegram user id"))
    code: str = attrs.field(metadata=limits(
        description="the plaintext code as the user typed it (longer than 256 characters: INVALID)"))
    idempotency_key: str = attrs.field(metadata=limits(pattern=r"^[A-Za-z0-9_:.\-]{1,128}$",
                                                       message="must be 1..128 characters of [A-Za-z0-9_:.-]"))


@attrs.frozen
class CampaignCreateRequest:
    """A new campaign: its name, terms, validity, budget and per-user limit, and optionally one chosen code."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"name": "spring sale", "promo_type": "PERCENT_DISCOUNT", "discount_percent": 20,
         "applicable_products": ["PREMIUM_30D"], "valid_until": "2030-01-01T00:00:00Z", "max_total_uses": 1000,
         "code": "SPRING-2026"},
        {"name": "giveaway", "promo_type": "PREMIUM_GRANT", "grant_plan_code": "PREMIUM", "grant_days": 30,
         "max_total_uses": 10000, "per_user_limit": 1},
    ]

    name: str = attrs.field(metadata=limits(minLength=1, maxLength=MAX_CAMPAIGN_NAME,
                                            description=f"unique, 1..{MAX_CAMPAIGN_NAME} printable characters"))
    promo_type: PromoType
    grant_plan_code: str | None = attrs.field(default=None, metadata=limits(
        minLength=1, maxLength=MAX_PLAN_CODE, description="PREMIUM_GRANT only"))
    grant_days: int | None = attrs.field(default=None, metadata=limits(
        minimum=1, maximum=MAX_GRANT_DAYS, description="PREMIUM_GRANT only"))
    discount_percent: int | None = attrs.field(default=None, metadata=limits(
        minimum=1, maximum=99, description="PERCENT_DISCOUNT only"))
    discount_stars: int | None = attrs.field(default=None, metadata=limits(
        minimum=1, maximum=MAX_DISCOUNT_STARS, description="Stars off the base price; STARS_DISCOUNT only"))
    applicable_products: list[str] = attrs.field(factory=list, metadata=limits(
        maxItems=MAX_PRODUCTS, uniqueItems=True, items={"minLength": 1, "maxLength": MAX_PRODUCT_CODE},
        description="product codes; empty = all"))
    target_scope: TargetScope = TargetScope.ALL
    valid_from: datetime | None = attrs.field(default=None, metadata=limits(description="default: now"))
    valid_until: datetime | None = attrs.field(default=None, metadata=limits(description="null: no end"))
    max_total_uses: int | None = attrs.field(default=None, metadata=limits(
        **BUDGET, description="the campaign's budget: redemptions across all its codes; null = unlimited"))
    per_user_limit: int = attrs.field(default=1, metadata=limits(
        minimum=1, maximum=MAX_PER_USER_LIMIT,
        description="live redemptions one user may hold across the campaign's codes"))
    code: str | None = attrs.field(default=None, metadata=limits(
        maxLength=MAX_RAW_CODE_LENGTH,
        description="one chosen code created with the campaign; stored only as code_hash and code_prefix"))
    code_max_total_uses: int | None = attrs.field(default=None, metadata=limits(
        **BUDGET, description="that code's own cap (1: single use); null = only the campaign's budget"))

    def spec(self) -> CampaignSpec:
        return CampaignSpec(
            name=self.name, promo_type=self.promo_type, grant_plan_code=self.grant_plan_code,
            grant_days=self.grant_days, discount_percent=self.discount_percent, discount_stars=self.discount_stars,
            applicable_products=tuple(self.applicable_products), target_scope=self.target_scope,
            valid_from=self.valid_from, valid_until=self.valid_until, max_total_uses=self.max_total_uses,
            per_user_limit=self.per_user_limit,
        )

    def rule_problems(self) -> Problems:
        """The domain's own checks that need nothing but this body (so one answer names every bad field)."""
        problems: Problems = []
        if self.code is not None and parse_code(self.code) is None:
            problems.append({"field": "code", "message": CODE_RULE})
        validate_name(self.name, problems)
        return problems + validate_terms(self.spec().terms())


@attrs.frozen
class CampaignChangeRequest:
    """Any of the changeable fields; an absent field stays as it is, ``null`` (valid_until, max_total_uses)
    is a value: no end, no budget. An empty object changes nothing."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"valid_until": "2031-01-01T00:00:00Z", "max_total_uses": 5000},
                                                {"max_total_uses": None}]

    name: str = attrs.field(metadata=limits(minLength=1, maxLength=MAX_CAMPAIGN_NAME, description="unique"))
    valid_until: datetime | None = attrs.field(metadata=limits(description="in the future; null: no end"))
    max_total_uses: int | None = attrs.field(metadata=limits(
        **BUDGET, description="not below used_total; null: unlimited"))
    per_user_limit: int = attrs.field(metadata=limits(
        minimum=1, maximum=MAX_PER_USER_LIMIT, description="lowering it revokes nothing users hold"))


@attrs.frozen
class StatusChangeRequest:
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"status": "PAUSED", "reason": "ad went out with a typo"},
                                                {"status": "ACTIVE"}]

    status: CampaignStatus = attrs.field(metadata=limits(enum=[CampaignStatus.ACTIVE.value,
                                                               CampaignStatus.PAUSED.value]))
    reason: str | None = attrs.field(default=None, metadata=limits(
        maxLength=MAX_REASON, description="free-text note for the audit log"))


@attrs.frozen
class GenerateCodesRequest:
    """``count`` new random codes of the campaign; the answer is the report CSV (the only copy of the codes)."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"count": 100, "prefix": "GIFT", "length": 12, "max_total_uses": 1}]

    count: int = attrs.field(metadata=limits(minimum=1, maximum=MAX_GENERATE_COUNT))
    prefix: str = attrs.field(default="", metadata=limits(
        maxLength=MAX_PREFIX_INPUT, description="A-Z 0-9 (dashes and spaces dropped), shorter than length"))
    length: int = attrs.field(default=DEFAULT_CODE_LENGTH, metadata=limits(
        minimum=MIN_CODE_LENGTH, maximum=MAX_CODE_LENGTH, description="characters per code, prefix included"))
    max_total_uses: int | None = attrs.field(default=None, metadata=limits(
        **BUDGET, description="each code's own cap (1: single use); null = only the campaign's budget"))


@attrs.frozen
class AddCodeRequest:
    """One chosen code into the campaign."""

    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"code": "INFLUENCER-ANNA", "max_total_uses": None}]

    code: str = attrs.field(metadata=limits(maxLength=MAX_RAW_CODE_LENGTH, description=PLAINTEXT))
    max_total_uses: int | None = attrs.field(default=None, metadata=limits(
        **BUDGET, description="the code's own cap; null = only the campaign's budget"))


@attrs.frozen
class LookupRequest:
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"code": "SPRING-2026"}]

    code: str = attrs.field(metadata=limits(maxLength=MAX_RAW_CODE_LENGTH, description=PLAINTEXT))


@attrs.frozen
class RefundRollbackRequest:
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"purchase_id": 1}]

    purchase_id: int = attrs.field(metadata=ID_LIMITS)


@attrs.frozen
class EmptyRequest:
    """An empty JSON object (an empty body is accepted too)."""


# --- queries -----------------------------------------------------------------------------------------------------


@attrs.frozen
class CampaignQuery:
    status: CampaignStatus | None = None
    promo_type: PromoType | None = None
    name: str | None = attrs.field(default=None, metadata=limits(
        maxLength=MAX_CAMPAIGN_NAME, description="substring, case-insensitive"))
    limit: int = attrs.field(default=DEFAULT_PAGE, metadata=PAGE_LIMIT)
    cursor: int | None = attrs.field(default=None, metadata=CURSOR)


@attrs.frozen
class CodeQuery:
    campaign_id: int | None = attrs.field(default=None, metadata=ID_LIMITS)
    status: CampaignStatus | None = None
    code_prefix: str | None = attrs.field(default=None, metadata=limits(
        pattern="^[A-Za-z0-9]{1,4}$", message="1..4 characters A-Z 0-9",
        description="codes whose code_prefix starts with this (case-insensitive)"))
    limit: int = attrs.field(default=DEFAULT_PAGE, metadata=PAGE_LIMIT)
    cursor: int | None = attrs.field(default=None, metadata=CURSOR)


@attrs.frozen
class AuditQuery:
    actor: str | None = attrs.field(default=None, metadata=limits(maxLength=audit.MAX_ACTOR))
    action: str | None = attrs.field(default=None, metadata=limits(enum=list(audit.ACTIONS)))
    target_type: str | None = attrs.field(default=None, metadata=limits(enum=list(audit.TARGET_TYPES)))
    target_id: str | None = attrs.field(default=None, metadata=limits(maxLength=64))
    limit: int = attrs.field(default=DEFAULT_PAGE, metadata=PAGE_LIMIT)
    cursor: int | None = attrs.field(default=None, metadata=CURSOR)


@attrs.frozen
class WindowQuery:
    window_hours: int = attrs.field(default=DEFAULT_WINDOW_HOURS, metadata=limits(
        minimum=MIN_WINDOW_HOURS, maximum=MAX_WINDOW_HOURS, description="the trailing window, in hours"))
