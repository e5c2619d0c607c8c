"""``POST /internal/promo/refund-rollback``: revoke a refunded purchase's promo redemption now.

The ``run_refund_promo_rollback`` job does the same for every refunded purchase every 5 minutes.
"""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify

from domain.maintenance import MaintenanceService
from entrypoints.container import Container
from entrypoints.http._body import body_as
from entrypoints.http.schemas import RefundRollbackRequest, positive_id

bp = Blueprint("refunds", __name__, url_prefix="/internal/promo")


@bp.post("/refund-rollback")
@inject
def refund_rollback(service: MaintenanceService = Provide[Container.maintenance_service]) -> Response:
    req = body_as(RefundRollbackRequest)
    result = service.rollback_refund(positive_id(req.purchase_id, "purchase_id"))
    return jsonify(result.as_dict())
