"""OpenAPI: ``/internal/promo/campaigns`` (create, list, read, change, status, codes, stats).

The operations only: request bodies come from ``entrypoints.http.inputs``, answers from ``entrypoints.http.outputs``.
"""

from __future__ import annotations

from typing import Any

from entrypoints.http import outputs
from entrypoints.http.inputs import (
    AddCodeRequest,
    CampaignChangeRequest,
    CampaignCreateRequest,
    CampaignQuery,
    GenerateCodesRequest,
    StatusChangeRequest,
    WindowQuery,
)
from entrypoints.http.openapi._common import CSV, JSON, as_json, error, op, path_id, ref
from entrypoints.http.shapes import body_schema

CAMPAIGN = ["campaigns"]
NO_CAMPAIGN = error("No such campaign")


def schemas() -> dict[str, Any]:
    """The component schemas of this module's request bodies, generated from their shapes now."""
    return {
        "CampaignCreate": body_schema(CampaignCreateRequest),
        "CampaignChange": body_schema(CampaignChangeRequest, all_optional=True),
        "StatusChange": body_schema(StatusChangeRequest),
        "GenerateCodes": body_schema(GenerateCodesRequest),
        "AddCode": body_schema(AddCodeRequest),
        "CampaignCodes": {"oneOf": [ref("GenerateCodes"), ref("AddCode")],
                          "description": "count (generated codes) or code (one chosen code), not both"},
    }

CAMPAIGN_ID = path_id("campaign_id")


def paths() -> dict[str, Any]:
    """This module's operations, their query parameters generated from their shapes now."""
    return {
        "/internal/promo/campaigns": {
            "post": op(
                "Create a campaign, optionally with one chosen code",
                {"201": as_json(ref(outputs.CampaignCreated), "Created"),
                 "409": error("CAMPAIGN_EXISTS (name taken) or CODE_EXISTS; nothing created")},
                body="CampaignCreate", op_id="createCampaign", tags=CAMPAIGN, changes=True,
            ),
            "get": op("List campaigns, newest first", {"200": as_json(ref(outputs.CampaignPage), "One page")},
                      query=CampaignQuery, op_id="listCampaigns", tags=CAMPAIGN),
        },
        "/internal/promo/campaigns/{campaign_id}": {
            "get": op("One campaign", {"200": as_json(ref(outputs.Campaign), "The campaign"), "404": NO_CAMPAIGN},
                      params=[CAMPAIGN_ID], op_id="getCampaign", tags=CAMPAIGN),
            "patch": op(
                "Change name, valid_until, budget or per-user limit (one audit entry)",
                {"200": as_json(ref(outputs.Campaign), "The campaign after the change"), "404": NO_CAMPAIGN,
                 "409": error("INVALID_CHANGE: details.field names what the rules refuse (a budget below used_total, "
                              "valid_until not in the future, a name taken); nothing changed")},
                body="CampaignChange", params=[CAMPAIGN_ID], op_id="changeCampaign", tags=CAMPAIGN, changes=True,
            ),
        },
        "/internal/promo/campaigns/{campaign_id}/status": {"post": op(
            "Pause or resume a campaign (ACTIVE <-> PAUSED; same state is a no-op)",
            {"200": as_json(ref(outputs.Campaign), "The campaign after the change"), "404": NO_CAMPAIGN,
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
                "content": {CSV: {"schema": {"type": "string"}}, JSON: {"schema": ref(outputs.Code)}},
            },
             "404": NO_CAMPAIGN,
             "409": error("CODE_EXISTS, or INVALID_TRANSITION: the campaign has expired")},
            body="CampaignCodes", params=[CAMPAIGN_ID], op_id="addCampaignCodes", tags=CAMPAIGN, changes=True,
        )},
        "/internal/promo/campaigns/{campaign_id}/stats": {"get": op(
            "The campaign's metrics over the trailing window",
            {"200": as_json(ref(outputs.CampaignStats), "The metrics"), "404": NO_CAMPAIGN},
            params=[CAMPAIGN_ID], query=WindowQuery, op_id="campaignStats", tags=CAMPAIGN,
        )},
    }
