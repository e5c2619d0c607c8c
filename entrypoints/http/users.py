"""``GET /internal/users/{user_id}``: what support needs about one Telegram user.

Users are not stored as such: any valid id answers 200, with empty lists for a user the system never saw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify

from domain.policy import PromoPolicy
from domain.reports import ReportService
from entrypoints.container import Container
from entrypoints.http.schemas import user_json

if TYPE_CHECKING:
    from ports.clock import Clock

bp = Blueprint("users", __name__, url_prefix="/internal/users")


@bp.get("/<int:user_id>")
@inject
def get(
    user_id: int,
    reports: ReportService = Provide[Container.report_service],
    clock: Clock = Provide[Container.clock],
    policy: PromoPolicy = Provide[Container.policy],
) -> Response:
    """``user_id`` 0 or beyond 64 bits: 400 naming ``user_id`` (the domain's check)."""
    view = reports.user(user_id)
    return jsonify(user_json(view, clock.now(), policy.fail_limit, policy.fail_window_hours))
