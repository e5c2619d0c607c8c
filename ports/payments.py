from __future__ import annotations

from datetime import datetime
from typing import Protocol

import attrs


@attrs.frozen
class StarTransaction:
    """One Telegram Star transaction as ``getStarTransactions`` reports it."""

    id: str
    amount: int
    date: datetime
    user_id: int | None
    # True for money going back to a user (a refund); False for an incoming payment.
    outgoing: bool
    payload: str | None = None


class PaymentGateway(Protocol):
    """Telegram Stars payments as the domain needs them."""

    def refund_star_payment(self, user_id: int, telegram_payment_charge_id: str) -> None:
        """Refund a payment; raises ``domain.errors.PaymentRefundError`` when Telegram refuses."""
        ...

    def get_star_transactions(self, offset: int, limit: int) -> list[StarTransaction]:
        """One page of the bot's Star transactions, newest first."""
        ...
