"""``GET /internal/promo/dashboard?window_hours=N``: conversion, failures, guard, payments and the hourly series
(SPEC 7), passed through as the domain builds them."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify

from domain.dashboard import DashboardService
from entrypoints.container import Container
from entrypoints.http._body import query_as
from entrypoints.http.inputs import WindowQuery

bp = Blueprint("dashboard", __name__, url_prefix="/internal/promo")


@bp.get("/dashboard")
@inject
def dashboard(service: DashboardService = Provide[Container.dashboard_service]) -> Response:
    return jsonify(service.metrics(query_as(WindowQuery).window_hours))
