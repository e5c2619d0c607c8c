"""getStarTransactions read right (issue 17): every TransactionPartner type the Bot API defines, served by the fake
Bot API over real HTTP, parses with its ``transaction_type`` and ``nanostar_amount``, and is classified: only a
user's invoice payment is a purchase payment, only its reversal a refund, everything else an other movement."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.telegram import TelegramBotApi, TelegramPaymentGateway, parse_star_transaction
from domain.model import StarTransaction
from domain.star_transactions import (
    Role,
    classify,
    invoice_payload,
    movement,
    movements_document,
    total_movements,
)
from tests.fakes import star_transactions as st
from tests.fakes.bot_api import FakeBotApi

TOKEN = "123456:TEST-token"
T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def gateway() -> Iterator[tuple[FakeBotApi, TelegramPaymentGateway]]:
    with FakeBotApi(token=TOKEN) as fake:
        yield fake, TelegramPaymentGateway(TelegramBotApi(TOKEN, fake.url))


def _read_all(api: FakeBotApi, gw: TelegramPaymentGateway, *txs: dict[str, Any]) -> list[StarTransaction]:
    api.add_transactions(*txs)
    return gw.get_star_transactions(0, 100)


def test_a_payment_and_its_refund_are_the_only_transactions_compared(
        gateway: tuple[FakeBotApi, TelegramPaymentGateway]) -> None:
    api, gw = gateway
    refund, payment = _read_all(api, gw, st.invoice_payment("ch-1", 150, 42, T, "purchase:7"),
                                st.invoice_refund("ch-1", 150, 42, T))
    assert payment == StarTransaction(id="ch-1", amount=150, date=T, user_id=42, outgoing=False, payload="purchase:7",
                                      partner="user", transaction_type="invoice_payment")
    assert (refund.outgoing, refund.user_id, refund.transaction_type) == (True, 42, "invoice_payment")
    assert classify(payment).role is Role.PAYMENT and classify(refund).role is Role.REFUND


def test_every_partner_type_parses_with_its_fields_and_is_an_other_movement(
        gateway: tuple[FakeBotApi, TelegramPaymentGateway]) -> None:
    api, gw = gateway
    txs, expected = st.every_other_movement(T)
    parsed = _read_all(api, gw, *txs)
    assert len(parsed) == len(txs)  # nothing dropped, the partner type Telegram adds later included
    by_id = {(tx.id, tx.outgoing): tx for tx in parsed}
    withdrawal = by_id[("mv-withdrawal", True)]
    assert (withdrawal.partner, withdrawal.transaction_type, withdrawal.user_id, withdrawal.amount) == (
        "fragment", None, None, 5000)
    broadcast = by_id[("mv-broadcast-2", True)]
    assert (broadcast.partner, broadcast.amount, broadcast.nanostar_amount) == ("telegram_api", 0, 700_000_000)
    affiliate = by_id[("mv-affiliate", False)]
    assert (affiliate.partner, affiliate.nanostar_amount) == ("affiliate_program", 250_000_000)
    gift = by_id[("mv-gift", True)]
    assert (gift.partner, gift.transaction_type, gift.gift, gift.user_id) == ("user", "gift_purchase", True,
                                                                               900_000_001)
    assert by_id[("mv-channel-gift", True)].gift is True
    subscription = by_id[("mv-subscription", False)]
    assert (subscription.transaction_type, subscription.subscription_period, subscription.payload) == (
        "invoice_payment", st.THIRTY_DAYS, "sub:monthly")
    assert by_id[("mv-future", True)].partner == "star_exchange"
    assert all(classify(tx).role is Role.OTHER for tx in parsed)
    doc = movements_document(total_movements(movement(tx) for tx in parsed))
    assert doc == {"count": len(txs), "kinds": [e.as_dict() for e in expected]}


@pytest.mark.parametrize(("item", "why"), [
    ({"amount": 5, "date": 1}, "no id"),
    ({"id": "x", "amount": "5", "date": 1}, "amount not an integer"),
    ({"id": "x", "amount": -5, "date": 1}, "negative amount"),
    ({"id": "x", "amount": 5, "date": True}, "date not an integer"),
    ("not an object", "not an object"),
])
def test_what_is_no_transaction_is_left_out(item: Any, why: str) -> None:
    assert parse_star_transaction(item) is None, why


def test_odd_fields_never_break_parsing() -> None:
    tx = parse_star_transaction({"id": "x", "amount": 5, "date": 1, "nanostar_amount": 5_000_000_000,
                                 "source": {"type": "user", "user": "nobody", "invoice_payload": 7}})
    assert tx is not None
    assert (tx.nanostar_amount, tx.user_id, tx.payload, tx.transaction_type) == (0, None, None, "invoice_payment")
    bare = parse_star_transaction({"id": "y", "amount": 1, "date": 1})
    assert bare is not None and (bare.partner, classify(bare).kind) == ("", "unknown")


def test_a_bot_api_without_transaction_type_is_read_from_the_fields() -> None:
    """Bot API 7.x sent no ``transaction_type``: paid media and gifts are told by their fields."""
    media = parse_star_transaction({"id": "m", "amount": 5, "date": 1, "source": {
        "type": "user", "user": {"id": 1, "is_bot": False, "first_name": "A"}, "paid_media": []}})
    invoice = parse_star_transaction({"id": "i", "amount": 5, "date": 1, "source": {
        "type": "user", "user": {"id": 1, "is_bot": False, "first_name": "A"}, "invoice_payload": "purchase:1"}})
    assert media is not None and classify(media).kind == "paid_media"
    assert invoice is not None and classify(invoice).role is Role.PAYMENT


def test_the_invoice_payload_names_the_purchase_within_telegrams_128_bytes() -> None:
    assert invoice_payload(7) == "purchase:7"
    assert len(invoice_payload(2**63 - 1).encode()) <= 128
    with pytest.raises(ValueError, match="purchase id"):
        invoice_payload(0)
