"""Star transactions as the Bot API's ``getStarTransactions`` returns them, for the fake Bot API (issue 17).

One builder per ``TransactionPartner`` type and ``TransactionPartnerUser.transaction_type`` of Telegram's published
Bot API (``StarTransaction``: ``id``, ``amount``, ``nanostar_amount``, ``date``, ``source`` for incoming /
``receiver`` for outgoing), with the fields the real API sends for each: ``TransactionPartnerUser``
(``transaction_type`` invoice_payment, paid_media_payment, gift_purchase, premium_purchase,
business_account_transfer; ``invoice_payload``, ``subscription_period``, ``paid_media``, ``gift``,
``premium_subscription_duration``), ``TransactionPartnerChat`` (a gift to a channel), ``TransactionPartnerFragment``
(a withdrawal with its ``withdrawal_state``, or Fragment giving a failed one back), ``TransactionPartnerTelegramAds``,
``TransactionPartnerTelegramApi`` (paid broadcasts, ``request_count``), ``TransactionPartnerAffiliateProgram``
(``sponsor_user``, ``commission_per_mille``) and ``TransactionPartnerOther``.

:func:`every_other_movement` is one of each that is no purchase payment nor its refund, with what the payments
jobs must count for it (:class:`Expected`). Feed them with ``FakeBotApi.add_transactions``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from tests.fakes.bot_api import telegram_user

SPONSOR_BOT_ID = 7000000099
THIRTY_DAYS = 30 * 24 * 3600  # the only subscription_period Telegram accepts


def _ts(date: datetime) -> int:
    return int(date.timestamp())


def _tx(tx_id: str, amount: int, date: datetime, *, source: dict[str, Any] | None = None,
        receiver: dict[str, Any] | None = None, nanostar_amount: int | None = None) -> dict[str, Any]:
    tx: dict[str, Any] = {"id": tx_id, "amount": amount, "date": _ts(date)}
    if nanostar_amount is not None:
        tx["nanostar_amount"] = nanostar_amount
    if source is not None:
        tx["source"] = source
    if receiver is not None:
        tx["receiver"] = receiver
    return tx


def _user_partner(transaction_type: str, user_id: int, **fields: Any) -> dict[str, Any]:
    return {"type": "user", "transaction_type": transaction_type, "user": telegram_user(user_id), **fields}


def _sticker() -> dict[str, Any]:
    return {"file_id": "CAACAgIAAxkBAAIBQ2", "file_unique_id": "AgADQ2", "type": "regular", "width": 512,
            "height": 512, "is_animated": True, "is_video": False}


def _gift(stars: int) -> dict[str, Any]:
    return {"id": "5170145012310081615", "sticker": _sticker(), "star_count": stars}


# --- the two that are compared with purchases -----------------------------------------------------------------------

def invoice_payment(charge_id: str, amount: int, user_id: int, date: datetime, payload: str | None = None
                    ) -> dict[str, Any]:
    """A user paying an invoice (incoming): the purchase payment reconciliation compares."""
    fields = {"invoice_payload": payload} if payload is not None else {}
    return _tx(charge_id, amount, date, source=_user_partner("invoice_payment", user_id, **fields))


def invoice_refund(charge_id: str, amount: int, user_id: int, date: datetime) -> dict[str, Any]:
    """That payment given back (outgoing to the user, with the payment's own id): its refund."""
    return _tx(charge_id, amount, date, receiver=_user_partner("invoice_payment", user_id))


# --- everything else: other movements ------------------------------------------------------------------------------

def subscription_payment(tx_id: str, amount: int, user_id: int, date: datetime, payload: str = "sub:monthly"
                         ) -> dict[str, Any]:
    """A subscription's fee: an invoice payment carrying ``subscription_period`` (starpromo sells none)."""
    return _tx(tx_id, amount, date, source=_user_partner("invoice_payment", user_id, invoice_payload=payload,
                                                         subscription_period=THIRTY_DAYS))


def paid_media_payment(tx_id: str, amount: int, user_id: int, date: datetime, outgoing: bool = False
                       ) -> dict[str, Any]:
    """A user buying paid media (incoming), or that payment given back (outgoing)."""
    partner = _user_partner("paid_media_payment", user_id, paid_media_payload="album-7",
                            paid_media=[{"type": "preview", "width": 1280, "height": 720}])
    return _tx(tx_id, amount, date, receiver=partner) if outgoing else _tx(tx_id, amount, date, source=partner)


def gift_purchase(tx_id: str, amount: int, user_id: int, date: datetime) -> dict[str, Any]:
    """A gift the bot sent to a user (outgoing)."""
    return _tx(tx_id, amount, date, receiver=_user_partner("gift_purchase", user_id, gift=_gift(amount)))


def premium_purchase(tx_id: str, amount: int, user_id: int, date: datetime, months: int = 3) -> dict[str, Any]:
    """Telegram Premium the bot gifted to a user (outgoing)."""
    return _tx(tx_id, amount, date, receiver=_user_partner("premium_purchase", user_id,
                                                           premium_subscription_duration=months))


def business_account_transfer(tx_id: str, amount: int, user_id: int, date: datetime) -> dict[str, Any]:
    """Stars transferred from a managed business account (incoming)."""
    return _tx(tx_id, amount, date, source=_user_partner("business_account_transfer", user_id))


def chat_gift(tx_id: str, amount: int, chat_id: int, date: datetime) -> dict[str, Any]:
    """A gift the bot sent to a channel (outgoing, ``TransactionPartnerChat``)."""
    chat = {"id": chat_id, "type": "channel", "title": "Starpromo news"}
    return _tx(tx_id, amount, date, receiver={"type": "chat", "chat": chat, "gift": _gift(amount)})


def fragment_withdrawal(tx_id: str, amount: int, date: datetime, state: str = "succeeded") -> dict[str, Any]:
    """Stars withdrawn through Fragment (outgoing), with its ``withdrawal_state``."""
    withdrawal: dict[str, Any] = {"type": state}
    if state == "succeeded":
        withdrawal.update(date=_ts(date), url=f"https://fragment.com/tx/{tx_id}")
    return _tx(tx_id, amount, date, receiver={"type": "fragment", "withdrawal_state": withdrawal})


def fragment_withdrawal_returned(tx_id: str, amount: int, date: datetime) -> dict[str, Any]:
    """Fragment giving back a failed withdrawal (incoming)."""
    return _tx(tx_id, amount, date, source={"type": "fragment"})


def telegram_ads(tx_id: str, amount: int, date: datetime) -> dict[str, Any]:
    """Stars spent on Telegram Ads (outgoing)."""
    return _tx(tx_id, amount, date, receiver={"type": "telegram_ads"})


def paid_broadcast(tx_id: str, amount: int, nanostar_amount: int, request_count: int, date: datetime
                   ) -> dict[str, Any]:
    """Paid broadcasts: requests beyond the free limits, billed at 0.1 Star each (outgoing, ``telegram_api``)."""
    return _tx(tx_id, amount, date, nanostar_amount=nanostar_amount,
               receiver={"type": "telegram_api", "request_count": request_count})


def affiliate_commission(tx_id: str, amount: int, nanostar_amount: int, date: datetime) -> dict[str, Any]:
    """A commission from an affiliate program the bot takes part in (incoming)."""
    sponsor = {"id": SPONSOR_BOT_ID, "is_bot": True, "first_name": "Sponsor", "username": "sponsor_bot"}
    return _tx(tx_id, amount, date, nanostar_amount=nanostar_amount,
               source={"type": "affiliate_program", "sponsor_user": sponsor, "commission_per_mille": 200})


def other_partner(tx_id: str, amount: int, date: datetime, outgoing: bool = True) -> dict[str, Any]:
    """``TransactionPartnerOther``: a transaction with an unspecified partner."""
    partner = {"type": "other"}
    return _tx(tx_id, amount, date, receiver=partner) if outgoing else _tx(tx_id, amount, date, source=partner)


def future_partner(tx_id: str, amount: int, date: datetime) -> dict[str, Any]:
    """A partner type Telegram adds after this was written: it must parse, and count apart."""
    return _tx(tx_id, amount, date, receiver={"type": "star_exchange", "rate": 7})


@attrs.frozen
class Expected:
    """What the payments jobs count for one kind and direction of other movement."""

    kind: str
    direction: str
    count: int
    stars: int
    nanostar_amount: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "direction": self.direction, "count": self.count, "stars": self.stars,
                "nanostar_amount": self.nanostar_amount}


def every_other_movement(date: datetime, prefix: str = "mv") -> tuple[list[dict[str, Any]], list[Expected]]:
    """One transaction of every partner type and user transaction type that is no purchase payment nor its refund,
    and what ``other_movements`` must say about them (sorted by kind, incoming first)."""
    user = 900_000_001
    txs = [
        fragment_withdrawal(f"{prefix}-withdrawal", 5000, date),
        fragment_withdrawal(f"{prefix}-withdrawal-pending", 300, date, state="pending"),
        fragment_withdrawal_returned(f"{prefix}-withdrawal-failed", 250, date),
        telegram_ads(f"{prefix}-ads", 1200, date),
        paid_broadcast(f"{prefix}-broadcast-1", 100, 500_000_000, 1005, date),  # 100.5 Stars
        paid_broadcast(f"{prefix}-broadcast-2", 0, 700_000_000, 7, date),  # 0.7 Stars: amount 0
        affiliate_commission(f"{prefix}-affiliate", 30, 250_000_000, date),
        gift_purchase(f"{prefix}-gift", 50, user, date),
        chat_gift(f"{prefix}-channel-gift", 25, -1001234567890, date),
        premium_purchase(f"{prefix}-premium", 1000, user, date),
        paid_media_payment(f"{prefix}-media", 75, user + 1, date),
        paid_media_payment(f"{prefix}-media", 75, user + 1, date, outgoing=True),  # its refund: same id
        subscription_payment(f"{prefix}-subscription", 200, user + 2, date),
        business_account_transfer(f"{prefix}-business", 400, user + 3, date),
        other_partner(f"{prefix}-other", 9, date),
        future_partner(f"{prefix}-future", 11, date),
    ]
    expected = [
        Expected("affiliate_commission", "incoming", 1, 30, 250_000_000),
        Expected("business_account_transfer", "incoming", 1, 400),
        Expected("gift", "outgoing", 2, 75),
        Expected("other", "outgoing", 1, 9),
        Expected("paid_broadcast", "outgoing", 2, 101, 200_000_000),
        Expected("paid_media", "incoming", 1, 75),
        Expected("paid_media", "outgoing", 1, 75),
        Expected("partner_star_exchange", "outgoing", 1, 11),
        Expected("premium_gift", "outgoing", 1, 1000),
        Expected("subscription", "incoming", 1, 200),
        Expected("telegram_ads", "outgoing", 1, 1200),
        Expected("withdrawal", "outgoing", 2, 5300),
        Expected("withdrawal_returned", "incoming", 1, 250),
    ]
    return txs, expected

