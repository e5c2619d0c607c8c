"""Telegram Bot API adapter (pyTelegramBotAPI): messages, Stars invoices, refunds, transactions.

The names below are imported on first use (PEP 562), so that importing a light module of this package
(``limits``, ``rules``) loads neither telebot nor requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.lazy import lazy_exports

if TYPE_CHECKING:
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

_HOMES = {
    "adapters.telegram.client": ("STARS_CURRENCY", "Button", "TelegramApiError", "TelegramBotApi", "star_transaction",
                                 "use_api_url"),
    "adapters.telegram.payments": ("TelegramPaymentGateway", "parse_star_transaction"),
}

if not TYPE_CHECKING:  # mypy sees the imports above; a misspelt name stays an error for it
    __getattr__, __dir__ = lazy_exports(__name__, _HOMES)
