"""``POST /webhook/telegram``: Telegram delivers updates here (served when ``TELEGRAM_BOT_TOKEN`` is set).

The ``X-Telegram-Bot-Api-Secret-Token`` header must equal ``TELEGRAM_WEBHOOK_SECRET`` (constant-time
compare; without a configured secret every delivery is refused). Anything that passes is answered 200 —
duplicates and garbage too, since Telegram redelivers whatever is not 2xx — except a database outage
(503), after which Telegram's redelivery is exactly what we want.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING

from dependency_injector.wiring import Provide, inject
from flask import Blueprint, Response, jsonify, request

from adapters.jsonlog import log_event
from entrypoints.container import Container
from entrypoints.http.errors import error_response

if TYPE_CHECKING:
    from entrypoints.bot.intake import UpdateIntake
    from entrypoints.settings import Settings

log = logging.getLogger("starpromo.http.webhook")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)

bp = Blueprint("telegram_webhook", __name__)


def secret_matches(configured: str | None, sent: str | None) -> bool:
    if not configured or sent is None:
        return False
    return hmac.compare_digest(configured.encode(), sent.encode())


@bp.post("/webhook/telegram")
@inject
def telegram_webhook(
    settings: Settings = Provide[Container.settings],
    intake: UpdateIntake = Provide[Container.telegram_intake],
) -> Response:
    if not secret_matches(settings.telegram_webhook_secret, request.headers.get(SECRET_HEADER)):
        log_event(log, "telegram_webhook_forbidden", level=logging.WARNING, client=request.remote_addr,
                  secret_configured=bool(settings.telegram_webhook_secret))
        return error_response(403, "FORBIDDEN", f"missing or wrong {SECRET_HEADER}")
    try:
        raw = json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep to parse
        log_event(log, "telegram_update_ignored", level=logging.WARNING, reason="body is not JSON")
        return jsonify({"ok": True, "result": "ignored"})
    outcome = intake.take(raw)
    return jsonify({"ok": True, "result": outcome.value})
