"""``GET /internal/promo/dashboard?window_hours=N``: conversion, failures and guard metrics (SPEC 7)."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify, request

from domain.dashboard import DEFAULT_WINDOW_HOURS, MAX_WINDOW_HOURS, MIN_WINDOW_HOURS, DashboardService
from entrypoints.container import Container
from entrypoints.http.errors import validation_error

bp = Blueprint("dashboard", __name__, url_prefix="/internal/promo")


def _window_hours() -> int:
    raw = request.args.get("window_hours")
    if raw is None:
        return DEFAULT_WINDOW_HOURS
    if raw.isascii() and raw.isdigit() and len(raw) <= 4 and MIN_WINDOW_HOURS <= int(raw) <= MAX_WINDOW_HOURS:
        return int(raw)
    raise validation_error([{"field": "window_hours",
                             "message": f"must be an integer {MIN_WINDOW_HOURS}..{MAX_WINDOW_HOURS}"}])


@bp.get("/dashboard")
@inject
def dashboard(service: DashboardService = Provide[Container.dashboard_service]) -> Response:
    return jsonify(service.metrics(_window_hours()))
