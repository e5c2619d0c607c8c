"""Bot API calls through telebot (pyTelegramBotAPI), against ``{TELEGRAM_API_URL}/bot<token>/<method>``.

telebot keeps the API base in a module global (``telebot.apihelper.API_URL``). :func:`use_api_url` sets it
once, under a lock, to ``{base}/bot{0}/{1}``; every :class:`TelegramBotApi` calls it at construction. A
process therefore talks to one Bot API server at a time: a second client with another base moves every
client there (logged as ``telegram_api_url_changed``). Production has exactly one ``TELEGRAM_API_URL``;
tests start one fake server per test and build their clients after it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import requests
import telebot
from telebot import apihelper, types

from adapters.jsonlog import log_event
from domain.model import StarTransaction

log = logging.getLogger("starpromo.telegram")

DEFAULT_API_URL = "https://api.telegram.org"
STARS_CURRENCY = "XTR"
# The update kinds the bot handles (messages carry commands and payment service messages).
ALLOWED_UPDATES = ("message", "callback_query", "pre_checkout_query")
# Bot API connect/read timeouts (seconds): a slow Telegram never holds a webhook worker for long.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 15

_api_url_lock = threading.Lock()


def use_api_url(base: str) -> None:
    """Route telebot's calls to ``{base}/bot<token>/<method>`` (process-wide; see the module docstring)."""
    base = base.rstrip("/")
    template = f"{base}/bot{{0}}/{{1}}"
    with _api_url_lock:
        previous = apihelper.API_URL
        if previous == template:
            return
        # telebot declares these globals as None; they are format templates.
        apihelper.API_URL = template  # type: ignore[assignment]
        apihelper.FILE_URL = f"{base}/file/bot{{0}}/{{1}}"  # type: ignore[assignment]
        apihelper.CONNECT_TIMEOUT = CONNECT_TIMEOUT
        apihelper.READ_TIMEOUT = READ_TIMEOUT
    if previous is not None:
        log_event(log, "telegram_api_url_changed", level=logging.WARNING, api_url=base)


class TelegramApiError(Exception):
    """A Bot API call failed: Telegram said no (``error_code``, ``description``) or could not be reached."""

    def __init__(self, method: str, description: str, error_code: int | None = None) -> None:
        super().__init__(f"{method}: {description}")
        self.method = method
        self.description = description
        self.error_code = error_code


@attrs.frozen
class Button:
    """An inline keyboard button carrying ``callback_data`` (at most 64 bytes)."""

    text: str
    callback_data: str


def _redact(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


class TelegramBotApi:
    """The Bot API calls starpromo makes. Every failure is a :class:`TelegramApiError`."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL) -> None:
        if not token:
            raise ValueError("TELEGRAM_BOT_TOKEN is required")
        use_api_url(api_url)
        self._token = token
        # threaded=False: handlers run in the caller's thread (the webhook request or the RQ job).
        self.bot = telebot.TeleBot(token, threaded=False, parse_mode=None)

    def _call(self, method: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except apihelper.ApiTelegramException as exc:
            raise TelegramApiError(method, str(exc.description), int(exc.error_code)) from None
        except apihelper.ApiException as exc:  # HTTP error without a Bot API body, or invalid JSON
            status = getattr(getattr(exc, "result", None), "status_code", None)
            raise TelegramApiError(method, _redact(f"unexpected answer (HTTP {status})", self._token),
                                   status) from None
        except requests.RequestException as exc:
            raise TelegramApiError(method, _redact(f"Bot API unreachable: {type(exc).__name__}",
                                                   self._token)) from None

    # --- messages ------------------------------------------------------------------------------------

    def send_message(self, chat_id: int, text: str, buttons: Sequence[Sequence[Button]] = ()) -> int:
        """Send a plain-text message, with an inline keyboard when ``buttons`` has rows; its message id."""
        markup = None
        if buttons:
            markup = types.InlineKeyboardMarkup()
            for row in buttons:
                markup.row(*(types.InlineKeyboardButton(b.text, callback_data=b.callback_data) for b in row))
        msg = self._call("sendMessage", self.bot.send_message, chat_id, text, reply_markup=markup)
        return int(msg.message_id)

    def send_invoice(self, chat_id: int, title: str, description: str, payload: str, label: str,
                     amount: int) -> int:
        """An invoice in Telegram Stars: currency ``XTR``, empty provider token, one price of ``amount``."""
        msg = self._call("sendInvoice", self.bot.send_invoice, chat_id, title, description, payload,
                         provider_token="", currency=STARS_CURRENCY,
                         prices=[types.LabeledPrice(label=label, amount=amount)])  # type: ignore[no-untyped-call]
        return int(msg.message_id)

    def answer_pre_checkout_query(self, query_id: str, ok: bool, error_message: str | None = None) -> None:
        self._call("answerPreCheckoutQuery", self.bot.answer_pre_checkout_query, query_id, ok,
                   error_message=error_message)

    def answer_callback_query(self, callback_query_id: str, text: str | None = None) -> None:
        self._call("answerCallbackQuery", self.bot.answer_callback_query, callback_query_id, text=text)

    # --- payments ------------------------------------------------------------------------------------

    def refund_star_payment(self, user_id: int, telegram_payment_charge_id: str) -> None:
        self._call("refundStarPayment", self.bot.refund_star_payment, user_id, telegram_payment_charge_id)

    def get_star_transactions(self, offset: int, limit: int) -> list[StarTransaction]:
        """One page of the bot's Star transactions (Telegram lists them newest first)."""
        # Raw JSON rather than telebot's types: only the fields below matter, and new partner types
        # Telegram adds must not break parsing.
        raw = self._call("getStarTransactions", apihelper.get_star_transactions, self._token, offset or None, limit)
        items = raw.get("transactions", []) if isinstance(raw, dict) else []
        return [tx for tx in (star_transaction(item) for item in items) if tx is not None]

    # --- updates: webhook and polling ---------------------------------------------------------------

    def set_webhook(self, url: str, secret_token: str | None) -> None:
        self._call("setWebhook", self.bot.set_webhook, url=url, secret_token=secret_token,
                   allowed_updates=list(ALLOWED_UPDATES))

    def get_updates(self, offset: int, long_polling_timeout: int, limit: int = 100) -> list[dict[str, Any]]:
        """Raw updates (JSON objects) from ``offset`` on, waiting up to ``long_polling_timeout`` seconds."""
        raw = self._call("getUpdates", apihelper.get_updates, self._token, offset or None, limit, None,
                         list(ALLOWED_UPDATES), max(1, long_polling_timeout))
        return [u for u in raw if isinstance(u, dict)] if isinstance(raw, list) else []

    def delete_webhook(self) -> None:
        self._call("deleteWebhook", self.bot.delete_webhook)

    def get_me(self) -> dict[str, Any]:
        me = self._call("getMe", self.bot.get_me)
        return {"id": me.id, "username": me.username}


def star_transaction(item: Any) -> StarTransaction | None:
    """A ``StarTransaction`` from the Bot API JSON; None for something that is not one.

    An incoming payment has a user ``source`` (with its ``invoice_payload``); a refund has a user
    ``receiver``. Other partners (Fragment withdrawals, ads) keep ``user_id`` None.
    """
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return None
    amount, date = item.get("amount"), item.get("date")
    if isinstance(amount, bool) or not isinstance(amount, int) or isinstance(date, bool) or not isinstance(date, int):
        return None
    source, receiver = item.get("source"), item.get("receiver")
    outgoing = receiver is not None and source is None
    partner = receiver if outgoing else source
    user_id: int | None = None
    payload: str | None = None
    if isinstance(partner, dict) and partner.get("type") == "user" and isinstance(partner.get("user"), dict):
        uid = partner["user"].get("id")
        user_id = uid if isinstance(uid, int) and not isinstance(uid, bool) else None
        pl = partner.get("invoice_payload")
        payload = pl if isinstance(pl, str) else None
    return StarTransaction(id=item["id"], amount=amount, date=datetime.fromtimestamp(date, UTC), user_id=user_id,
                           outgoing=outgoing, payload=payload)
