"""``ports.payments.PaymentGateway`` on the Telegram Bot API (``refundStarPayment``, ``getStarTransactions``).

``getStarTransactions`` is read as raw JSON, not through telebot's types: every ``TransactionPartner`` the Bot API
defines (``user``, ``chat``, ``affiliate_program``, ``fragment``, ``telegram_ads``, ``telegram_api``, ``other``)
and any Telegram adds later must parse, with the fields the payments jobs classify by (``transaction_type``,
``nanostar_amount``, a subscription's period, a gift). :func:`parse_star_transaction` is that mapping.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from telebot import apihelper

from adapters.jsonlog import log_event
from adapters.telegram.client import TelegramApiError, TelegramBotApi
from domain.errors import PaymentRefundError
from domain.model import StarTransaction

log = logging.getLogger("starpromo.telegram.payments")

MAX_PAGE = 100  # getStarTransactions accepts limit 1..100
MAX_NANOSTARS = 999_999_999


class TelegramPaymentGateway:
    """Refunds and lists Star payments through :class:`TelegramBotApi`.

    A refusal or an unreachable Bot API is a ``PaymentRefundError`` whose message carries Telegram's
    description (``CheckoutService.refund`` recognises ``CHARGE_ALREADY_REFUNDED`` in it).
    ``get_star_transactions`` lets a ``TelegramApiError`` through: reconciliation must fail loudly,
    never compare against an empty page.
    """

    def __init__(self, api: TelegramBotApi) -> None:
        self._api = api

    def refund_star_payment(self, user_id: int, telegram_payment_charge_id: str) -> None:
        try:
            self._api.refund_star_payment(user_id, telegram_payment_charge_id)
        except TelegramApiError as exc:
            log_event(log, "telegram_refund_failed", level=logging.WARNING, user_id=user_id,
                      error_code=exc.error_code, description=exc.description)
            raise PaymentRefundError(f"Telegram refused the refund: {exc.description}",
                                     {"error_code": exc.error_code, "description": exc.description}) from None
        log_event(log, "telegram_refund_sent", user_id=user_id)

    def get_star_transactions(self, offset: int, limit: int) -> list[StarTransaction]:
        if offset < 0:
            raise ValueError("offset must be >= 0")
        # Through the client's call wrapper, so the page shares its error mapping (and retries) with every
        # other Bot API call; the raw answer, so no partner type is lost on the way.
        raw = self._api._call("getStarTransactions", apihelper.get_star_transactions, self._api.bot.token,
                              offset or None, max(1, min(limit, MAX_PAGE)))
        items = raw.get("transactions", []) if isinstance(raw, dict) else []
        parsed = [parse_star_transaction(item) for item in items]
        kept = [tx for tx in parsed if tx is not None]
        if len(kept) != len(parsed):
            log_event(log, "telegram_star_transactions_unreadable", level=logging.WARNING, offset=offset,
                      unreadable=len(parsed) - len(kept))
        return kept


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_star_transaction(item: Any) -> StarTransaction | None:
    """A ``StarTransaction`` from the Bot API JSON; None for something that is not one (no id, amount, date).

    Incoming transactions carry a ``source`` partner, outgoing ones a ``receiver``. A user partner gives the
    user's id, its ``transaction_type`` and, for an invoice payment, the ``invoice_payload`` and a
    subscription's ``subscription_period``; a user or chat partner carrying a ``gift`` marks a gift.
    """
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return None
    amount, date = _int(item.get("amount")), _int(item.get("date"))
    if amount is None or amount < 0 or date is None:
        return None
    nanos = _int(item.get("nanostar_amount"))
    source, receiver = item.get("source"), item.get("receiver")
    outgoing = receiver is not None and source is None
    partner = receiver if outgoing else source
    if not isinstance(partner, dict):
        partner = {}
    kind = partner.get("type")
    partner_type = kind if isinstance(kind, str) else ""
    user_id: int | None = None
    payload: str | None = None
    transaction_type: str | None = None
    subscription_period: int | None = None
    if partner_type == "user":
        user = partner.get("user")
        user_id = _int(user.get("id")) if isinstance(user, dict) else None
        pl = partner.get("invoice_payload")
        payload = pl if isinstance(pl, str) else None
        tt = partner.get("transaction_type")
        transaction_type = tt if isinstance(tt, str) and tt else None
        if transaction_type is None:  # Bot API before 8.x: no type; tell what it can from the fields
            transaction_type = ("paid_media_payment" if "paid_media" in partner or "paid_media_payload" in partner
                                else "gift_purchase" if "gift" in partner else "invoice_payment")
        subscription_period = _int(partner.get("subscription_period"))
    return StarTransaction(
        id=item["id"], amount=amount, date=datetime.fromtimestamp(date, UTC), user_id=user_id, outgoing=outgoing,
        payload=payload, partner=partner_type, transaction_type=transaction_type,
        nanostar_amount=nanos if nanos is not None and 0 <= nanos <= MAX_NANOSTARS else 0,
        subscription_period=subscription_period, gift=partner_type in ("user", "chat") and "gift" in partner)
