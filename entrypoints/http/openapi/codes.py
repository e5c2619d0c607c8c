"""OpenAPI: ``/internal/promo/codes`` (list, read, status, lookup)."""

from __future__ import annotations

from typing import Any

from domain.model import CampaignStatus, PausedReason, PromoType, TargetScope
from entrypoints.http.inputs import CodeQuery, LookupRequest
from entrypoints.http.openapi._common import (
    COUNT,
    DATE_TIME,
    HASH,
    ID,
    as_json,
    enum_of,
    error,
    nullable,
    obj,
    op,
    page_of,
    path_id,
    ref,
)
from entrypoints.http.shapes import body_schema

CODES = ["codes"]
NO_CODE = error("No such code")

SCHEMAS: dict[str, Any] = {
    "Code": obj({
        "id": ID,
        "campaign_id": ID,
        "code_hash": HASH,
        "code_prefix": {"type": "string", "description": "the first 4 characters of the normalized code"},
        "status": enum_of(CampaignStatus),
        "paused_reason": nullable(enum_of(PausedReason)),
        "max_total_uses": nullable({"type": "integer", "description": "the code's own cap; null = none"}),
        "used_total": COUNT,
        "created_at": DATE_TIME,
        "updated_at": DATE_TIME,
        "campaign_name": {"type": "string"},
        "promo_type": enum_of(PromoType),
        "target_scope": enum_of(TargetScope),
        "valid_from": DATE_TIME,
        "valid_until": nullable(DATE_TIME),
    }, "The promo_codes columns (code_hash included; the plaintext is never stored)"),
    "CodePage": page_of("Code"),
    "CodeLookupRequest": body_schema(LookupRequest),
    "CodeLookup": obj({"code": ref("Code"), "campaign": ref("Campaign")}),
}

PATHS: dict[str, Any] = {
    "/internal/promo/codes": {"get": op(
        "List codes, oldest first", {"200": as_json(ref("CodePage"), "One page")},
        query=CodeQuery, op_id="listCodes", tags=CODES,
    )},
    "/internal/promo/codes/{promo_code_id}": {"get": op(
        "One code", {"200": as_json(ref("Code"), "The code"), "404": NO_CODE},
        params=[path_id("promo_code_id")], op_id="getCode", tags=CODES,
    )},
    "/internal/promo/codes/{promo_code_id}/status": {"post": op(
        "Pause or resume one code (ACTIVE <-> PAUSED; same state is a no-op; its campaign is untouched)",
        {"200": as_json(ref("Code"), "The code after the change"), "404": NO_CODE,
         "409": error("INVALID_TRANSITION")},
        body="StatusChange", params=[path_id("promo_code_id")], op_id="setCodeStatus", tags=CODES, changes=True,
    )},
    "/internal/promo/codes/lookup": {"post": op(
        "Find a typed code (support): its row and campaign. Writes no attempt; the plaintext is never logged",
        {"200": as_json(ref("CodeLookup"), "The code and its campaign"), "404": error("No code matches")},
        body="CodeLookupRequest", op_id="lookupCode", tags=CODES,
    )},
}
