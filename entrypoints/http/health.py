"""``/healthz`` (liveness: the process answers) and ``/readyz`` (readiness: the database answers)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify

from entrypoints.container import Container
from entrypoints.http import outputs
from entrypoints.http.errors import error_response
from entrypoints.http.shapes import dump

if TYPE_CHECKING:
    from ports.repositories import UnitOfWorkFactory

log = logging.getLogger("starpromo.http.health")

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(dump(outputs.Health, status="ok"))


@bp.get("/readyz")
@inject
def readyz(uow_factory: UnitOfWorkFactory = Provide[Container.uow_factory]) -> Response:
    try:
        # One round trip through a unit of work: the database is reachable and the schema is there.
        with uow_factory() as uow:
            uow.promo_codes.get(0)
    except Exception as exc:
        log.warning("database not ready", extra={"event": "http_not_ready", "error_type": type(exc).__name__})
        return error_response(503, "NOT_READY", "database unreachable", {"database": "unreachable"})
    return jsonify(dump(outputs.Health, status="ready", database="ok"))
