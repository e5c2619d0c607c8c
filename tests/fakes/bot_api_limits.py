"""The Bot API's documented limits, as the fake Bot API (tests/fakes/bot_api.py) enforces them.

Like Telegram, the fake refuses with 400 what breaks the Bot API's documented limits: a message text of 1..4096
characters, ``callback_data`` of 1..64 bytes, an invoice ``title`` of 1..32 and ``description`` of 1..255
characters, a ``payload`` of 1..128 bytes, a Stars (``XTR``) invoice price that is not a positive integer, an
``answerCallbackQuery`` text over 200 characters, and a call without a parameter its method requires.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.fakes.bot_api import Call

# The Bot API's documented limits (sendMessage, InlineKeyboardButton, sendInvoice, answerCallbackQuery).
MAX_MESSAGE_TEXT = 4096
MAX_CALLBACK_DATA_BYTES = 64
MAX_INVOICE_TITLE = 32
MAX_INVOICE_DESCRIPTION = 255
MAX_INVOICE_PAYLOAD_BYTES = 128
MAX_CALLBACK_ANSWER_TEXT = 200


class ApiError(Exception):
    def __init__(self, error_code: int, description: str) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description


def check_limits(call: Call) -> None:
    """400 for what breaks the Bot API's documented limits (see the module docstring)."""
    p, m = call.params, call.method
    if m == "sendMessage" and not 1 <= len(p.get("text", "")) <= MAX_MESSAGE_TEXT:
        raise ApiError(400, "Bad Request: message text is empty" if not p.get("text")
                        else "Bad Request: message is too long")
    if m in ("sendMessage", "sendInvoice") and "reply_markup" in p:
        for row in json.loads(p["reply_markup"]).get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
    if m == "sendInvoice":
        if not 1 <= len(p.get("title", "")) <= MAX_INVOICE_TITLE:
            raise ApiError(400, "Bad Request: INVOICE_TITLE_INVALID")
        if not 1 <= len(p.get("description", "")) <= MAX_INVOICE_DESCRIPTION:
            raise ApiError(400, "Bad Request: INVOICE_DESCRIPTION_INVALID")
        if not 1 <= len(p.get("payload", "").encode()) <= MAX_INVOICE_PAYLOAD_BYTES:
            raise ApiError(400, "Bad Request: INVOICE_PAYLOAD_INVALID")
        if p.get("currency") == "XTR" and "prices" in p:
            amounts = [price.get("amount") for price in json.loads(p["prices"])]
            if any(isinstance(a, bool) or not isinstance(a, int) or a < 1 for a in amounts):
                raise ApiError(400, "Bad Request: STARS_INVOICE_INVALID")
    if m == "answerCallbackQuery" and len(p.get("text") or "") > MAX_CALLBACK_ANSWER_TEXT:
        raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")


def require(p: dict[str, str], *names: str) -> None:
    missing = [n for n in names if n not in p]
    if missing:
        raise ApiError(400, f"Bad Request: {missing[0]} is required")
