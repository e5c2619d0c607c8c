"""A fake Telegram Bot API served over real HTTP on 127.0.0.1, for tests.

(One module on purpose, past ~500 lines: it is one server whose methods share its recorded state and locks; the
documented limits, the update builders and the Star transaction fixtures already live apart, in bot_api_limits.py,
telegram_updates.py and star_transactions.py.)

Point ``TELEGRAM_API_URL`` at :attr:`FakeBotApi.url`; calls arrive at ``/bot<token>/<method>``
exactly as the real Bot API receives them (telebot sends parameters in the query string, JSON-encoded
where the Bot API wants objects; form and JSON bodies are read too). Every call is recorded
(:attr:`FakeBotApi.calls`) for assertions, errors can be injected per method (:meth:`FakeBotApi.fail`),
and ``getStarTransactions`` pages over :attr:`FakeBotApi.star_transactions` with ``offset``/``limit``.

Like Telegram, the fake refuses with 400 what breaks the Bot API's documented limits (tests/fakes/bot_api_limits.py)
and a Stars (``XTR``) invoice with anything but one price and an empty provider token. Flood control is opt-in:
with ``messages_per_second`` set, a message beyond that many in the trailing second is answered 429 with
``parameters.retry_after``, as Telegram answers a bot that sends too fast; with ``chat_interval`` set (Telegram:
1 s), so is a second message to one chat within that many seconds. Faults for the flood tests: :meth:`flaky`
answers a fraction of the calls 429 (or 5xx), :meth:`hold_messages_after` holds every message request after the
N-th delivered one, unanswered, until :meth:`release_held` drops them (a sender killed mid-request).

    with FakeBotApi() as api:
        os.environ["TELEGRAM_API_URL"] = api.url
        ...
        api.wait_for("sendInvoice")
        assert api.last("sendInvoice").json("prices") == [{"label": "...", "amount": 120}]

``tests.fakes.telegram_updates.Updates`` builds the Telegram updates a test feeds to the webhook (or to
``getUpdates`` via :meth:`FakeBotApi.push_update` for polling).
"""

from __future__ import annotations

import itertools
import json
import math
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs

from tests.fakes.bot_api_limits import ApiError, check_limits, require
from tests.fakes.local_http import base_url, serve_in_background, shut_down

BOT_ID = 7000000001
BOT_USERNAME = "starpromo_test_bot"

# What flood control counts: the methods that send a message to a chat.
MESSAGE_METHODS = frozenset({"sendMessage", "sendInvoice"})


@attrs.frozen
class Call:
    """One recorded Bot API call. ``params`` are the raw string values as sent."""

    token: str
    method: str
    params: dict[str, str]
    http_method: str
    at: float

    def json(self, name: str) -> Any:
        """A JSON-encoded parameter (``prices``, ``reply_markup``, ...) decoded."""
        return json.loads(self.params[name])

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.params.get(name, default)


@attrs.define
class _Failure:
    description: str
    error_code: int
    http_status: int
    remaining: int | None  # None: every call fails
    raw_body: bytes | None = None
    retry_after: int | None = None


class FakeBotApi:
    """A threaded HTTP server answering Bot API methods. Thread-safe; use as a context manager."""

    def __init__(self, token: str | None = None, messages_per_second: int | None = None,
                 chat_interval: float | None = None) -> None:
        # With ``token`` set, calls with another token get 401 like the real API.
        self.token = token
        # The calls answered ``ok`` (what Telegram actually did), in order; ``calls`` holds every call.
        self.delivered: list[Call] = []
        # Flood control (opt-in): at most this many messages in any second, else 429 + retry_after.
        self.messages_per_second = messages_per_second
        # Telegram's per-chat limit (opt-in): a message to a chat within this many seconds of the last one is 429.
        self.chat_interval = chat_interval
        self.flood_refusals = 0
        self._sent_at: list[float] = []
        self._chat_sent_at: dict[str, float] = {}
        self._flaky: tuple[float, int, int | None, frozenset[str]] | None = None
        self._random = random.Random(17)
        self.flaky_refusals = 0
        self._hold_after: int | None = None
        self._holding = 0
        self._released = threading.Event()
        self.calls: list[Call] = []
        self.star_transactions: list[dict[str, Any]] = []
        self.refunded_charges: set[str] = set()
        self.webhook: dict[str, str] = {}
        # Refunds add an outgoing transaction to ``star_transactions`` (newest first), as Telegram does.
        self.record_refund_transactions = True
        # What "now" is for transactions recorded without a date (refunds made through refundStarPayment);
        # tests on a manual clock point this at it.
        self.clock: Callable[[], datetime] | None = None
        self._updates: list[dict[str, Any]] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._handlers: dict[str, Callable[[Call], Any]] = {}
        self._message_ids = itertools.count(1000)
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to use as ``TELEGRAM_API_URL``."""
        assert self._server is not None, "start() the fake first"
        return base_url(self._server)

    def start(self) -> FakeBotApi:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The headers and the body are two writes: with Nagle's algorithm on, the body waits for the client's
            # delayed ACK of the headers (~40 ms a call), which Telegram's servers do not make a bot wait.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                fake._serve(self)

            def do_POST(self) -> None:
                fake._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server, self._thread = serve_in_background(Handler)
        return self

    def stop(self) -> None:
        if self._server is not None:
            shut_down(self._server)
            self._server = None

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting -----------------------------------------------------------------------------------

    def fail(self, method: str, description: str = "Internal Server Error", error_code: int = 500,
             times: int | None = 1, http_status: int | None = None, raw_body: bytes | None = None,
             retry_after: int | None = None) -> None:
        """The next ``times`` calls of ``method`` (every call with ``times=None``) answer
        ``{"ok": false, "error_code", "description"}`` with HTTP ``http_status`` (default: the error code),
        or ``raw_body`` verbatim (e.g. an HTML error page). ``retry_after`` adds ``parameters.retry_after``
        (Telegram's flood-control answer: ``error_code=429``)."""
        with self._lock:
            self._failures.setdefault(method, []).append(
                _Failure(description, error_code, http_status or error_code, times, raw_body, retry_after))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def flaky(self, fraction: float, error_code: int = 429, retry_after: int | None = 1,
              methods: frozenset[str] = MESSAGE_METHODS, seed: int = 17) -> None:
        """From now on, answer about ``fraction`` of the calls of ``methods`` with ``error_code`` (429 with
        ``parameters.retry_after``; or a 5xx), chosen by a seeded random draw; ``fraction=0`` stops it."""
        with self._lock:
            self._random = random.Random(seed)
            self._flaky = (fraction, error_code, retry_after, methods) if fraction > 0 else None

    def hold_messages_after(self, delivered: int) -> None:
        """Once ``delivered`` messages were answered ok, hold every further message request unanswered (and
        unrecorded as delivered) until :meth:`release_held`, which drops them: what a sender killed mid-request
        leaves at Telegram's door."""
        with self._lock:
            self._released.clear()
            self._hold_after = delivered

    @property
    def holding(self) -> int:
        """Message requests held right now."""
        with self._lock:
            return self._holding

    def release_held(self) -> None:
        """Drop the held requests (their connections close without an answer) and hold no more."""
        with self._lock:
            self._hold_after = None
        self._released.set()

    def on(self, method: str, handler: Callable[[Call], Any]) -> None:
        """Answer ``method`` with ``handler(call)`` as the ``result`` (overrides the built-in answer)."""
        with self._lock:
            self._handlers[method] = handler

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for ``getUpdates`` (polling)."""
        with self._lock:
            self._updates.append(update)
            self._lock.notify_all()

    def add_payment(self, charge_id: str, amount: int, user_id: int, payload: str | None = None,
                    date: datetime | None = None) -> dict[str, Any]:
        """An incoming Star payment (``source`` = TransactionPartnerUser), newest first."""
        source: dict[str, Any] = {"type": "user", "transaction_type": "invoice_payment", "user": telegram_user(user_id)}
        if payload is not None:
            source["invoice_payload"] = payload
        tx = {"id": charge_id, "amount": amount, "date": _ts(date or self._now()), "source": source}
        with self._lock:
            self.star_transactions.insert(0, tx)
        return tx

    def add_refund(self, charge_id: str, amount: int, user_id: int, date: datetime | None = None) -> dict[str, Any]:
        """An outgoing refund (``receiver`` = TransactionPartnerUser of the paid invoice), newest first."""
        tx = {"id": charge_id, "amount": amount, "date": _ts(date or self._now()),
              "receiver": {"type": "user", "transaction_type": "invoice_payment", "user": telegram_user(user_id)}}
        with self._lock:
            self.star_transactions.insert(0, tx)
        return tx

    def add_transactions(self, *transactions: dict[str, Any]) -> None:
        """Star transactions as ``getStarTransactions`` returns them (build them with
        tests/fakes/star_transactions.py: every partner type), newest first, the last given on top."""
        with self._lock:
            for tx in transactions:
                self.star_transactions.insert(0, tx)

    def _now(self) -> datetime | None:
        return self.clock() if self.clock is not None else None

    # --- assertions ----------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def last(self, method: str) -> Call:
        calls = self.calls_to(method)
        assert calls, f"no {method} call; calls so far: {[c.method for c in self.calls]}"
        return calls[-1]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Block until ``method`` has been called ``count`` times; its calls."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                calls = [c for c in self.calls if c.method == method]
                if len(calls) >= count:
                    return calls
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} {method} call(s), got {len(calls)}; "
                                         f"calls: {[c.method for c in self.calls]}")
                self._lock.wait(min(left, 0.1))

    def texts(self, chat_id: int | None = None) -> list[str]:
        """The texts of every ``sendMessage`` (to ``chat_id`` when given), in order."""
        return [c.params.get("text", "") for c in self.calls_to("sendMessage")
                if chat_id is None or c.params.get("chat_id") == str(chat_id)]

    def delivered_texts(self, chat_id: int | None = None) -> list[str]:
        """The texts of every ``sendMessage`` answered ok (to ``chat_id`` when given), in order: what the user
        saw, without the calls that were refused (429, 5xx, a limit)."""
        with self._lock:
            return [c.params.get("text", "") for c in self.delivered if c.method == "sendMessage"
                    and (chat_id is None or c.params.get("chat_id") == str(chat_id))]

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()
            self.delivered.clear()

    # --- the server side -----------------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        segments = parts.path.strip("/").split("/")
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        params.update(_body_params(h.headers.get("Content-Type", ""), body))
        if len(segments) != 2 or not segments[0].startswith("bot"):
            self._reply(h, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, method = segments[0][3:], segments[1]
        call = Call(token=token, method=method, params=params, http_method=h.command, at=time.time())
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()
            failure = self._take_failure(method)
            handler = self._handlers.get(method)
        if self.token is not None and token != self.token:
            self._reply(h, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        if failure is not None:
            if failure.raw_body is not None:
                self._reply_raw(h, failure.http_status, failure.raw_body, "text/html")
            else:
                answer: dict[str, Any] = {"ok": False, "error_code": failure.error_code,
                                          "description": failure.description}
                if failure.retry_after is not None:
                    answer["parameters"] = {"retry_after": failure.retry_after}
                self._reply(h, failure.http_status, answer)
            return
        if self._hold(h, method):
            return
        refusal = self._flaky_refusal(method)
        if refusal is not None:
            self._reply(h, refusal["error_code"], refusal)
            return
        wait = self._flood_wait(method, params.get("chat_id"))
        if wait is not None:
            self._reply(h, 429, {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after "
                                 f"{wait}", "parameters": {"retry_after": wait}})
            return
        try:
            check_limits(call)
            result = handler(call) if handler is not None else self._answer(call)
        except ApiError as exc:
            self._reply(h, exc.error_code, {"ok": False, "error_code": exc.error_code,
                                            "description": exc.description})
            return
        with self._lock:
            self.delivered.append(call)
        self._reply(h, 200, {"ok": True, "result": result})

    def _flood_wait(self, method: str, chat_id: str | None) -> int | None:
        """Seconds to wait when ``method`` sends a message beyond ``messages_per_second`` or within
        ``chat_interval`` of the chat's last one; None: it may go."""
        limit = self.messages_per_second
        if method not in MESSAGE_METHODS or (limit is None and self.chat_interval is None):
            return None
        now = time.monotonic()
        with self._lock:
            if limit is not None:
                self._sent_at = [t for t in self._sent_at if now - t < 1.0]
                if len(self._sent_at) >= limit:
                    self.flood_refusals += 1
                    return max(1, math.ceil(1.0 - (now - self._sent_at[0])))
            if self.chat_interval is not None and chat_id is not None:
                last = self._chat_sent_at.get(chat_id)
                if last is not None and now - last < self.chat_interval:
                    self.flood_refusals += 1
                    return max(1, math.ceil(self.chat_interval - (now - last)))
                self._chat_sent_at[chat_id] = now
            if limit is not None:
                self._sent_at.append(now)
            return None

    def _flaky_refusal(self, method: str) -> dict[str, Any] | None:
        with self._lock:
            if self._flaky is None:
                return None
            fraction, error_code, retry_after, methods = self._flaky
            if method not in methods or self._random.random() >= fraction:
                return None
            self.flaky_refusals += 1
        answer: dict[str, Any] = {"ok": False, "error_code": error_code,
                                  "description": "Too Many Requests: retry after 1" if error_code == 429
                                  else "Internal Server Error"}
        if error_code == 429 and retry_after is not None:
            answer["parameters"] = {"retry_after": retry_after}
        return answer

    def _hold(self, h: BaseHTTPRequestHandler, method: str) -> bool:
        """Hold a message request while holding is on; True when it was held (and is dropped now)."""
        with self._lock:
            if method not in MESSAGE_METHODS or self._hold_after is None:
                return False
            if sum(1 for c in self.delivered if c.method in MESSAGE_METHODS) < self._hold_after:
                return False
            self._holding += 1
        self._released.wait(60)
        with self._lock:
            self._holding -= 1
        h.close_connection = True  # no answer: the connection just closes
        return True

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        if failure.remaining is not None:
            failure.remaining -= 1
            if failure.remaining <= 0:
                queue.pop(0)
        return failure

    def _reply(self, h: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        self._reply_raw(h, status, json.dumps(payload).encode(), "application/json")

    @staticmethod
    def _reply_raw(h: BaseHTTPRequestHandler, status: int, raw: bytes, content_type: str) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(raw)))
            h.end_headers()
            h.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _answer(self, call: Call) -> Any:
        p = call.params
        m = call.method
        if m == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "starpromo test", "username": BOT_USERNAME,
                    "can_join_groups": False, "can_read_all_group_messages": False,
                    "supports_inline_queries": False}
        if m == "sendMessage":
            require(p, "chat_id", "text")
            message = self._message(p["chat_id"])
            message["text"] = p["text"]
            if "reply_markup" in p:
                message["reply_markup"] = json.loads(p["reply_markup"])
            return message
        if m == "sendInvoice":
            require(p, "chat_id", "title", "description", "payload", "currency", "prices")
            prices = json.loads(p["prices"])
            if p["currency"] == "XTR" and (len(prices) != 1 or p.get("provider_token", "") != ""):
                raise ApiError(400, "Bad Request: STARS_INVOICE_INVALID")
            message = self._message(p["chat_id"])
            message["invoice"] = {"title": p["title"], "description": p["description"], "start_parameter": "",
                                  "currency": p["currency"], "total_amount": sum(x["amount"] for x in prices)}
            return message
        if m == "answerPreCheckoutQuery":
            require(p, "pre_checkout_query_id", "ok")
            if p["ok"] not in ("True", "true") and not p.get("error_message"):
                raise ApiError(400, "Bad Request: error_message is required when ok is false")
            return True
        if m == "answerCallbackQuery":
            require(p, "callback_query_id")
            return True
        if m == "refundStarPayment":
            require(p, "user_id", "telegram_payment_charge_id")
            charge = p["telegram_payment_charge_id"]
            with self._lock:
                paid = next((t for t in self.star_transactions if t["id"] == charge and "source" in t), None)
                if charge in self.refunded_charges:
                    raise ApiError(400, "Bad Request: CHARGE_ALREADY_REFUNDED")
                self.refunded_charges.add(charge)
            if self.record_refund_transactions:
                self.add_refund(charge, paid["amount"] if paid else 0, int(p["user_id"]))
            return True
        if m == "getStarTransactions":
            offset = int(p.get("offset") or 0)
            limit = int(p.get("limit") or 100)
            if not 1 <= limit <= 100:
                raise ApiError(400, "Bad Request: limit must be 1..100")
            with self._lock:
                page = [dict(t) for t in self.star_transactions[offset:offset + limit]]
            return {"transactions": page}
        if m == "setWebhook":
            require(p, "url")
            with self._lock:
                self.webhook = dict(p)
            return True
        if m == "deleteWebhook":
            with self._lock:
                self.webhook = {}
            return True
        if m == "getWebhookInfo":
            with self._lock:
                return {"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                        "pending_update_count": 0}
        if m == "getUpdates":
            return self._get_updates(p)
        raise ApiError(404, "Not Found: method not found")

    def _get_updates(self, p: dict[str, str]) -> list[dict[str, Any]]:
        offset = int(p.get("offset") or 0)
        limit = int(p.get("limit") or 100)
        wait = min(float(p.get("timeout") or 0), 1.0)  # long polling, kept short for tests
        deadline = time.monotonic() + wait
        with self._lock:
            while True:
                # As Telegram does: an offset confirms (forgets) every earlier update.
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates or time.monotonic() >= deadline:
                    return self._updates[:limit]
                self._lock.wait(min(0.05, max(deadline - time.monotonic(), 0.001)))

    def _message(self, chat_id: str) -> dict[str, Any]:
        chat = int(chat_id)
        return {"message_id": next(self._message_ids), "date": int(time.time()),
                "chat": {"id": chat, "type": "private" if chat > 0 else "group"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "starpromo test", "username": BOT_USERNAME}}


def _body_params(content_type: str, body: bytes) -> dict[str, str]:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        data = json.loads(body)
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    if content_type.startswith("application/x-www-form-urlencoded"):
        return {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    return {}  # multipart (file uploads): not needed by starpromo


def _ts(date: datetime | None) -> int:
    return int((date or datetime.now(UTC)).timestamp())


def telegram_user(user_id: int, language_code: str | None = None, first_name: str = "Test") -> dict[str, Any]:
    """A Telegram ``User`` object of a person."""
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code is not None:
        user["language_code"] = language_code
    return user


def free_port_url() -> str:
    """A base URL on which nothing listens (an unreachable Bot API)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
