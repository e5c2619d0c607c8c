"""Telegram updates for tests: what a test feeds to the webhook, or to ``getUpdates`` of the fake Bot API via
:meth:`tests.fakes.bot_api.FakeBotApi.push_update` for polling."""

from __future__ import annotations

import itertools
import time
from typing import Any

from tests.fakes.bot_api import BOT_ID, telegram_user


class Updates:
    """Builds Telegram updates with increasing ``update_id``s and message ids."""

    def __init__(self, first_update_id: int = 500_000_000) -> None:
        self._update_ids = itertools.count(first_update_id)
        self._message_ids = itertools.count(1)

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def _wrap(self, key: str, obj: dict[str, Any], update_id: int | None) -> dict[str, Any]:
        return {"update_id": self.next_update_id() if update_id is None else update_id, key: obj}

    def message(self, user_id: int, text: str | None = None, language_code: str | None = "de",
                chat_id: int | None = None, message_id: int | None = None, update_id: int | None = None,
                **extra: Any) -> dict[str, Any]:
        """A private-chat message (a command when ``text`` starts with ``/``)."""
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids) if message_id is None else message_id,
            "date": int(time.time()),
            "chat": {"id": user_id if chat_id is None else chat_id, "type": "private", "first_name": "Test"},
            "from": telegram_user(user_id, language_code),
        }
        if text is not None:
            msg["text"] = text
            if text.startswith("/"):
                length = len(text.split()[0]) if text.split() else len(text)
                msg["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        msg.update(extra)
        return self._wrap("message", msg, update_id)

    def promo(self, user_id: int, code: str | None, language_code: str | None = "de",
              **kw: Any) -> dict[str, Any]:
        return self.message(user_id, "/promo" if code is None else f"/promo {code}", language_code, **kw)

    def callback(self, user_id: int, data: str, language_code: str | None = "de",
                 update_id: int | None = None, callback_id: str | None = None) -> dict[str, Any]:
        cq = {
            "id": callback_id or f"cb{self.next_update_id()}",
            "from": telegram_user(user_id, language_code),
            "chat_instance": "42",
            "data": data,
            "message": {"message_id": next(self._message_ids), "date": int(time.time()),
                        "chat": {"id": user_id, "type": "private"},
                        "from": {"id": BOT_ID, "is_bot": True, "first_name": "starpromo test"},
                        "text": "..."},
        }
        return self._wrap("callback_query", cq, update_id)

    def pre_checkout(self, user_id: int, payload: str, total_amount: int, currency: str = "XTR",
                     language_code: str | None = "de", query_id: str | None = None,
                     update_id: int | None = None) -> dict[str, Any]:
        q = {"id": query_id or f"pcq{self.next_update_id()}", "from": telegram_user(user_id, language_code),
             "currency": currency, "total_amount": total_amount, "invoice_payload": payload}
        return self._wrap("pre_checkout_query", q, update_id)

    def successful_payment(self, user_id: int, payload: str, total_amount: int, charge_id: str,
                           currency: str = "XTR", language_code: str | None = "de",
                           update_id: int | None = None) -> dict[str, Any]:
        sp = {"currency": currency, "total_amount": total_amount, "invoice_payload": payload,
              "telegram_payment_charge_id": charge_id, "provider_payment_charge_id": ""}
        return self.message(user_id, None, language_code, update_id=update_id, successful_payment=sp)

    def refunded_payment(self, user_id: int, payload: str, total_amount: int, charge_id: str,
                         currency: str = "XTR", language_code: str | None = "de",
                         update_id: int | None = None) -> dict[str, Any]:
        rp = {"currency": currency, "total_amount": total_amount, "invoice_payload": payload,
              "telegram_payment_charge_id": charge_id}
        return self.message(user_id, None, language_code, update_id=update_id, refunded_payment=rp)
