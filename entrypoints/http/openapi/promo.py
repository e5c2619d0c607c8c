"""OpenAPI: redeem, refund rollback, payments refund, the dashboard, health, the Telegram webhook and this document.

The operations only: request bodies come from ``entrypoints.http.inputs``, answers from ``entrypoints.http.outputs``.
"""

from __future__ import annotations

from typing import Any

from entrypoints.http import outputs
from entrypoints.http.inputs import EmptyRequest, RedeemRequest, RefundRollbackRequest, WindowQuery
from entrypoints.http.openapi._common import JSON, as_json, error, op, path_id, ref
from entrypoints.http.shapes import body_schema


def schemas() -> dict[str, Any]:
    """The component schemas of this module's request bodies, generated from their shapes now."""
    return {
        "RedeemRequest": body_schema(RedeemRequest),
        "RefundRollbackRequest": body_schema(RefundRollbackRequest),
        "EmptyBody": body_schema(EmptyRequest),
    }


def paths() -> dict[str, Any]:
    """This module's operations, their query parameters generated from their shapes now."""
    return {
        "/internal/promo/redeem": {"post": op(
            "Redeem a promo code for a user",
            {
                "200": as_json(ref(outputs.RedeemAccepted), "ACCEPTED (replayed = an earlier call with this key)"),
                "404": as_json(ref(outputs.RedeemRejected), "INVALID"),
                "409": as_json(ref(outputs.RedeemRejected), "ALREADY_USED or IDEMPOTENCY_KEY_REUSED"),
                "422": as_json(ref(outputs.RedeemRejected), "PAUSED, EXPIRED, DEPLETED or NOT_APPLICABLE"),
                "429": as_json(ref(outputs.RedeemRejected), "RATE_LIMITED",
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
                             "responses": {"200": as_json(ref(outputs.Health), "The process answers")}}},
        "/readyz": {"get": {"summary": "Readiness: the database is reachable", "operationId": "readyz",
                            "tags": ["health"], "security": [],
                            "responses": {"200": as_json(ref(outputs.Health), "Ready"), "503": error("NOT_READY")}}},
        "/metrics": {"get": {
            "summary": "Prometheus text exposition (SPEC 15): no token, but only from INTERNAL_IP_ALLOWLIST",
            "operationId": "metrics", "tags": ["health"], "security": [],
            "responses": {
                "200": {"description": "The metrics of every process of this server",
                        "content": {"text/plain": {"schema": {"type": "string"}}}},
                "403": error("Client address outside INTERNAL_IP_ALLOWLIST"),
                "404": error("Metrics are not recorded with Prometheus in this process"),
            },
        }},
    }


def feature_paths() -> dict[str, dict[str, Any]]:
    """The operations of the optional features (``entrypoints.http.app.FEATURES``), by feature: documented
    only when served."""
    return {
        "refund_rollback": {"/internal/promo/refund-rollback": {"post": op(
            "Revoke the promo redemption of a refunded purchase now",
            {"200": as_json(ref(outputs.RefundRollbackResult), "REVOKED (replayed = it already was)"),
             "404": error("No such purchase"),
             "409": error("PURCHASE_NOT_REFUNDED, NO_PROMO_REDEMPTION or INVALID_TRANSITION")},
            body="RefundRollbackRequest", op_id="refundRollback", tags=["promo"], changes=True,
        )}},
        "dashboard": {"/internal/promo/dashboard": {"get": op(
            "Promo metrics over the trailing window", {"200": as_json(ref(outputs.Dashboard), "The metrics")},
            query=WindowQuery, op_id="dashboard", tags=["promo"],
        )}},
        "payments": {"/internal/payments/{purchase_id}/refund": {"post": op(
            "Refund a paid purchase through Telegram refundStarPayment and mark it REFUNDED (idempotent)",
            {"200": as_json(ref(outputs.Purchase), "The purchase, REFUNDED"),
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
