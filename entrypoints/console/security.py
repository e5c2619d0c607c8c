"""Console security (SPEC 13/14): who may see the console and what they may change.

- Address: the ``INTERNAL_IP_ALLOWLIST`` of the API applies (403 otherwise).
- Session: a signed cookie (``HttpOnly``, ``SameSite=Strict``, ``Path=/ops``, ``Secure`` when the request came
  over HTTPS) holding the operator's id, the operator's ``session_epoch`` and the sign-in time. A new password,
  a new role or a removed operator ends every session of that operator; a session ends ``OPS_SESSION_HOURS``
  after sign-in whatever the activity.
- Changes: every POST but sign-in/sign-out and the code lookup (a read) needs the ``admin`` role (a viewer's
  forged request is refused 403 before anything else is read) and the form's CSRF token (Flask-WTF), and a
  same-origin ``Origin`` when the browser sends one.
- Headers: a strict Content-Security-Policy (only this package's own script and style), no framing, no
  referrer, no caching of pages that show customer data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import attrs
from flask import Flask, Request, Response, abort, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from domain.operators import Operator, OperatorRole, OperatorService
from entrypoints.console.blueprint import bp
from entrypoints.container import Container
from entrypoints.http.auth import address_allowed, client_address
from entrypoints.settings import IpNetwork, Settings

CONSOLE_PREFIX = "/ops"
SESSION_COOKIE = "starpromo_ops"
PUBLIC_ENDPOINTS = frozenset({"ops.sign_in", "ops.static"})
# POSTs any signed-in role may send: sign-in/out, and the code lookup (a read sent by POST so that the typed code
# is in no address; it changes nothing).
ANY_ROLE_POSTS = frozenset({"ops.sign_in", "ops.sign_out", "ops.code_lookup"})

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

csrf = CSRFProtect()
log = logging.getLogger("starpromo.console")

F = TypeVar("F", bound=Callable[..., Any])


@attrs.frozen
class ConsoleConfig:
    allowlist: tuple[IpNetwork, ...]
    trusted_proxy_count: int
    session_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleConfig:
        return cls(settings.internal_ip_allowlist, settings.trusted_proxy_count, settings.ops_session_hours * 3600)


def is_https(req: Request, trusted_proxy_count: int) -> bool:
    """HTTPS as the client used it: the socket's scheme, or a trusted proxy's ``X-Forwarded-Proto``."""
    if req.scheme == "https":
        return True
    if trusted_proxy_count <= 0:
        return False
    protos = [p.strip().lower() for p in req.headers.get("X-Forwarded-Proto", "").split(",") if p.strip()]
    return len(protos) >= trusted_proxy_count and protos[-trusted_proxy_count] == "https"


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session with its own salt and ``Secure`` whenever the request came over HTTPS."""

    salt = "starpromo-ops-session"

    def __init__(self, trusted_proxy_count: int) -> None:
        self.trusted_proxy_count = trusted_proxy_count

    def get_cookie_secure(self, app: Flask) -> bool:
        return is_https(request, self.trusted_proxy_count)


def config() -> ConsoleConfig:
    value = current_app.extensions["starpromo.console"]
    assert isinstance(value, ConsoleConfig)
    return value


def container() -> Container:
    # An instance of a DeclarativeContainer is a DynamicContainer: no isinstance check is possible.
    return cast(Container, current_app.extensions["starpromo.container"])


def operator_service() -> OperatorService:
    service = container().operator_service()
    assert isinstance(service, OperatorService)
    return service


def client() -> str | None:
    return client_address(request.remote_addr, request.headers.get("X-Forwarded-For"), config().trusted_proxy_count)


def current_operator() -> Operator:
    """The signed-in operator of this request (views behind the sign-in only)."""
    op = g.get("operator")
    assert isinstance(op, Operator)
    return op


def is_admin() -> bool:
    op = g.get("operator")
    return isinstance(op, Operator) and op.role is OperatorRole.ADMIN


def start_session(op: Operator) -> None:
    session.clear()
    session.permanent = True
    session["op"] = op.id
    session["epoch"] = op.session_epoch
    session["at"] = int(time.time())


def end_session() -> None:
    session.clear()


def _session_operator() -> Operator | None:
    op_id, epoch, at = session.get("op"), session.get("epoch"), session.get("at")
    if not isinstance(op_id, int) or not isinstance(epoch, int) or not isinstance(at, int):
        return None
    if time.time() - at > config().session_seconds:
        return None
    op = operator_service().get_by_id(op_id)
    if op is None or op.session_epoch != epoch:
        return None
    return op


def _same_origin(origin: str) -> bool:
    parts = urlsplit(origin)
    return parts.netloc == request.host


@bp.before_request
def _guard() -> BaseResponse | None:
    cfg = config()
    if not address_allowed(client(), cfg.allowlist):
        abort(403, "client address is not in INTERNAL_IP_ALLOWLIST")
    endpoint = request.endpoint or ""
    if endpoint == "ops.static":
        return None
    op = _session_operator()
    if op is None and "op" in session:
        for key in ("op", "epoch", "at"):
            session.pop(key, None)
    g.operator = op
    if op is None and endpoint not in PUBLIC_ENDPOINTS:
        if request.method in ("GET", "HEAD"):
            return redirect(url_for("ops.sign_in", next=request.full_path if request.query_string else request.path))
        abort(401, "sign in first")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if op is not None and op.role is not OperatorRole.ADMIN and endpoint not in ANY_ROLE_POSTS:
            abort(403, "your role (viewer) may not change anything")
        origin = request.headers.get("Origin")
        if origin and origin != "null" and not _same_origin(origin):
            abort(403, "the request did not come from this console")
        csrf.protect()
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "ops.static":
        response.headers["Cache-Control"] = "no-store"
    return response


def page_url(cursor: int | None) -> str | None:
    """This page with the same query and another ``cursor`` (None when there is no next page)."""
    if cursor is None:
        return None
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "cursor"}
    return url_for(request.endpoint or "ops.overview", **(request.view_args or {}), **args, cursor=cursor)


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"operator": g.get("operator"), "is_admin": is_admin(), "page_url": page_url}


def render_error(status: int, title: str, message: str) -> tuple[str, int]:
    from flask import render_template

    return render_template("console/error.html", title=title, message=message, status=status), status


@bp.errorhandler(CSRFError)
def _csrf_error(exc: CSRFError) -> tuple[str, int]:
    return render_error(400, "Form refused",
                        "This form was not sent from a current console page (its security token is missing or "
                        "expired). Go back, reload the page and try again.")


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    status = exc.code or 500
    titles = {401: "Sign in first", 403: "Not allowed", 404: "Not found", 405: "Not allowed",
              413: "Upload too large", 429: "Too many requests"}
    return render_error(status, titles.get(status, "Error"), exc.description or "")


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> tuple[str, int]:
    """Anything unexpected: logged with its trace for ops, a plain page for the browser (never the trace)."""
    log.exception("console request failed", extra={"event": "ops_console_error", "endpoint": request.endpoint})
    return render_error(500, "Something went wrong",
                        "Something went wrong on the server. Try again; if it keeps failing, tell the team "
                        "running starpromo (the server log has the details).")


def safe_next(target: str | None) -> str:
    """A post-sign-in destination inside the console only (never another site)."""
    if target and target.startswith(CONSOLE_PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("ops.overview")
