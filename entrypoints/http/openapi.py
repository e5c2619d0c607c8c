"""The OpenAPI 3.1 document of the internal API, written as data, and its route.

It is the contract schemathesis fuzzes (tests/integration/test_schemathesis.py): every request schema
rejects unknown fields exactly as the converter does, and every status a route can answer is listed.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from domain.campaigns import MAX_CAMPAIGN_NAME, MAX_GRANT_DAYS, MAX_LIST_LIMIT, MAX_PLAN_CODE
from domain.model import (
    CampaignStatus,
    PausedReason,
    PromoType,
    PurchaseStatus,
    RedeemResult,
    RedemptionStatus,
    TargetScope,
)
from entrypoints.http.auth import TOKEN_HEADER
from entrypoints.http.schemas import MAX_INT32, MAX_INT64, MAX_PRODUCT_CODE, MAX_PRODUCTS, MAX_REASON

bp = Blueprint("openapi", __name__)

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    t = out.pop("type")
    out["type"] = [t, "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


DATE_TIME = {"type": "string", "format": "date-time"}
COUNT = {"type": "integer", "minimum": 0}
RATE = {"type": "number", "minimum": 0, "maximum": 1}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_INT64}

# Every /internal/* operation can answer these.
INTERNAL_ERRORS: dict[str, Any] = {
    "401": _error("Missing or wrong X-Internal-Token"),
    "403": _error("Client address outside INTERNAL_IP_ALLOWLIST"),
    "500": _error("Internal error (never a stack trace)"),
}
BODY_ERRORS: dict[str, Any] = {
    "400": _error("VALIDATION_ERROR: malformed JSON or fields; one details entry per bad field"),
    "413": _error("Body larger than 64 KiB"),
}


def _op(summary: str, responses: dict[str, Any], *, body: str | None = None, params: list[Any] | None = None,
        op_id: str, tags: list[str]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "operationId": op_id, "tags": tags, "responses": {}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(body)}}}
        op["responses"].update(BODY_ERRORS)
    op["responses"].update(responses)
    op["responses"].update(INTERNAL_ERRORS)
    return op


CAMPAIGN_ID_PARAM = {"name": "promo_code_id", "in": "path", "required": True, "schema": ID}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "additionalProperties": False,
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {
                        "description": "VALIDATION_ERROR: a list of {field, message}; otherwise an object or null"
                    },
                },
            }
        },
    },
    "RedeemRequest": {
        "type": "object",
        "examples": [{"user_id": 42, "code": "SPRING-2026", "idempotency_key": "tg:42:1001"}],
        "required": ["user_id", "code", "idempotency_key"],
        "additionalProperties": False,
        "properties": {
            "user_id": {**ID, "description": "Telegram user id"},
            "code": {"type": "string", "description": "the plaintext code as the user typed it"},
            "idempotency_key": {"type": "string", "pattern": r"^[A-Za-z0-9_:.\-]{1,128}$"},
        },
    },
    "Redemption": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "promo_code_id", "user_id", "promo_type", "status", "discount_percent",
                     "reserved_until", "grant_plan_code", "grant_days", "created_at"],
        "properties": {
            "id": ID,
            "promo_code_id": ID,
            "user_id": ID,
            "promo_type": {"type": "string", "enum": [t.value for t in PromoType]},
            "status": {"type": "string", "enum": [s.value for s in RedemptionStatus]},
            "discount_percent": _nullable({"type": "integer", "minimum": 1, "maximum": 99}),
            "reserved_until": _nullable(DATE_TIME),
            "grant_plan_code": _nullable({"type": "string"}),
            "grant_days": _nullable({"type": "integer"}),
            "created_at": DATE_TIME,
        },
    },
    "RedeemAccepted": {
        "type": "object",
        "additionalProperties": False,
        "required": ["result", "replayed", "redemption"],
        "properties": {
            "result": {"const": RedeemResult.ACCEPTED.value},
            "replayed": {"type": "boolean"},
            "redemption": _ref("Redemption"),
        },
    },
    "RedeemRejected": {
        "type": "object",
        "additionalProperties": False,
        "required": ["result", "error"],
        "properties": {
            "result": {"type": "string", "enum": [r.value for r in RedeemResult if r is not RedeemResult.ACCEPTED]},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "additionalProperties": False,
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": ["object", "null"]},
                },
            },
        },
    },
    "CampaignCreate": {
        "type": "object",
        "examples": [
            {"code": "SPRING-2026", "campaign_name": "spring sale", "promo_type": "PERCENT_DISCOUNT",
             "discount_percent": 20, "applicable_products": ["PREMIUM_30D"], "target_scope": "ALL",
             "valid_until": "2030-01-01T00:00:00Z", "max_total_uses": 1000},
            {"code": "GIFT-30-DAYS", "campaign_name": "gift", "promo_type": "PREMIUM_GRANT",
             "grant_plan_code": "PREMIUM", "grant_days": 30},
        ],
        "required": ["code", "campaign_name", "promo_type"],
        "additionalProperties": False,
        "properties": {
            "code": {"type": "string", "description": "plaintext code; stored only as code_hash and code_prefix"},
            "campaign_name": {"type": "string", "minLength": 1, "maxLength": MAX_CAMPAIGN_NAME},
            "promo_type": {"type": "string", "enum": [t.value for t in PromoType]},
            "grant_plan_code": _nullable({"type": "string", "minLength": 1, "maxLength": MAX_PLAN_CODE,
                                          "description": "PREMIUM_GRANT only"}),
            "grant_days": _nullable({"type": "integer", "minimum": 1, "maximum": MAX_GRANT_DAYS,
                                     "description": "PREMIUM_GRANT only"}),
            "discount_percent": _nullable({"type": "integer", "minimum": 1, "maximum": 99,
                                           "description": "PERCENT_DISCOUNT only"}),
            "applicable_products": {"type": "array", "maxItems": MAX_PRODUCTS, "uniqueItems": True,
                                    "items": {"type": "string", "minLength": 1, "maxLength": MAX_PRODUCT_CODE},
                                    "description": "product codes; empty = all"},
            "target_scope": {"type": "string", "enum": [s.value for s in TargetScope]},
            "valid_from": _nullable({**DATE_TIME, "description": "default: now"}),
            "valid_until": _nullable(DATE_TIME),
            "max_total_uses": _nullable({"type": "integer", "minimum": 1, "maximum": MAX_INT32,
                                         "description": "null = unlimited"}),
        },
    },
    "Campaign": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "campaign_name", "code_hash", "code_prefix", "promo_type", "grant_plan_code",
                     "grant_days", "discount_percent", "applicable_products", "target_scope", "status",
                     "paused_reason", "valid_from", "valid_until", "max_total_uses", "used_total",
                     "created_at", "updated_at"],
        "properties": {
            "id": ID,
            "campaign_name": {"type": "string"},
            "code_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "code_prefix": {"type": "string"},
            "promo_type": {"type": "string", "enum": [t.value for t in PromoType]},
            "grant_plan_code": _nullable({"type": "string"}),
            "grant_days": _nullable({"type": "integer"}),
            "discount_percent": _nullable({"type": "integer"}),
            "applicable_products": {"type": "array", "items": {"type": "string"}},
            "target_scope": {"type": "string", "enum": [s.value for s in TargetScope]},
            "status": {"type": "string", "enum": [s.value for s in CampaignStatus]},
            "paused_reason": _nullable({"type": "string", "enum": [r.value for r in PausedReason]}),
            "valid_from": DATE_TIME,
            "valid_until": _nullable(DATE_TIME),
            "max_total_uses": _nullable({"type": "integer"}),
            "used_total": {"type": "integer", "minimum": 0},
            "created_at": DATE_TIME,
            "updated_at": DATE_TIME,
        },
    },
    "CampaignPage": {
        "type": "object",
        "additionalProperties": False,
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": _ref("Campaign")},
            "next_cursor": _nullable({"type": "integer", "description": "pass as cursor for the next page"}),
        },
    },
    "StatusChange": {
        "type": "object",
        "examples": [{"status": "PAUSED", "reason": "ad went out with a typo"}, {"status": "ACTIVE"}],
        "required": ["status"],
        "additionalProperties": False,
        "properties": {
            "status": {"type": "string", "enum": [CampaignStatus.ACTIVE.value, CampaignStatus.PAUSED.value]},
            "reason": _nullable({"type": "string", "maxLength": MAX_REASON, "description": "free-text note"}),
        },
    },
    "RefundRollbackRequest": {
        "type": "object",
        "required": ["purchase_id"],
        "additionalProperties": False,
        "examples": [{"purchase_id": 1}],
        "properties": {"purchase_id": ID},
    },
    "RefundRollbackResult": {
        "type": "object",
        "additionalProperties": False,
        "required": ["purchase_id", "redemption_id", "status", "replayed"],
        "properties": {
            "purchase_id": ID,
            "redemption_id": ID,
            "status": {"const": RedemptionStatus.REVOKED.value},
            "replayed": {"type": "boolean", "description": "true when it was already REVOKED"},
        },
    },
    "EmptyBody": {
        "type": "object",
        "additionalProperties": False,
        "properties": {},
        "description": "an empty JSON object (an empty body is accepted too)",
    },
    "Purchase": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "user_id", "product_code", "base_stars_amount", "discount_stars_amount",
                     "final_stars_amount", "promo_redemption_id", "status", "telegram_payment_charge_id",
                     "created_at", "updated_at", "paid_at", "refunded_at", "review_reason"],
        "properties": {
            "id": ID,
            "user_id": ID,
            "product_code": {"type": "string"},
            "base_stars_amount": {"type": "integer"},
            "discount_stars_amount": {"type": "integer"},
            "final_stars_amount": {"type": "integer"},
            "promo_redemption_id": _nullable({"type": "integer"}),
            "status": {"type": "string", "enum": [s.value for s in PurchaseStatus]},
            "telegram_payment_charge_id": _nullable({"type": "string"}),
            "created_at": DATE_TIME,
            "updated_at": DATE_TIME,
            "paid_at": _nullable(DATE_TIME),
            "refunded_at": _nullable(DATE_TIME),
            "review_reason": _nullable({"type": "string", "description": "set when payment recovery needs a human"}),
        },
    },
    "Dashboard": {
        "type": "object",
        "additionalProperties": False,
        "required": ["window", "conversion", "failures", "guard", "payments"],
        "properties": {
            "window": {
                "type": "object",
                "additionalProperties": False,
                "required": ["from", "to", "hours"],
                "properties": {"from": DATE_TIME, "to": DATE_TIME,
                               "hours": {"type": "integer", "minimum": 1, "maximum": 720}},
            },
            "conversion": {
                "type": "object",
                "additionalProperties": False,
                "required": ["attempts_total", "attempts_accepted", "acceptance_rate", "reservations_total",
                             "reservations_applied", "reservation_apply_rate"],
                "properties": {
                    "attempts_total": COUNT,
                    "attempts_accepted": COUNT,
                    "acceptance_rate": RATE,
                    "reservations_total": COUNT,
                    "reservations_applied": COUNT,
                    "reservation_apply_rate": RATE,
                },
            },
            "failures": {
                "type": "object",
                "additionalProperties": False,
                "required": ["by_result", "failure_rate"],
                "properties": {
                    "by_result": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": [r.value for r in RedeemResult if r is not RedeemResult.ACCEPTED],
                        "properties": {r.value: COUNT for r in RedeemResult if r is not RedeemResult.ACCEPTED},
                    },
                    "failure_rate": RATE,
                },
            },
            "guard": {
                "type": "object",
                "additionalProperties": False,
                "required": ["candidate_abusive_hashes", "paused_campaigns_total", "paused_campaigns_recent"],
                "properties": {
                    "candidate_abusive_hashes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["normalized_code_hash", "failures", "distinct_users", "last_seen"],
                            "properties": {
                                "normalized_code_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                "failures": COUNT,
                                "distinct_users": COUNT,
                                "last_seen": DATE_TIME,
                            },
                        },
                    },
                    "paused_campaigns_total": COUNT,
                    "paused_campaigns_recent": {**COUNT, "description": "PAUSED campaigns paused inside the window"},
                },
            },
            "payments": {
                "type": "object",
                "additionalProperties": False,
                "description": "Purchases paid (by paid_at), refunded (by refunded_at) and FAILED (by their last "
                               "change) inside the window, their Stars, and what waits for a human now",
                "required": ["paid_count", "paid_stars", "refunded_count", "refunded_stars", "failed_count",
                             "failed_stars", "open_review_items", "purchases_in_review"],
                "properties": {
                    "paid_count": COUNT,
                    "paid_stars": COUNT,
                    "refunded_count": COUNT,
                    "refunded_stars": COUNT,
                    "failed_count": COUNT,
                    "failed_stars": COUNT,
                    "open_review_items": {**COUNT, "description": "unresolved payment review items (all time)"},
                    "purchases_in_review": {**COUNT, "description": "purchases flagged with a review_reason"},
                },
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}, "database": {"type": "string"}},
    },
}

PATHS: dict[str, Any] = {
    "/internal/promo/redeem": {
        "post": _op(
            "Redeem a promo code for a user",
            {
                "200": _json(_ref("RedeemAccepted"), "ACCEPTED (replayed = an earlier call with this key)"),
                "404": _json(_ref("RedeemRejected"), "INVALID"),
                "409": _json(_ref("RedeemRejected"), "ALREADY_USED or IDEMPOTENCY_KEY_REUSED"),
                "422": _json(_ref("RedeemRejected"), "PAUSED, EXPIRED, DEPLETED or NOT_APPLICABLE"),
                "429": _json(_ref("RedeemRejected"), "RATE_LIMITED",
                             {"Retry-After": {"description": "seconds until the block ends", "required": True,
                                              "schema": {"type": "string", "pattern": "^[0-9]+$"}}}),
            },
            body="RedeemRequest", op_id="redeem", tags=["promo"],
        ),
    },
    "/internal/promo/campaigns": {
        "post": _op(
            "Create a campaign (one code)",
            {"201": _json(_ref("Campaign"), "Created"), "409": _error("CODE_EXISTS")},
            body="CampaignCreate", op_id="createCampaign", tags=["campaigns"],
        ),
        "get": _op(
            "List campaigns ordered by id",
            {"200": _json(_ref("CampaignPage"), "One page"),
             "400": _error("VALIDATION_ERROR: a bad query parameter")},
            params=[
                {"name": "status", "in": "query", "schema": {"type": "string",
                                                             "enum": [s.value for s in CampaignStatus]}},
                {"name": "promo_type", "in": "query", "schema": {"type": "string",
                                                                 "enum": [t.value for t in PromoType]}},
                {"name": "campaign_name", "in": "query", "description": "substring, case-insensitive",
                 "schema": {"type": "string", "maxLength": 200, "pattern": "^[^\\x00]*$"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                            "maximum": MAX_LIST_LIMIT, "default": 50}},
                {"name": "cursor", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                             "maximum": MAX_INT64}},
            ],
            op_id="listCampaigns", tags=["campaigns"],
        ),
    },
    "/internal/promo/campaigns/{promo_code_id}": {
        "get": _op("One campaign", {"200": _json(_ref("Campaign"), "The campaign"),
                                    "404": _error("No such campaign")},
                   params=[CAMPAIGN_ID_PARAM], op_id="getCampaign", tags=["campaigns"]),
    },
    "/internal/promo/campaigns/{promo_code_id}/status": {
        "post": _op(
            "Pause or resume a campaign (ACTIVE <-> PAUSED; same state is a no-op)",
            {"200": _json(_ref("Campaign"), "The campaign after the change"),
             "404": _error("No such campaign"),
             "409": _error("INVALID_TRANSITION")},
            body="StatusChange", params=[CAMPAIGN_ID_PARAM], op_id="setCampaignStatus", tags=["campaigns"],
        ),
    },
    "/internal/openapi.json": {
        "get": _op("This document", {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {
            "type": "object"}}}}}, op_id="openapi", tags=["meta"]),
    },
    "/healthz": {
        "get": {"summary": "Liveness", "operationId": "healthz", "tags": ["health"], "security": [],
                "responses": {"200": _json(_ref("Health"), "The process answers")}},
    },
    "/readyz": {
        "get": {"summary": "Readiness: the database is reachable", "operationId": "readyz", "tags": ["health"],
                "security": [],
                "responses": {"200": _json(_ref("Health"), "Ready"), "503": _error("NOT_READY")}},
    },
}


PURCHASE_ID_PARAM = {"name": "purchase_id", "in": "path", "required": True, "schema": ID}

# Paths of the optional features (see entrypoints.http.app.FEATURES), documented only when served.
FEATURE_PATHS: dict[str, dict[str, Any]] = {
    "refund_rollback": {
        "/internal/promo/refund-rollback": {
            "post": _op(
                "Revoke the promo redemption of a refunded purchase now",
                {"200": _json(_ref("RefundRollbackResult"), "REVOKED (replayed = it already was)"),
                 "404": _error("No such purchase"),
                 "409": _error("PURCHASE_NOT_REFUNDED, NO_PROMO_REDEMPTION or INVALID_TRANSITION")},
                body="RefundRollbackRequest", op_id="refundRollback", tags=["promo"],
            ),
        },
    },
    "dashboard": {
        "/internal/promo/dashboard": {
            "get": _op(
                "Promo metrics over the trailing window",
                {"200": _json(_ref("Dashboard"), "The metrics"),
                 "400": _error("VALIDATION_ERROR: window_hours outside 1..720")},
                params=[{"name": "window_hours", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 720, "default": 24}}],
                op_id="dashboard", tags=["promo"],
            ),
        },
    },
    "payments": {
        "/internal/payments/{purchase_id}/refund": {
            "post": _op(
                "Refund a paid purchase through Telegram refundStarPayment and mark it REFUNDED (idempotent)",
                {"200": _json(_ref("Purchase"), "The purchase, REFUNDED"),
                 "404": _error("No such purchase"),
                 "409": _error("INVALID_PURCHASE_STATE: the purchase is neither PAID nor REFUNDED"),
                 "502": _error("PAYMENT_REFUND_FAILED: Telegram refused the refund")},
                body="EmptyBody", params=[PURCHASE_ID_PARAM], op_id="refundPayment", tags=["payments"],
            ),
        },
    },
    "telegram_webhook": {
        "/webhook/telegram": {
            "post": {
                "summary": "Telegram delivers a bot update (served when TELEGRAM_BOT_TOKEN is set)",
                "operationId": "telegramWebhook", "tags": ["telegram"], "security": [],
                "parameters": [{"name": "X-Telegram-Bot-Api-Secret-Token", "in": "header", "required": True,
                                "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {JSON: {"schema": {
                    "type": "object", "required": ["update_id"],
                    "properties": {"update_id": {"type": "integer", "minimum": 0}}}}}},
                "responses": {
                    "200": _json({"type": "object"}, "Taken in: processed, queued, duplicate or ignored"),
                    "403": _error("Missing or wrong X-Telegram-Bot-Api-Secret-Token"),
                    "413": _error("Body over 64 KiB"),
                    "500": _error("Unexpected error"),
                    "503": _error("Database unreachable; Telegram delivers again"),
                },
            },
        },
    },
}


def document(features: Collection[str] | None = None) -> dict[str, Any]:
    """A fresh copy of the OpenAPI 3.1 document; ``features``: the optional features served (default all)."""
    import copy

    paths = dict(PATHS)
    for name, extra in FEATURE_PATHS.items():
        if features is None or name in features:
            paths.update(extra)
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {
            "title": "starpromo internal API",
            "version": "1.0.0",
            "description": "Ops API of the starpromo promo-code engine. Every /internal/* call needs "
                           f"{TOKEN_HEADER} and a client address inside INTERNAL_IP_ALLOWLIST.",
        },
        "servers": [{"url": "/"}],
        "security": [{"internalToken": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"internalToken": {"type": "apiKey", "in": "header", "name": TOKEN_HEADER}},
        },
    })


@bp.get("/internal/openapi.json")
def openapi_json() -> Response:
    return jsonify(document(current_app.extensions.get("starpromo.features", frozenset())))
