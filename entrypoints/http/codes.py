"""``/internal/promo/codes``: list, read, pause/resume one code, and the support lookup of a typed code.

The lookup takes the plaintext in the body (never the path or query, which access logs keep), writes no attempt
and logs nothing of the code; the answer shows the code's row (``code_hash``, ``code_prefix``) and campaign.
"""

from __future__ import annotations

import logging

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify

from domain.campaigns import CampaignService
from domain.model import CodeFilter
from domain.promo_codes import CodeService
from entrypoints.container import Container
from entrypoints.http import outputs
from entrypoints.http._body import body_as, query_as
from entrypoints.http.actor import request_actor
from entrypoints.http.convert import MAX_INT64
from entrypoints.http.inputs import CodeQuery, LookupRequest, StatusChangeRequest
from entrypoints.http.schemas import campaign_json, code_json, not_found, page_json
from entrypoints.http.shapes import dump

log = logging.getLogger("starpromo.http.codes")

bp = Blueprint("codes", __name__, url_prefix="/internal/promo/codes")


def _code_id(promo_code_id: int) -> int:
    if promo_code_id > MAX_INT64:
        raise not_found(f"code {promo_code_id}")
    return promo_code_id


@bp.get("")
@inject
def list_codes(service: CodeService = Provide[Container.code_service]) -> Response:
    """Oldest first (by id); ``next_cursor`` continues after the last code of the page."""
    query = query_as(CodeQuery)
    flt = CodeFilter(campaign_id=query.campaign_id, status=query.status, code_prefix=query.code_prefix)
    page = service.list_codes(flt, limit=query.limit, cursor=query.cursor)
    return jsonify(page_json(outputs.CodePage, [code_json(c) for c in page.items], page.next_cursor))


@bp.get("/<int:promo_code_id>")
@inject
def get(promo_code_id: int, service: CodeService = Provide[Container.code_service]) -> Response:
    return jsonify(code_json(service.get(_code_id(promo_code_id))))


@bp.post("/<int:promo_code_id>/status")
@inject
def set_status(promo_code_id: int, service: CodeService = Provide[Container.code_service]) -> Response:
    actor = request_actor()
    req = body_as(StatusChangeRequest)
    code = service.set_status(_code_id(promo_code_id), req.status, actor=actor, reason=req.reason)
    log.info("code status set", extra={"event": "promo_code_status_set", "promo_code_id": code.id,
                                       "campaign_id": code.campaign_id, "code_prefix": code.code_prefix,
                                       "status": code.status.value, "actor": actor})
    return jsonify(code_json(code))


@bp.post("/lookup")
@inject
def lookup(
    codes: CodeService = Provide[Container.code_service],
    campaigns: CampaignService = Provide[Container.campaign_service],
) -> Response:
    found = codes.lookup(body_as(LookupRequest).code)
    return jsonify(dump(outputs.CodeLookup, code=found.code,
                        campaign=campaign_json(campaigns.get(found.campaign.id or 0))))
