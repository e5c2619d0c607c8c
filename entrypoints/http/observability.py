"""Every request: an ``X-Request-Id`` in and out, on every log line of the request (SPEC 7), and its count,
status and time in the metrics (SPEC 15).

The id is the client's when it sent a sane one (1..128 of ``[A-Za-z0-9._-]``: safe in a log line and a
header), else a fresh ``uuid4`` hex. It is bound to the logging context for the request's whole life, so the
access log, error lines and whatever the domain or a library logs meanwhile all carry ``request_id``.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING

from flask import Flask, Response, g, request

from adapters.jsonlog import bind_log_context, reset_log_context

if TYPE_CHECKING:
    from ports.metrics import Metrics

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
UNMATCHED_ROUTE = "unmatched"
# A method label from this set or "other": label values must never be free client input (series explode).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_id_from(header: str | None) -> str:
    """The client's id when it is sane, else a new one."""
    if header is not None and REQUEST_ID_PATTERN.fullmatch(header):
        return header
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """The id of the request being handled (None outside a request)."""
    value = g.get("request_id")
    return str(value) if value is not None else None


def install_observability(app: Flask, metrics: Metrics) -> None:
    """Register the hooks. Call before any other ``before_request`` hook, so that an access refused there (403,
    401) is still logged and answered with its id."""

    @app.before_request
    def _begin() -> None:
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        g.log_context_token = bind_log_context(request_id=g.request_id)
        g.observed_since = time.perf_counter()
        g.observed = False
        metrics.http_request_started()

    @app.after_request
    def _finish(response: Response) -> Response:
        if g.get("request_id") is not None:
            response.headers[REQUEST_ID_HEADER] = g.request_id
            _record(metrics, response.status_code)
        return response

    @app.teardown_request
    def _end(_exc: BaseException | None) -> None:
        if g.get("request_id") is None:
            return
        if not g.get("observed", True):  # no response was made (an after_request hook raised): a 500 for us
            _record(metrics, 500)
        token = g.pop("log_context_token", None)
        if token is not None:
            reset_log_context(token)


def _record(metrics: Metrics, status: int) -> None:
    g.observed = True
    rule = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE
    method = request.method if request.method in KNOWN_METHODS else "other"
    metrics.http_request_finished(rule, method, status, time.perf_counter() - g.observed_since)
