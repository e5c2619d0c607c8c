"""OpenAPI: ``/internal/promo/campaigns`` (create, list, read, change, status, codes, stats)."""

from __future__ import annotations

from typing import Any

from domain.model import ATTEMPT_RESULTS, CampaignStatus, PausedReason, PromoType, RedemptionStatus, TargetScope
from entrypoints.http.inputs import (
    AddCodeRequest,
    CampaignChangeRequest,
    CampaignCreateRequest,
    CampaignQuery,
    GenerateCodesRequest,
    StatusChangeRequest,
    WindowQuery,
)
from entrypoints.http.openapi._common import (
    COUNT,
    CSV,
    DATE_TIME,
    ID,
    JSON,
    as_json,
    counts_by,
    enum_of,
    error,
    nullable,
    obj,
    op,
    page_of,
    path_id,
    ref,
)
from entrypoints.http.openapi.promo import SERIES, WINDOW
from entrypoints.http.shapes import body_schema

CAMPAIGN_PROPERTIES: dict[str, Any] = {
    "id": ID,
    "name": {"type": "string"},
    "promo_type": enum_of(PromoType),
    "grant_plan_code": nullable({"type": "string"}),
    "grant_days": nullable({"type": "integer"}),
    "discount_percent": nullable({"type": "integer"}),
    "discount_stars": nullable({"type": "integer"}),
    "applicable_products": {"type": "array", "items": {"type": "string"}, "description": "empty = all"},
    "target_scope": enum_of(TargetScope),
    "status": enum_of(CampaignStatus),
    "paused_reason": nullable(enum_of(PausedReason)),
    "valid_from": DATE_TIME,
    "valid_until": nullable(DATE_TIME),
    "max_total_uses": nullable({"type": "integer", "description": "the budget; null = unlimited"}),
    "per_user_limit": {"type": "integer", "minimum": 1},
    "used_total": COUNT,
    "created_at": DATE_TIME,
    "updated_at": DATE_TIME,
    "codes_total": COUNT,
    "codes_by_status": counts_by(CampaignStatus, "the campaign's codes by their own status"),
}

CAMPAIGN = ["campaigns"]
NO_CAMPAIGN = error("No such campaign")

SCHEMAS: dict[str, Any] = {
    "Campaign": obj(CAMPAIGN_PROPERTIES, "The promo_campaigns columns plus codes_total and codes_by_status"),
    "CampaignCreated": obj({**CAMPAIGN_PROPERTIES, "code": nullable(ref("Code"))},
                           "The new campaign, and in code the row of the chosen code created with it (null: none)"),
    "CampaignPage": page_of("Campaign"),
    "CampaignCreate": body_schema(CampaignCreateRequest),
    "CampaignChange": body_schema(CampaignChangeRequest, all_optional=True),
    "StatusChange": body_schema(StatusChangeRequest),
    "GenerateCodes": body_schema(GenerateCodesRequest),
    "AddCode": body_schema(AddCodeRequest),
    "CampaignCodes": {"oneOf": [ref("GenerateCodes"), ref("AddCode")],
                      "description": "count (generated codes) or code (one chosen code), not both"},
    "CampaignStats": obj({
        "campaign_id": ID,
        "window": WINDOW,
        "attempts_by_result": counts_by(ATTEMPT_RESULTS, "attempts on the campaign's codes in the window"),
        "redemptions_by_status": counts_by(RedemptionStatus, "redemptions created in the window, by status now"),
        "purchases_paid": COUNT,
        "stars_revenue": {**COUNT, "description": "final Stars of its paid purchases"},
        "discount_stars_given": COUNT,
        "grant_days_given": COUNT,
        "series": SERIES,
    }),
}

CAMPAIGN_ID = path_id("campaign_id")

PATHS: dict[str, Any] = {
    "/internal/promo/campaigns": {
        "post": op(
            "Create a campaign, optionally with one chosen code",
            {"201": as_json(ref("CampaignCreated"), "Created"),
             "409": error("CAMPAIGN_EXISTS (name taken) or CODE_EXISTS; nothing created")},
            body="CampaignCreate", op_id="createCampaign", tags=CAMPAIGN, changes=True,
        ),
        "get": op("List campaigns, newest first", {"200": as_json(ref("CampaignPage"), "One page")},
                  query=CampaignQuery, op_id="listCampaigns", tags=CAMPAIGN),
    },
    "/internal/promo/campaigns/{campaign_id}": {
        "get": op("One campaign", {"200": as_json(ref("Campaign"), "The campaign"), "404": NO_CAMPAIGN},
                  params=[CAMPAIGN_ID], op_id="getCampaign", tags=CAMPAIGN),
        "patch": op(
            "Change name, valid_until, budget or per-user limit (one audit entry)",
            {"200": as_json(ref("Campaign"), "The campaign after the change"), "404": NO_CAMPAIGN,
             "409": error("INVALID_CHANGE: details.field names what the rules refuse (a budget below used_total, "
                          "valid_until not in the future, a name taken); nothing changed")},
            body="CampaignChange", params=[CAMPAIGN_ID], op_id="changeCampaign", tags=CAMPAIGN, changes=True,
        ),
    },
    "/internal/promo/campaigns/{campaign_id}/status": {"post": op(
        "Pause or resume a campaign (ACTIVE <-> PAUSED; same state is a no-op)",
        {"200": as_json(ref("Campaign"), "The campaign after the change"), "404": NO_CAMPAIGN,
         "409": error("INVALID_TRANSITION")},
        body="StatusChange", params=[CAMPAIGN_ID], op_id="setCampaignStatus", tags=CAMPAIGN, changes=True,
    )},
    "/internal/promo/campaigns/{campaign_id}/codes": {"post": op(
        "Add codes: count generated codes (answered as the report CSV) or one chosen code",
        {"201": {
            "description": "count: the report CSV, one row per code, the only place the plaintext codes appear "
                           "(not kept anywhere); code: the new code's row",
            "headers": {
                "Cache-Control": {"description": "no-store", "schema": {"type": "string"}},
                "Content-Disposition": {"description": "count: attachment; filename=...",
                                        "schema": {"type": "string"}},
                "X-Codes-Generated": {"description": "count: rows in the report",
                                      "schema": {"type": "string", "pattern": "^[0-9]+$"}},
            },
            "content": {CSV: {"schema": {"type": "string"}}, JSON: {"schema": ref("Code")}},
        },
         "404": NO_CAMPAIGN,
         "409": error("CODE_EXISTS, or INVALID_TRANSITION: the campaign has expired")},
        body="CampaignCodes", params=[CAMPAIGN_ID], op_id="addCampaignCodes", tags=CAMPAIGN, changes=True,
    )},
    "/internal/promo/campaigns/{campaign_id}/stats": {"get": op(
        "The campaign's metrics over the trailing window",
        {"200": as_json(ref("CampaignStats"), "The metrics"), "404": NO_CAMPAIGN},
        params=[CAMPAIGN_ID], query=WindowQuery, op_id="campaignStats", tags=CAMPAIGN,
    )},
}
