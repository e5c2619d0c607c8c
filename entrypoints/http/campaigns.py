"""``/internal/promo/campaigns``: create (optionally with one chosen code), list, read, change, pause/resume, add
codes (one chosen code, or a generated batch answered as the report CSV) and the campaign's metrics."""

from __future__ import annotations

import logging

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify

from domain.batch import BatchService
from domain.campaigns import CampaignService
from domain.model import CampaignChanges, CampaignFilter
from domain.promo_codes import CodeService
from domain.reports import ReportService
from entrypoints.container import Container
from entrypoints.http import outputs
from entrypoints.http._body import body_as, partial_body, query_as, request_json, shaped
from entrypoints.http.actor import request_actor
from entrypoints.http.convert import MAX_INT64
from entrypoints.http.errors import validation_error
from entrypoints.http.inputs import (
    AddCodeRequest,
    CampaignChangeRequest,
    CampaignCreateRequest,
    CampaignQuery,
    GenerateCodesRequest,
    StatusChangeRequest,
    WindowQuery,
)
from entrypoints.http.report_csv import CsvReport
from entrypoints.http.schemas import campaign_created_json, campaign_json, code_json, not_found, page_json
from entrypoints.http.shapes import dump

log = logging.getLogger("starpromo.http.campaigns")

bp = Blueprint("campaigns", __name__, url_prefix="/internal/promo/campaigns")


def _campaign_id(campaign_id: int) -> int:
    # Flask's int converter accepts any size; ids beyond BIGINT cannot exist.
    if campaign_id > MAX_INT64:
        raise not_found(f"campaign {campaign_id}")
    return campaign_id


def _current(service: CampaignService, campaign_id: int) -> Response:
    return jsonify(campaign_json(service.get(campaign_id)))


@bp.post("")
@inject
def create(service: CampaignService = Provide[Container.campaign_service]) -> tuple[Response, int]:
    """201 campaign JSON with a ``code`` member: the code row when one was given, else null."""
    actor = request_actor()
    req = body_as(CampaignCreateRequest, rules=CampaignCreateRequest.rule_problems)
    campaign, code = service.create(req.spec(), actor=actor, code=req.code,
                                    code_max_total_uses=req.code_max_total_uses)
    log.info("campaign created", extra={"event": "promo_campaign_created", "campaign_id": campaign.id,
                                        "promo_type": campaign.promo_type.value, "actor": actor,
                                        "code_prefix": code.code_prefix if code else None})
    return jsonify(campaign_created_json(campaign, code)), 201


@bp.get("")
@inject
def list_campaigns(service: CampaignService = Provide[Container.campaign_service]) -> Response:
    query = query_as(CampaignQuery)
    flt = CampaignFilter(status=query.status, promo_type=query.promo_type, name_contains=query.name)
    page = service.list_campaigns(flt, limit=query.limit, cursor=query.cursor)
    return jsonify(page_json(outputs.CampaignPage, [campaign_json(c) for c in page.items], page.next_cursor))


@bp.get("/<int:campaign_id>")
@inject
def get(campaign_id: int, service: CampaignService = Provide[Container.campaign_service]) -> Response:
    return _current(service, _campaign_id(campaign_id))


@bp.patch("/<int:campaign_id>")
@inject
def change(campaign_id: int, service: CampaignService = Provide[Container.campaign_service]) -> Response:
    actor = request_actor()
    changes = CampaignChanges(**partial_body(CampaignChangeRequest))
    service.change(_campaign_id(campaign_id), changes, actor=actor)
    if changes.changed():
        log.info("campaign changed", extra={"event": "promo_campaign_changed", "campaign_id": campaign_id,
                                            "fields": sorted(changes.changed()), "actor": actor})
    return _current(service, campaign_id)


@bp.post("/<int:campaign_id>/status")
@inject
def set_status(campaign_id: int, service: CampaignService = Provide[Container.campaign_service]) -> Response:
    actor = request_actor()
    req = body_as(StatusChangeRequest)
    campaign = service.set_status(_campaign_id(campaign_id), req.status, actor=actor, reason=req.reason)
    log.info("campaign status set", extra={"event": "promo_campaign_status_set", "campaign_id": campaign.id,
                                           "status": campaign.status.value, "actor": actor})
    return _current(service, campaign_id)


@bp.post("/<int:campaign_id>/codes")
@inject
def add_codes(
    campaign_id: int,
    batches: BatchService = Provide[Container.batch_service],
    codes: CodeService = Provide[Container.code_service],
) -> Response | tuple[Response, int]:
    """``count``: that many generated codes, answered as the report CSV; ``code``: one chosen code, answered as
    its row. Exactly one of the two."""
    actor = request_actor()
    data = request_json()
    given = {"count", "code"} & set(data) if isinstance(data, dict) else set()
    if given == {"code"}:
        one = shaped(data, AddCodeRequest)
        code = codes.add(_campaign_id(campaign_id), one.code, one.max_total_uses, actor=actor)
        log.info("code added", extra={"event": "promo_code_created", "campaign_id": campaign_id,
                                      "promo_code_id": code.id, "code_prefix": code.code_prefix, "actor": actor})
        return jsonify(code_json(code)), 201
    if given == {"count", "code"}:
        raise validation_error([{"field": "code", "message": "give either count (generated codes) or code "
                                                             "(one chosen code), not both"}])
    if isinstance(data, dict) and "count" not in data:
        raise validation_error([{"field": "count", "message": "required: count (generated codes) or code "
                                                              "(one chosen code)"}])
    batch = shaped(data, GenerateCodesRequest)
    report = CsvReport()
    result = batches.generate_into(_campaign_id(campaign_id), batch.count, report, actor=actor,
                                   code_max_total_uses=batch.max_total_uses, length=batch.length,
                                   prefix=batch.prefix)
    log.info("codes generated", extra={"event": "promo_codes_generated", "campaign_id": campaign_id,
                                       "count": result.inserted, "actor": actor})
    return report.response(f"campaign-{campaign_id}-codes.csv")


@bp.get("/<int:campaign_id>/stats")
@inject
def stats(campaign_id: int, reports: ReportService = Provide[Container.report_service]) -> Response:
    query = query_as(WindowQuery)
    return jsonify(dump(outputs.CampaignStats, reports.campaign_stats(_campaign_id(campaign_id), query.window_hours)))
