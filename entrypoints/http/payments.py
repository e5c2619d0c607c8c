"""``/internal/payments/{purchase_id}/refund``: refund through Telegram ``refundStarPayment``, mark REFUNDED."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify

from domain.checkout import CheckoutService
from entrypoints.container import Container
from entrypoints.http._body import body_as
from entrypoints.http.actor import request_actor
from entrypoints.http.convert import MAX_INT64
from entrypoints.http.inputs import EmptyRequest
from entrypoints.http.schemas import not_found, purchase_json

if TYPE_CHECKING:
    from ports.payments import PaymentGateway

log = logging.getLogger("starpromo.http.payments")

bp = Blueprint("payments", __name__, url_prefix="/internal/payments")


@bp.post("/<int:purchase_id>/refund")
@inject
def refund(
    purchase_id: int,
    checkout: CheckoutService = Provide[Container.checkout_service],
    # Optional: the route is served only when the container's payment_gateway is defined.
    gateway: PaymentGateway = Provide[Container.payment_gateway],
) -> Response:
    """Idempotent: an already REFUNDED purchase is answered as it is; anything but PAID/REFUNDED is 409."""
    actor = request_actor()
    body_as(EmptyRequest)
    if purchase_id > MAX_INT64:
        raise not_found(f"purchase {purchase_id}")
    purchase = checkout.refund(purchase_id, gateway, actor=actor)
    log.info("purchase refunded", extra={"event": "payment_refunded", "purchase_id": purchase.id,
                                         "status": purchase.status.value, "actor": actor})
    return jsonify(purchase_json(purchase))
