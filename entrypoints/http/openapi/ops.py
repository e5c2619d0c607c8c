"""OpenAPI: the audit log and the support view of one user."""

from __future__ import annotations

from typing import Any

from domain.audit import ACTIONS, TARGET_TYPES
from domain.model import ATTEMPT_RESULTS, LedgerSource, PromoType, RedemptionStatus
from entrypoints.http.inputs import AuditQuery
from entrypoints.http.openapi._common import (
    COUNT,
    DATE_TIME,
    HASH,
    ID,
    as_json,
    enum_of,
    nullable,
    obj,
    op,
    page_of,
    path_id,
    ref,
)

SCHEMAS: dict[str, Any] = {
    "AuditEntry": obj({
        "id": ID,
        "at": DATE_TIME,
        "actor": {"type": "string", "description": "operator name, api or X-Actor, cli:<login>, job:<name>"},
        "action": enum_of(ACTIONS),
        "target_type": enum_of(TARGET_TYPES),
        "target_id": {"type": "string"},
        "details": {"type": "object", "description": "what changed (never a plaintext code)"},
    }),
    "AuditPage": page_of("AuditEntry"),
    "User": obj({
        "user_id": ID,
        "redemptions": {"type": "array", "items": obj({
            "id": ID,
            "promo_code_id": ID,
            "code_prefix": nullable({"type": "string"}),
            "campaign_id": ID,
            "campaign_name": nullable({"type": "string"}),
            "promo_type": nullable(enum_of(PromoType)),
            "status": enum_of(RedemptionStatus),
            "discount_percent": nullable({"type": "integer"}),
            "discount_stars": nullable({"type": "integer"}),
            "grant_plan_code": nullable({"type": "string"}),
            "grant_days": nullable({"type": "integer"}),
            "reserved_until": nullable(DATE_TIME),
            "purchase_id": nullable(ID),
            "applied_purchase_id": nullable(ID),
            "created_at": DATE_TIME,
            "updated_at": DATE_TIME,
            "revoked_at": nullable(DATE_TIME),
        })},
        "purchases": {"type": "array", "items": ref("Purchase")},
        "entitlements": {"type": "array", "items": obj({
            "plan_code": {"type": "string"}, "expires_at": DATE_TIME, "active": {"type": "boolean"},
            "updated_at": DATE_TIME})},
        "entitlement_ledger": {"type": "array", "items": obj({
            "id": nullable(ID),
            "plan_code": {"type": "string"},
            "days": {"type": "integer"},
            "source": enum_of(LedgerSource),
            "promo_redemption_id": nullable(ID),
            "purchase_id": nullable(ID),
            "expires_at_after": DATE_TIME,
            "created_at": DATE_TIME,
        })},
        "attempts": {"type": "array", "items": obj({
            "id": nullable(ID),
            "attempted_at": DATE_TIME,
            "result": enum_of(ATTEMPT_RESULTS),
            "code_prefix": nullable({"type": "string"}),
            "normalized_code_hash": nullable(HASH),
            "campaign_id": nullable(ID),
        })},
        "throttling": obj({
            "blocked": {"type": "boolean"},
            "blocked_until": nullable(DATE_TIME),
            "failures_in_window": COUNT,
            "fail_limit": {"type": "integer", "minimum": 1},
            "window_hours": {"type": "integer", "minimum": 1},
        }),
    }, "Newest first, at most 50 of each list; a user never seen has empty lists"),
}

PATHS: dict[str, Any] = {
    "/internal/promo/audit": {"get": op(
        "The audit log, newest first", {"200": as_json(ref("AuditPage"), "One page")},
        query=AuditQuery, op_id="listAudit", tags=["audit"],
    )},
    "/internal/users/{user_id}": {"get": op(
        "What support needs about one Telegram user",
        {"200": as_json(ref("User"), "Redemptions, purchases, entitlements, recent attempts, throttling"),
         "400": as_json(ref("Error"), "VALIDATION_ERROR: user_id is 0 or beyond 64 bits"),
         "404": as_json(ref("Error"), "NOT_FOUND: user_id is not a decimal number")},
        params=[path_id("user_id")], op_id="getUser", tags=["users"],
    )},
}
