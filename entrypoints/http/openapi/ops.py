"""OpenAPI: the audit log and the support view of one user.

The operations only: queries come from ``entrypoints.http.inputs``, answers from ``entrypoints.http.outputs``.
"""

from __future__ import annotations

from typing import Any

from entrypoints.http import outputs
from entrypoints.http.inputs import AuditQuery
from entrypoints.http.openapi._common import as_json, op, path_id, ref


def schemas() -> dict[str, Any]:
    """The component schemas of this module's request bodies, generated from their shapes now."""
    return {}


def paths() -> dict[str, Any]:
    """This module's operations, their query parameters generated from their shapes now."""
    return {
        "/internal/promo/audit": {"get": op(
            "The audit log, newest first", {"200": as_json(ref(outputs.AuditPage), "One page")},
            query=AuditQuery, op_id="listAudit", tags=["audit"],
        )},
        "/internal/users/{user_id}": {"get": op(
            "What support needs about one Telegram user",
            {"200": as_json(ref(outputs.User), "Redemptions, purchases, entitlements, recent attempts, throttling"),
             "400": as_json(ref(outputs.Error), "VALIDATION_ERROR: user_id is 0 or beyond 64 bits"),
             "404": as_json(ref(outputs.Error), "NOT_FOUND: user_id is not a decimal number")},
            params=[path_id("user_id")], op_id="getUser", tags=["users"],
        )},
    }
