"""OpenAPI: ``/internal/promo/codes`` (list, read, status, lookup).

The operations only: request bodies come from ``entrypoints.http.inputs``, answers from ``entrypoints.http.outputs``.
"""

from __future__ import annotations

from typing import Any

from entrypoints.http import outputs
from entrypoints.http.inputs import CodeQuery, LookupRequest
from entrypoints.http.openapi._common import as_json, error, op, path_id, ref
from entrypoints.http.shapes import body_schema

CODES = ["codes"]
NO_CODE = error("No such code")


def schemas() -> dict[str, Any]:
    """The component schemas of this module's request bodies, generated from their shapes now."""
    return {"CodeLookupRequest": body_schema(LookupRequest)}


def paths() -> dict[str, Any]:
    """This module's operations, their query parameters generated from their shapes now."""
    return {
        "/internal/promo/codes": {"get": op(
            "List codes, oldest first", {"200": as_json(ref(outputs.CodePage), "One page")},
            query=CodeQuery, op_id="listCodes", tags=CODES,
        )},
        "/internal/promo/codes/{promo_code_id}": {"get": op(
            "One code", {"200": as_json(ref(outputs.Code), "The code"), "404": NO_CODE},
            params=[path_id("promo_code_id")], op_id="getCode", tags=CODES,
        )},
        "/internal/promo/codes/{promo_code_id}/status": {"post": op(
            "Pause or resume one code (ACTIVE <-> PAUSED; same state is a no-op; its campaign is untouched)",
            {"200": as_json(ref(outputs.Code), "The code after the change"), "404": NO_CODE,
             "409": error("INVALID_TRANSITION")},
            body="StatusChange", params=[path_id("promo_code_id")], op_id="setCodeStatus", tags=CODES, changes=True,
        )},
        "/internal/promo/codes/lookup": {"post": op(
            "Find a typed code (support): its row and campaign. Writes no attempt; the plaintext is never logged",
            {"200": as_json(ref(outputs.CodeLookup), "The code and its campaign"), "404": error("No code matches")},
            body="CodeLookupRequest", op_id="lookupCode", tags=CODES,
        )},
    }
