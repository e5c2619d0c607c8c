"""``POST /internal/promo/redeem``: SPEC 4 outcomes -> HTTP statuses."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify

from domain.model import RedeemResult
from domain.redemption import RedeemOutcome, RedemptionService
from entrypoints.container import Container
from entrypoints.http import outputs
from entrypoints.http._body import body_as
from entrypoints.http.inputs import RedeemRequest
from entrypoints.http.schemas import redemption_json
from entrypoints.http.shapes import dump

if TYPE_CHECKING:
    from ports.clock import Clock

bp = Blueprint("promo", __name__, url_prefix="/internal/promo")

REDEEM_STATUS: dict[RedeemResult, int] = {
    RedeemResult.ACCEPTED: 200,
    RedeemResult.INVALID: 404,
    RedeemResult.PAUSED: 422,
    RedeemResult.EXPIRED: 422,
    RedeemResult.DEPLETED: 422,
    RedeemResult.NOT_APPLICABLE: 422,
    RedeemResult.ALREADY_USED: 409,
    RedeemResult.RATE_LIMITED: 429,
    RedeemResult.IDEMPOTENCY_KEY_REUSED: 409,
}

REDEEM_MESSAGES: dict[RedeemResult, str] = {
    RedeemResult.INVALID: "unknown or malformed promo code",
    RedeemResult.PAUSED: "this promo code is paused",
    RedeemResult.EXPIRED: "this promo code has expired",
    RedeemResult.DEPLETED: "this promo code has been used up",
    RedeemResult.NOT_APPLICABLE: "this promo code does not apply to this user now",
    RedeemResult.ALREADY_USED: "this user already redeemed this code, or the codes of its campaign allowed per user",
    RedeemResult.RATE_LIMITED: "too many failed attempts; retry later",
    RedeemResult.IDEMPOTENCY_KEY_REUSED: "idempotency_key was already used for another user or code",
}


@bp.post("/redeem")
@inject
def redeem(
    service: RedemptionService = Provide[Container.redemption_service],
    clock: Clock = Provide[Container.clock],
) -> Response:
    req = body_as(RedeemRequest)
    outcome = service.redeem(req.user_id, req.code, req.idempotency_key)
    return redeem_response(outcome, clock)


def redeem_response(outcome: RedeemOutcome, clock: Clock) -> Response:
    status = REDEEM_STATUS[outcome.result]
    if outcome.accepted:
        assert outcome.redemption is not None and outcome.campaign is not None
        response = jsonify(dump(outputs.RedeemAccepted, outcome, redemption=redemption_json(outcome.redemption,
                                                                                            outcome.campaign)))
    else:
        details: dict[str, Any] | None = None
        retry_after: int | None = None
        if outcome.retry_after is not None:
            retry_after = max(1, math.ceil((outcome.retry_after - clock.now()).total_seconds()))
            details = {"retry_after_seconds": retry_after}
        response = jsonify(dump(outputs.RedeemRejected, outcome, error={
            "code": outcome.result.value, "message": REDEEM_MESSAGES[outcome.result], "details": details}))
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
    response.status_code = status
    return response

