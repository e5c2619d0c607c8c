"""The Flask app factory: ``create_app(container)``.

Views get their services through dependency-injector wiring (``@inject`` + ``Provide[Container.x]``);
this factory wires the view modules to the container it is given, so nothing lives in module globals.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Sequence

import attrs
from dependency_injector import providers
from flask import Flask, Response, g, request

from entrypoints.container import Container
from entrypoints.http import audit, campaigns, codes, health, metrics, openapi, promo, users
from entrypoints.http.auth import INTERNAL_PREFIX, TOKEN_HEADER, InternalAuth
from entrypoints.http.errors import register_error_handlers
from entrypoints.http.observability import install_observability

MAX_BODY_BYTES = 64 * 1024

access_log = logging.getLogger("starpromo.http.access")

VIEW_MODULES: Sequence[str] = (
    "entrypoints.http.promo",
    "entrypoints.http.campaigns",
    "entrypoints.http.codes",
    "entrypoints.http.audit",
    "entrypoints.http.users",
    "entrypoints.http.health",
    "entrypoints.http.openapi",
    "entrypoints.http.metrics",
)


@attrs.frozen
class Feature:
    """Routes served when the container provides the services they need (and documented only then)."""

    name: str
    module: str
    providers: tuple[str, ...]


FEATURES: tuple[Feature, ...] = (
    Feature("refund_rollback", "entrypoints.http.refunds", ("maintenance_service",)),
    Feature("payments", "entrypoints.http.payments", ("checkout_service", "payment_gateway")),
    Feature("dashboard", "entrypoints.http.dashboard", ("dashboard_service",)),
    Feature("telegram_webhook", "entrypoints.http.webhook", ("telegram_bot",)),
)


def _provides(container: Container, name: str) -> bool:
    provider = container.providers.get(name)
    if isinstance(provider, providers.Dependency):
        return bool(provider.is_defined)
    return provider is not None


def enabled_features(container: Container) -> list[Feature]:
    return [f for f in FEATURES if all(_provides(container, p) for p in f.providers)]


def create_app(container: Container) -> Flask:
    """The internal API over ``container``. Raises ``ConfigurationError`` without ``INTERNAL_API_TOKEN``."""
    settings = container.settings()
    auth = InternalAuth.from_settings(settings)

    app = Flask("starpromo")
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, PROPAGATE_EXCEPTIONS=False, TRAP_HTTP_EXCEPTIONS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["starpromo.container"] = container
    features = enabled_features(container)
    app.extensions["starpromo.features"] = frozenset(f.name for f in features)
    # packages=[]: wire exactly these modules, not every module of the wiring_config package.
    container.wire(modules=[*VIEW_MODULES, *(f.module for f in features)], packages=[])

    register_error_handlers(app)
    install_observability(app, container.metrics())  # first: X-Request-Id even on a refused request

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
    app.register_blueprint(metrics.bp)
    app.register_blueprint(promo.bp)
    app.register_blueprint(campaigns.bp)
    app.register_blueprint(codes.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(users.bp)
    app.register_blueprint(openapi.bp)
    for feature in features:
        app.register_blueprint(importlib.import_module(feature.module).bp)
    # The ops console under /ops/ (SPEC 14), served when OPS_SESSION_SECRET is set.
    from entrypoints.console import register_console

    register_console(app, container)
    return app
