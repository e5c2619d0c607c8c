"""``GET /internal/promo/dashboard?window_hours=N``: conversion, failures, guard, payments and the hourly series
(SPEC 7), as the domain builds them and ``outputs.Dashboard`` declares them."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify

from domain.dashboard import DashboardService
from entrypoints.container import Container
from entrypoints.http import outputs
from entrypoints.http._body import query_as
from entrypoints.http.inputs import WindowQuery
from entrypoints.http.shapes import dump

bp = Blueprint("dashboard", __name__, url_prefix="/internal/promo")


@bp.get("/dashboard")
@inject
def dashboard(service: DashboardService = Provide[Container.dashboard_service]) -> Response:
    return jsonify(dump(outputs.Dashboard, service.metrics(query_as(WindowQuery).window_hours)))
