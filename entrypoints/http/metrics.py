"""``GET /metrics``: the Prometheus text exposition (SPEC 15). No token (a Prometheus server scrapes it), but
only from an address in ``INTERNAL_IP_ALLOWLIST``: the same network boundary as ``/internal/*``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, request

from adapters.prometheus import CONTENT_TYPE, PrometheusMetrics, StateGauges
from entrypoints.container import Container
from entrypoints.http.auth import InternalAuth
from entrypoints.http.errors import ApiError

if TYPE_CHECKING:
    from entrypoints.settings import Settings
    from ports.metrics import Metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@inject
def metrics(
    settings: Settings = Provide[Container.settings],
    recorder: Metrics = Provide[Container.metrics],
    state: StateGauges = Provide[Container.state_gauges],
) -> Response:
    InternalAuth.from_settings(settings).check_address(request.remote_addr, request.headers.get("X-Forwarded-For"))
    if not isinstance(recorder, PrometheusMetrics):
        raise ApiError(404, "NOT_FOUND", "metrics are recorded elsewhere in this process (not Prometheus)")
    return Response(recorder.exposition(state), content_type=CONTENT_TYPE)
