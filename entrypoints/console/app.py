"""Registers the console blueprint on the Flask app: session cookie, CSRF, security headers, error pages."""

from __future__ import annotations

import importlib
from datetime import timedelta

from flask import Flask

from entrypoints.console import security
from entrypoints.console.blueprint import bp
from entrypoints.container import Container
from entrypoints.settings import Settings

# Each module adds its routes to ``bp`` when imported; the order is the order of the navigation.
VIEW_MODULES = (
    "entrypoints.console.views.auth",
    "entrypoints.console.views.overview",
    "entrypoints.console.views.campaigns",
    "entrypoints.console.views.campaign_codes",
    "entrypoints.console.views.codes",
    "entrypoints.console.views.users",
    "entrypoints.console.views.payments",
    "entrypoints.console.views.audit",
)

# Code generation and CSV import from the console: the largest request body the console accepts.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024


def console_enabled(settings: Settings) -> bool:
    return bool(settings.ops_session_secret)


def register_console(app: Flask, container: Container) -> None:
    """Serve the console under ``/ops/`` (only when ``OPS_SESSION_SECRET`` is set)."""
    settings = container.settings()
    if not console_enabled(settings):
        return
    for module in VIEW_MODULES:
        importlib.import_module(module)
    app.config.update(
        SECRET_KEY=settings.ops_session_secret,
        SESSION_COOKIE_NAME=security.SESSION_COOKIE,
        SESSION_COOKIE_PATH=security.CONSOLE_PREFIX,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.ops_session_hours),
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by the console blueprint only: the API has no cookies
        WTF_CSRF_TIME_LIMIT=settings.ops_session_hours * 3600,
        WTF_CSRF_SSL_STRICT=False,  # SameSite=Strict and the Origin check below do that job
    )
    app.session_interface = security.ConsoleSessionInterface(settings.trusted_proxy_count)
    security.csrf.init_app(app)
    app.extensions["starpromo.console"] = security.ConsoleConfig.from_settings(settings)
    app.register_blueprint(bp)
