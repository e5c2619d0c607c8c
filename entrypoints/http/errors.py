"""JSON errors for every failure the API can produce: ``{"error": {"code", "message", "details"}}``.

Never an HTML page, never a stack trace: HTTP exceptions raised by Flask/Werkzeug (404, 405, 413, ...)
and anything unexpected (500) go through the same handlers as domain errors.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from domain import errors as domain_errors

log = logging.getLogger("starpromo.http")

# Werkzeug status -> our stable error code.
HTTP_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "NOT_READY",
}

# Domain error class -> HTTP status. Checked in order (subclasses first).
DOMAIN_STATUSES: tuple[tuple[type[domain_errors.DomainError], int], ...] = (
    (domain_errors.ValidationError, 400),
    (domain_errors.NotFound, 404),
    (domain_errors.CodeExists, 409),
    (domain_errors.CampaignExists, 409),
    (domain_errors.InvalidChange, 409),
    (domain_errors.InvalidTransition, 409),
    (domain_errors.PurchaseNotRefunded, 409),
    (domain_errors.NoPromoRedemption, 409),
    (domain_errors.InvalidPurchaseState, 409),
    (domain_errors.CheckoutError, 409),
    (domain_errors.PaymentRefundError, 502),
    (domain_errors.ConfigurationError, 500),
    (domain_errors.StorageUnavailable, 503),
)


class ApiError(Exception):
    """An error response raised from a view: status, stable code, message and details."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def validation_error(errors: list[dict[str, str]]) -> ApiError:
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return ApiError(400, "VALIDATION_ERROR", f"invalid input: {fields}", errors)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """``outputs.Error``. Imported here: outputs -> shapes -> convert needs this module first."""
    from entrypoints.http import outputs
    from entrypoints.http.shapes import dump

    return dump(outputs.Error, error={"code": code, "message": message, "details": details})


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    response = jsonify(error_body(code, message, details))
    response.status_code = status
    return response


def domain_status(exc: domain_errors.DomainError) -> int:
    for cls, status in DOMAIN_STATUSES:
        if isinstance(exc, cls):
            return status
    return 409


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(domain_errors.ValidationError)
    def _validation(exc: domain_errors.ValidationError) -> Response:
        return error_response(400, exc.code, exc.message, exc.errors)

    @app.errorhandler(domain_errors.DomainError)
    def _domain(exc: domain_errors.DomainError) -> Response:
        status = domain_status(exc)
        if status >= 500:
            log.error("domain error %s", exc.code, extra={"event": "http_domain_error", "code": exc.code})
        return error_response(status, exc.code, exc.message, exc.details)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = HTTP_CODES.get(status, "HTTP_ERROR")
        message = exc.description or code.replace("_", " ").lower()
        if status == 413:
            message = f"request body larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        response = error_response(status, code, message)
        # Keep protocol headers such as ``Allow`` on a 405; the body is ours.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # The type and the frames are enough to find it; the message could echo request input.
        log.error("unhandled %s", type(exc).__name__,
                  extra={"event": "http_unhandled_error", "error_type": type(exc).__name__,
                         "stack": traceback.format_tb(exc.__traceback__)})
        return error_response(500, "INTERNAL_ERROR", "internal error")
