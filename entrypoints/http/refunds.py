"""``POST /internal/promo/refund-rollback``: revoke a refunded purchase's promo redemption now.

The ``run_refund_promo_rollback`` job does the same for every refunded purchase every 5 minutes.
"""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify

from domain.maintenance import MaintenanceService
from entrypoints.container import Container
from entrypoints.http import outputs
from entrypoints.http._body import body_as
from entrypoints.http.actor import request_actor
from entrypoints.http.inputs import RefundRollbackRequest
from entrypoints.http.shapes import dump

bp = Blueprint("refunds", __name__, url_prefix="/internal/promo")


@bp.post("/refund-rollback")
@inject
def refund_rollback(service: MaintenanceService = Provide[Container.maintenance_service]) -> Response:
    actor = request_actor()
    req = body_as(RefundRollbackRequest)
    result = service.rollback_refund(req.purchase_id, actor=actor)
    return jsonify(dump(outputs.RefundRollbackResult, result))
