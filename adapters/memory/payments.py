from __future__ import annotations

import threading

from domain.errors import PaymentRefundError
from domain.model import StarTransaction


class InMemoryPaymentGateway:
    """A fake Telegram Stars ledger: records refunds and serves configured transactions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.refunds: list[tuple[int, str]] = []
        self.transactions: list[StarTransaction] = []
        self.refuse_refunds = False

    def refund_star_payment(self, user_id: int, telegram_payment_charge_id: str) -> None:
        with self._lock:
            if self.refuse_refunds:
                raise PaymentRefundError("refund refused by the gateway")
            if (user_id, telegram_payment_charge_id) in self.refunds:
                raise PaymentRefundError("CHARGE_ALREADY_REFUNDED")
            self.refunds.append((user_id, telegram_payment_charge_id))

    def get_star_transactions(self, offset: int, limit: int) -> list[StarTransaction]:
        with self._lock:
            ordered = sorted(self.transactions, key=lambda t: t.date, reverse=True)
            return ordered[offset : offset + limit]
