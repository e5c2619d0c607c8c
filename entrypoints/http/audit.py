"""``GET /internal/promo/audit``: the audit log, newest first, filtered by actor, action and target."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify

from domain.audit import AuditService
from domain.model import AuditFilter
from entrypoints.container import Container
from entrypoints.http import outputs
from entrypoints.http._body import query_as
from entrypoints.http.inputs import AuditQuery
from entrypoints.http.schemas import audit_json, page_json

bp = Blueprint("audit", __name__, url_prefix="/internal/promo")


@bp.get("/audit")
@inject
def list_entries(service: AuditService = Provide[Container.audit_service]) -> Response:
    query = query_as(AuditQuery)
    flt = AuditFilter(actor=query.actor, action=query.action, target_type=query.target_type,
                      target_id=query.target_id)
    page = service.list_entries(flt, limit=query.limit, cursor=query.cursor)
    return jsonify(page_json(outputs.AuditPage, [audit_json(e) for e in page.items], page.next_cursor))
