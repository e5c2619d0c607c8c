"""``/internal/promo/campaigns``: create (plaintext code in, never out), list, get, status transitions."""

from __future__ import annotations

import logging
from typing import Any

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify, request

from domain.campaigns import MAX_LIST_LIMIT, CampaignService
from domain.model import CampaignFilter, CampaignStatus, PromoType
from entrypoints.container import Container
from entrypoints.http._body import body_as
from entrypoints.http.errors import validation_error
from entrypoints.http.schemas import (
    MAX_INT64,
    MAX_REASON,
    CampaignCreateRequest,
    StatusChangeRequest,
    campaign_json,
    not_found,
)

log = logging.getLogger("starpromo.http.campaigns")

bp = Blueprint("campaigns", __name__, url_prefix="/internal/promo/campaigns")

DEFAULT_LIMIT = 50
MAX_NAME_FILTER = 200


def _campaign_id(promo_code_id: int) -> int:
    # Flask's int converter accepts any size; ids beyond BIGINT cannot exist.
    if promo_code_id > MAX_INT64:
        raise not_found(f"campaign {promo_code_id}")
    return promo_code_id


@bp.post("")
@inject
def create(service: CampaignService = Provide[Container.campaign_service]) -> tuple[Response, int]:
    req = body_as(CampaignCreateRequest)
    problems = req.problems()
    if problems:
        raise validation_error(problems)
    campaign = service.create(req.spec(), req.code)
    log.info("campaign created", extra={"event": "promo_campaign_created", "promo_code_id": campaign.id,
                                        "code_prefix": campaign.code_prefix, "promo_type": campaign.promo_type.value})
    return jsonify(campaign_json(campaign)), 201


def _list_query() -> tuple[CampaignFilter, int, int | None]:
    args = request.args
    errors: list[dict[str, str]] = []
    status: CampaignStatus | None = None
    promo_type: PromoType | None = None
    limit = DEFAULT_LIMIT
    cursor: int | None = None
    if "status" in args:
        try:
            status = CampaignStatus(args["status"])
        except ValueError:
            errors.append({"field": "status", "message": "must be one of " + ", ".join(CampaignStatus)})
    if "promo_type" in args:
        try:
            promo_type = PromoType(args["promo_type"])
        except ValueError:
            errors.append({"field": "promo_type", "message": "must be one of " + ", ".join(PromoType)})
    name = args.get("campaign_name")
    if name is not None and (len(name) > MAX_NAME_FILTER or "\x00" in name):
        errors.append({"field": "campaign_name", "message": f"at most {MAX_NAME_FILTER} characters, no NUL"})
    if "limit" in args:
        raw = args["limit"]
        if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_LIST_LIMIT:
            limit = int(raw)
        else:
            errors.append({"field": "limit", "message": f"must be an integer 1..{MAX_LIST_LIMIT}"})
    if "cursor" in args:
        raw = args["cursor"]
        if raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= MAX_INT64:
            cursor = int(raw)
        else:
            errors.append({"field": "cursor", "message": "must be the next_cursor of an earlier page"})
    if errors:
        raise validation_error(errors)
    return CampaignFilter(status=status, promo_type=promo_type, name_contains=name or None), limit, cursor


@bp.get("")
@inject
def list_campaigns(service: CampaignService = Provide[Container.campaign_service]) -> Response:
    flt, limit, cursor = _list_query()
    page = service.list_campaigns(flt, limit=limit, cursor=cursor)
    body: dict[str, Any] = {"items": [campaign_json(c) for c in page.items], "next_cursor": page.next_cursor}
    return jsonify(body)


@bp.get("/<int:promo_code_id>")
@inject
def get(promo_code_id: int, service: CampaignService = Provide[Container.campaign_service]) -> Response:
    return jsonify(campaign_json(service.get(_campaign_id(promo_code_id))))


@bp.post("/<int:promo_code_id>/status")
@inject
def set_status(promo_code_id: int, service: CampaignService = Provide[Container.campaign_service]) -> Response:
    req = body_as(StatusChangeRequest)
    if req.reason is not None and len(req.reason) > MAX_REASON:
        raise validation_error([{"field": "reason", "message": f"at most {MAX_REASON} characters"}])
    campaign = service.set_status(_campaign_id(promo_code_id), req.status)
    log.info("campaign status set", extra={"event": "promo_campaign_status_set", "promo_code_id": campaign.id,
                                           "status": campaign.status.value, "reason": req.reason})
    return jsonify(campaign_json(campaign))
