"""Telegram Bot API adapter (pyTelegramBotAPI): messages, Stars invoices, refunds, transactions."""

from adapters.telegram.client import (
    STARS_CURRENCY,
    Button,
    TelegramApiError,
    TelegramBotApi,
    star_transaction,
    use_api_url,
)
from adapters.telegram.payments import TelegramPaymentGateway, parse_star_transaction

__all__ = [
    "STARS_CURRENCY",
    "Button",
    "TelegramApiError",
    "TelegramBotApi",
    "TelegramPaymentGateway",
    "parse_star_transaction",
    "star_transaction",
    "use_api_url",
]
