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
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import requests
import telebot
from telebot import apihelper, types

from adapters.jsonlog import log_event
from adapters.telegram.limits import DEFAULT_API_URL
from domain.model import StarTransaction
from ports.metrics import Metrics

log = logging.getLogger("starpromo.telegram")

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

    def __init__(self, method: str, description: str, error_code: int | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(f"{method}: {description}")
        self.method = method
        self.description = description
        self.error_code = error_code
        # Telegram's flood control (429): seconds to wait before this call may be made again.
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Worth another try: unreachable, 5xx, or 429. A 400 (or any other 4xx) gets the same answer again."""
        return self.error_code is None or self.error_code >= 500 or self.error_code == 429


@attrs.frozen
class RetryPolicy:
    """How one Bot API call meets a refusal it may outlive.

    A 429 waits ``parameters.retry_after`` and tries again (``wait_on_429=False``: raises at once, carrying
    ``retry_after``, for a caller that reschedules instead of waiting). A 5xx or an unreachable Bot API backs off
    (``backoff``, doubling) and tries again, ``attempts`` tries in all. A 400 or any other 4xx is never retried.
    No call waits more than ``max_wait`` seconds in total: past that the last error is raised."""

    attempts: int = 3
    max_wait: float = 10.0
    backoff: float = 0.5
    wait_on_429: bool = True


DEFAULT_RETRY = RetryPolicy()
_MAX_429_TRIES = 10
# Telegram cancels a payment whose pre-checkout query is not answered within 10 s.
PRE_CHECKOUT_RETRY = RetryPolicy(attempts=3, max_wait=4.0, backoff=0.3)


@attrs.frozen
class Button:
    """An inline keyboard button carrying ``callback_data`` (at most 64 bytes)."""

    text: str
    callback_data: str


def _redact(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


class TelegramBotApi:
    """The Bot API calls starpromo makes. Every failure is a :class:`TelegramApiError`."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, metrics: Metrics | None = None,
                 retry: RetryPolicy = DEFAULT_RETRY) -> None:
        if not token:
            raise ValueError("TELEGRAM_BOT_TOKEN is required")
        use_api_url(api_url)
        self._token = token
        self._metrics = metrics
        self.retry = retry
        # threaded=False: handlers run in the caller's thread (the webhook request or the RQ job).
        self.bot = telebot.TeleBot(token, threaded=False, parse_mode=None)

    def _call(self, method: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` under this client's :class:`RetryPolicy`."""
        return self._call_with(self.retry, method, fn, *args, **kwargs)

    def _call_with(self, policy: RetryPolicy, method: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        waited = 0.0
        tries = 0
        while True:
            tries += 1
            try:
                return self._attempt(method, fn, *args, **kwargs)
            except TelegramApiError as exc:
                wait = _wait_before_retry(policy, exc, tries)
                if wait is None or waited + wait > policy.max_wait:
                    raise
                log_event(log, "telegram_api_retry", level=logging.WARNING, method=method, error_code=exc.error_code,
                          attempt=tries, retry_in_s=round(wait, 3))
                time.sleep(wait)
                waited += wait

    def _attempt(self, method: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        outcome = "error"
        try:
            result = fn(*args, **kwargs)
            outcome = "ok"
            return result
        except apihelper.ApiTelegramException as exc:
            if int(exc.error_code) == 429:
                outcome = "rate_limited"
            raise TelegramApiError(method, str(exc.description), int(exc.error_code),
                                   _retry_after(exc.result_json)) from None
        except apihelper.ApiException as exc:  # HTTP error without a Bot API body, or invalid JSON
            status = getattr(getattr(exc, "result", None), "status_code", None)
            if status == 429:
                outcome = "rate_limited"
            raise TelegramApiError(method, _redact(f"unexpected answer (HTTP {status})", self._token),
                                   status) from None
        except requests.RequestException as exc:
            raise TelegramApiError(method, _redact(f"Bot API unreachable: {type(exc).__name__}",
                                                   self._token)) from None
        finally:
            if self._metrics is not None:
                self._metrics.telegram_call_finished(method, outcome)

    # --- messages ------------------------------------------------------------------------------------

    def send_message(self, chat_id: int, text: str, buttons: Sequence[Sequence[Button]] = (),
                     retry: RetryPolicy | None = None) -> int:
        """Send a plain-text message, with an inline keyboard when ``buttons`` has rows; its message id."""
        markup = None
        if buttons:
            markup = types.InlineKeyboardMarkup()
            for row in buttons:
                markup.row(*(types.InlineKeyboardButton(b.text, callback_data=b.callback_data) for b in row))
        # apihelper's raw call: the answer's message_id is all we read (a telebot Message costs more CPU than
        # the rest of the send, at launch-burst rates).
        msg = self._call_with(retry or self.retry, "sendMessage", apihelper.send_message, self._token, chat_id, text,
                              reply_markup=markup)
        return int(msg["message_id"])

    def send_invoice(self, chat_id: int, title: str, description: str, payload: str, label: str,
                     amount: int, retry: RetryPolicy | None = None) -> int:
        """An invoice in Telegram Stars: currency ``XTR``, empty provider token, one price of ``amount``."""
        msg = self._call_with(retry or self.retry, "sendInvoice", apihelper.send_invoice, self._token, chat_id, title,
                              description, payload, "", STARS_CURRENCY,
                              [types.LabeledPrice(label=label, amount=amount)])  # type: ignore[no-untyped-call]
        return int(msg["message_id"])

    def answer_pre_checkout_query(self, query_id: str, ok: bool, error_message: str | None = None) -> None:
        self._call_with(PRE_CHECKOUT_RETRY, "answerPreCheckoutQuery", self.bot.answer_pre_checkout_query, query_id,
                        ok, error_message=error_message)

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


def _retry_after(body: Any) -> int | None:
    """``parameters.retry_after`` of a Bot API error body (Telegram's flood control), if any."""
    parameters = body.get("parameters") if isinstance(body, dict) else None
    value = parameters.get("retry_after") if isinstance(parameters, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _wait_before_retry(policy: RetryPolicy, exc: TelegramApiError, tries: int) -> float | None:
    """Seconds to wait before trying again after the ``tries``-th failed try; None: do not try again."""
    if exc.error_code == 429:
        if not policy.wait_on_429 or tries >= _MAX_429_TRIES:
            return None
        return float(max(exc.retry_after if exc.retry_after is not None else 1, 0.1))
    if not exc.transient or tries >= policy.attempts:
        return None
    return float(policy.backoff * (1 << (tries - 1)))


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
