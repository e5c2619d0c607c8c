"""``ports.payments.PaymentGateway`` on the Telegram Bot API (``refundStarPayment``, ``getStarTransactions``)."""

from __future__ import annotations

import logging

from adapters.jsonlog import log_event
from adapters.telegram.client import TelegramApiError, TelegramBotApi
from domain.errors import PaymentRefundError
from domain.model import StarTransaction

log = logging.getLogger("starpromo.telegram.payments")

MAX_PAGE = 100  # getStarTransactions accepts limit 1..100


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
        return self._api.get_star_transactions(offset, max(1, min(limit, MAX_PAGE)))
