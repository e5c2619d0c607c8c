"""``/healthz`` (liveness: the process answers) and ``/readyz`` (readiness: the database answers; Redis is
reported too when ``REDIS_URL`` is set).

Redis down makes ``/readyz`` say ``"status": "degraded", "redis": "down"`` with 200, not 503: redeem over HTTP
and the bot keep working without Redis (SPEC 13), so a load balancer must not take this server out of rotation
for it (docs/decisions.md). The database is what 503 is for."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify

from entrypoints.container import Container
from entrypoints.http import outputs
from entrypoints.http.errors import error_response
from entrypoints.http.shapes import dump
from entrypoints.settings import Settings

if TYPE_CHECKING:
    from ports.repositories import UnitOfWorkFactory

log = logging.getLogger("starpromo.http.health")

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(dump(outputs.Health, status="ok"))


REDIS_PING_TIMEOUT_SECONDS = 1.0


def redis_state(url: str | None) -> str:
    """``ok``, ``down`` or ``not_configured``: one PING with a short timeout."""
    if not url:
        return "not_configured"
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=REDIS_PING_TIMEOUT_SECONDS,
                            socket_timeout=REDIS_PING_TIMEOUT_SECONDS)
    try:
        return "ok" if client.ping() else "down"
    except (RedisError, OSError) as exc:
        log.warning("redis not reachable", extra={"event": "http_redis_down", "error_type": type(exc).__name__})
        return "down"
    finally:
        client.close()


@bp.get("/readyz")
@inject
def readyz(uow_factory: UnitOfWorkFactory = Provide[Container.uow_factory],
           settings: Settings = Provide[Container.settings]) -> Response:
    try:
        # One round trip through a unit of work: the database is reachable and the schema is there.
        with uow_factory() as uow:
            uow.promo_codes.get(0)
    except Exception as exc:
        log.warning("database not ready", extra={"event": "http_not_ready", "error_type": type(exc).__name__})
        return error_response(503, "NOT_READY", "database unreachable", {"database": "unreachable"})
    redis = redis_state(settings.redis_url)
    status = "degraded" if redis == "down" else "ready"
    return jsonify(dump(outputs.Health, status=status, database="ok", redis=redis))
