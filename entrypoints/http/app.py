"""The Flask app factory: ``create_app(container)``.

Views get their services through dependency-injector wiring (``@inject`` + ``Provide[Container.x]``);
this factory wires the view modules to the container it is given, so nothing lives in module globals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from flask import Flask, Response, g, request

from entrypoints.container import Container
from entrypoints.http import campaigns, health, openapi, promo
from entrypoints.http.auth import INTERNAL_PREFIX, TOKEN_HEADER, InternalAuth
from entrypoints.http.errors import register_error_handlers

MAX_BODY_BYTES = 64 * 1024

access_log = logging.getLogger("starpromo.http.access")

VIEW_MODULES: Sequence[str] = (
    "entrypoints.http.promo",
    "entrypoints.http.campaigns",
    "entrypoints.http.health",
    "entrypoints.http.openapi",
)


def create_app(container: Container) -> Flask:
    """The internal API over ``container``. Raises ``ConfigurationError`` without ``INTERNAL_API_TOKEN``."""
    settings = container.settings()
    auth = InternalAuth.from_settings(settings)

    app = Flask("starpromo")
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, PROPAGATE_EXCEPTIONS=False, TRAP_HTTP_EXCEPTIONS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["starpromo.container"] = container
    container.wire(modules=list(VIEW_MODULES))

    register_error_handlers(app)

    @app.before_request
    def _start_and_authenticate() -> None:
        g.started = time.perf_counter()
        if request.path.startswith(INTERNAL_PREFIX) or request.path == INTERNAL_PREFIX.rstrip("/"):
            auth.check(request.remote_addr, request.headers.get("X-Forwarded-For"), request.headers.get(TOKEN_HEADER))

    @app.after_request
    def _access_log(response: Response) -> Response:
        started = g.get("started")
        rule = request.url_rule.rule if request.url_rule is not None else None
        # The path is logged only when it matched a route (digits at most): never free text a client sent.
        access_log.info(
            "request",
            extra={
                "event": "http_request",
                "method": request.method,
                "route": rule,
                "path": request.path if rule is not None else None,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
                "client": request.remote_addr,
            },
        )
        return response

    app.register_blueprint(health.bp)
    app.register_blueprint(promo.bp)
    app.register_blueprint(campaigns.bp)
    app.register_blueprint(openapi.bp)
    return app
