"""OpenAPI: redeem, refund rollback, payments refund, the dashboard, health, the Telegram webhook and this document."""

from __future__ import annotations

from typing import Any

from domain.dashboard import NON_ACCEPTED_RESULTS
from domain.model import PromoType, PurchaseStatus, RedeemResult, RedemptionStatus
from entrypoints.http.inputs import EmptyRequest, RedeemRequest, RefundRollbackRequest, WindowQuery
from entrypoints.http.openapi._common import (
    COUNT,
    DATE_TIME,
    HASH,
    ID,
    JSON,
    RATE,
    as_json,
    counts_by,
    enum_of,
    error,
    nullable,
    obj,
    op,
    path_id,
    ref,
)
from entrypoints.http.shapes import body_schema

WINDOW = obj({"from": DATE_TIME, "to": DATE_TIME, "hours": {"type": "integer", "minimum": 1, "maximum": 720}})
SERIES = {"type": "array", "description": "one entry per hour the window touches, oldest first, zeros included",
          "items": obj({"hour": {**DATE_TIME, "description": "start of the hour (UTC)"}, "attempts": COUNT,
                        "accepted": COUNT, "applied": COUNT,
                        "stars_revenue": {**COUNT, "description": "final Stars of purchases paid in the hour"}})}

SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": obj({
        "code": {"type": "string"},
        "message": {"type": "string"},
        "details": {"description": "VALIDATION_ERROR: a list of {field, message}; otherwise an object or null"},
    })}),
    "RedeemRequest": body_schema(RedeemRequest),
    "Redemption": obj({
        "id": ID,
        "promo_code_id": ID,
        "campaign_id": ID,
        "user_id": ID,
        "promo_type": enum_of(PromoType),
        "status": enum_of(RedemptionStatus),
        "discount_percent": nullable({"type": "integer", "minimum": 1, "maximum": 99}),
        "discount_stars": nullable({"type": "integer", "minimum": 1}),
        "reserved_until": nullable(DATE_TIME),
        "grant_plan_code": nullable({"type": "string"}),
        "grant_days": nullable({"type": "integer"}),
        "created_at": DATE_TIME,
    }),
    "RedeemAccepted": obj({"result": {"const": RedeemResult.ACCEPTED.value}, "replayed": {"type": "boolean"},
                           "redemption": ref("Redemption")}),
    "RedeemRejected": obj({
        "result": enum_of(NON_ACCEPTED_RESULTS),
        "error": obj({"code": {"type": "string"}, "message": {"type": "string"},
                      "details": {"type": ["object", "null"]}}),
    }),
    "RefundRollbackRequest": body_schema(RefundRollbackRequest),
    "RefundRollbackResult": obj({
        "purchase_id": ID,
        "redemption_id": ID,
        "status": {"const": RedemptionStatus.REVOKED.value},
        "replayed": {"type": "boolean", "description": "true when it was already REVOKED"},
    }),
    "EmptyBody": body_schema(EmptyRequest),
    "Purchase": obj({
        "id": ID,
        "user_id": ID,
        "product_code": {"type": "string"},
        "base_stars_amount": {"type": "integer"},
        "discount_stars_amount": {"type": "integer"},
        "final_stars_amount": {"type": "integer"},
        "promo_redemption_id": nullable({"type": "integer"}),
        "status": enum_of(PurchaseStatus),
        "telegram_payment_charge_id": nullable({"type": "string"}),
        "created_at": DATE_TIME,
        "updated_at": DATE_TIME,
        "paid_at": nullable(DATE_TIME),
        "refunded_at": nullable(DATE_TIME),
        "review_reason": nullable({"type": "string", "description": "set when payment recovery needs a human"}),
    }),
    "Dashboard": obj({
        "window": WINDOW,
        "conversion": obj({
            "attempts_total": COUNT,
            "attempts_accepted": COUNT,
            "acceptance_rate": RATE,
            "reservations_total": COUNT,
            "reservations_applied": COUNT,
            "reservation_apply_rate": RATE,
        }),
        "failures": obj({"by_result": counts_by(NON_ACCEPTED_RESULTS), "failure_rate": RATE}),
        "guard": obj({
            "candidate_abusive_hashes": {"type": "array", "items": obj({
                "normalized_code_hash": HASH, "failures": COUNT, "distinct_users": COUNT, "last_seen": DATE_TIME})},
            "paused_campaigns_total": {**COUNT, "description": "PAUSED campaigns"},
            "paused_codes_total": {**COUNT, "description": "codes PAUSED on their own"},
            "paused_campaigns_recent": {**COUNT, "description": "campaigns and codes paused inside the window"},
        }),
        "payments": obj({
            "paid_count": COUNT,
            "paid_stars": COUNT,
            "refunded_count": COUNT,
            "refunded_stars": COUNT,
            "failed_count": COUNT,
            "failed_stars": COUNT,
            "open_review_items": {**COUNT, "description": "unresolved payment review items (all time)"},
            "purchases_in_review": {**COUNT, "description": "purchases flagged with a review_reason"},
            "other_movements": obj({
                "count": {**COUNT, "description": "other movements in the window, all kinds"},
                "kinds": {"type": "array", "items": obj({
                    "kind": {"type": "string", "description": "withdrawal, withdrawal_returned, telegram_ads, "
                             "paid_broadcast, affiliate_commission, gift, premium_gift, paid_media, subscription, "
                             "business_account_transfer, chat, other, or user_<type> / partner_<type> for what "
                             "Telegram adds later"},
                    "direction": {"type": "string", "enum": ["incoming", "outgoing"]},
                    "count": COUNT,
                    "stars": {**COUNT, "description": "whole Stars"},
                    "nanostar_amount": {"type": "integer", "minimum": 0, "maximum": 999_999_999,
                                        "description": "billionths of a Star on top of stars"},
                })},
            }, "Star transactions dated in the window that are no purchase payment nor its refund, per kind and "
               "direction, as the reconciliation job recorded them; never compared with purchases, never alerted"),
        }, "Purchases paid (by paid_at), refunded (by refunded_at) and FAILED (by their last change) inside the "
           "window, their Stars, what waits for a human now, and the other Star movements"),
        "series": SERIES,
    }),
    "Health": {"type": "object", "required": ["status"],
               "properties": {"status": {"type": "string"}, "database": {"type": "string"}}},
}

PATHS: dict[str, Any] = {
    "/internal/promo/redeem": {"post": op(
        "Redeem a promo code for a user",
        {
            "200": as_json(ref("RedeemAccepted"), "ACCEPTED (replayed = an earlier call with this key)"),
            "404": as_json(ref("RedeemRejected"), "INVALID"),
            "409": as_json(ref("RedeemRejected"), "ALREADY_USED or IDEMPOTENCY_KEY_REUSED"),
            "422": as_json(ref("RedeemRejected"), "PAUSED, EXPIRED, DEPLETED or NOT_APPLICABLE"),
            "429": as_json(ref("RedeemRejected"), "RATE_LIMITED",
                           {"Retry-After": {"description": "seconds until the block ends", "required": True,
                                            "schema": {"type": "string", "pattern": "^[0-9]+$"}}}),
        },
        body="RedeemRequest", op_id="redeem", tags=["promo"],
    )},
    "/internal/openapi.json": {"get": op(
        "This document", {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}}},
        op_id="openapi", tags=["meta"],
    )},
    "/healthz": {"get": {"summary": "Liveness", "operationId": "healthz", "tags": ["health"], "security": [],
                         "responses": {"200": as_json(ref("Health"), "The process answers")}}},
    "/readyz": {"get": {"summary": "Readiness: the database is reachable", "operationId": "readyz",
                        "tags": ["health"], "security": [],
                        "responses": {"200": as_json(ref("Health"), "Ready"), "503": error("NOT_READY")}}},
}

# Paths of the optional features (see entrypoints.http.app.FEATURES), documented only when served.
FEATURE_PATHS: dict[str, dict[str, Any]] = {
    "refund_rollback": {"/internal/promo/refund-rollback": {"post": op(
        "Revoke the promo redemption of a refunded purchase now",
        {"200": as_json(ref("RefundRollbackResult"), "REVOKED (replayed = it already was)"),
         "404": error("No such purchase"),
         "409": error("PURCHASE_NOT_REFUNDED, NO_PROMO_REDEMPTION or INVALID_TRANSITION")},
        body="RefundRollbackRequest", op_id="refundRollback", tags=["promo"], changes=True,
    )}},
    "dashboard": {"/internal/promo/dashboard": {"get": op(
        "Promo metrics over the trailing window", {"200": as_json(ref("Dashboard"), "The metrics")},
        query=WindowQuery, op_id="dashboard", tags=["promo"],
    )}},
    "payments": {"/internal/payments/{purchase_id}/refund": {"post": op(
        "Refund a paid purchase through Telegram refundStarPayment and mark it REFUNDED (idempotent)",
        {"200": as_json(ref("Purchase"), "The purchase, REFUNDED"),
         "404": error("No such purchase"),
         "409": error("INVALID_PURCHASE_STATE: the purchase is neither PAID nor REFUNDED"),
         "502": error("PAYMENT_REFUND_FAILED: Telegram refused the refund")},
        body="EmptyBody", body_required=False, params=[path_id("purchase_id")], op_id="refundPayment",
        tags=["payments"], changes=True,
    )}},
    "telegram_webhook": {"/webhook/telegram": {"post": {
        "summary": "Telegram delivers a bot update (served when TELEGRAM_BOT_TOKEN is set)",
        "operationId": "telegramWebhook", "tags": ["telegram"], "security": [],
        "parameters": [{"name": "X-Telegram-Bot-Api-Secret-Token", "in": "header", "required": True,
                        "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {JSON: {"schema": {
            "type": "object", "required": ["update_id"],
            "properties": {"update_id": {"type": "integer", "minimum": 0}}}}}},
        "responses": {
            "200": as_json({"type": "object"}, "Taken in: processed, queued, duplicate or ignored"),
            "403": error("Missing or wrong X-Telegram-Bot-Api-Secret-Token"),
            "413": error("Body over 64 KiB"),
            "500": error("Unexpected error"),
            "503": error("Database unreachable; Telegram delivers again"),
        },
    }}},
}
