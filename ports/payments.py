from __future__ import annotations

from typing import Protocol

from domain.model import StarTransaction

__all__ = ["PaymentGateway", "StarTransaction"]


class PaymentGateway(Protocol):
    """Telegram Stars payments as the domain needs them."""

    def refund_star_payment(self, user_id: int, telegram_payment_charge_id: str) -> None:
        """Refund a payment; raises ``domain.errors.PaymentRefundError`` when Telegram refuses."""
        ...

    def get_star_transactions(self, offset: int, limit: int) -> list[StarTransaction]:
        """One page of the bot's Star transactions, newest first."""
        ...
