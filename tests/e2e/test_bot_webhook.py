"""The webhook as Telegram (and an attacker) meets it: secret header, duplicate deliveries, garbage."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.stack import Stack
from tests.fakes.bot_api import FakeBotApi


def test_a_wrong_or_missing_secret_is_403_and_nothing_is_processed(stack: Stack, bot_api: FakeBotApi,
                                                                  user_id: int) -> None:
    update = stack.updates.promo(user_id, None)
    for secret in (None, "wrong-secret", ""):
        response = stack.send(update, secret=secret)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "FORBIDDEN"
    assert bot_api.texts(user_id) == []
    # the refused deliveries were not recorded: the genuine one is still processed
    assert stack.deliver(update)["result"] == "processed"
    assert len(bot_api.texts(user_id)) == 1


def test_a_duplicate_update_id_is_dropped(stack: Stack, bot_api: FakeBotApi, user_id: int) -> None:
    stack.discount_campaign("TWICE10", 10)
    update = stack.updates.promo(user_id, "TWICE10")
    assert stack.deliver(update)["result"] == "processed"
    assert stack.deliver(update)["result"] == "duplicate"
    assert len(bot_api.texts(user_id)) == 1


def test_a_replayed_buy_callback_creates_no_second_purchase_or_invoice(stack: Stack, bot_api: FakeBotApi,
                                                                      user_id: int) -> None:
    stack.discount_campaign("REPLAY15", 15)
    stack.deliver(stack.updates.promo(user_id, "REPLAY15"))
    data = next(b["callback_data"] for row in bot_api.last("sendMessage").json("reply_markup")["inline_keyboard"]
                for b in row if b["callback_data"].startswith("buy:PREMIUM_7D:"))
    callback = stack.updates.callback(user_id, data)
    stack.deliver(callback)
    assert stack.deliver(callback)["result"] == "duplicate"  # the same delivery again
    stack.deliver(stack.updates.callback(user_id, data))  # the same button tapped again
    invoices = [c for c in bot_api.calls_to("sendInvoice") if c.params["chat_id"] == str(user_id)]
    assert len(invoices) == 1
    assert invoices[0].json("prices")[0]["amount"] == 43  # 50 - floor(50 * 15 / 100)
    with stack.uow() as uow:
        assert uow.purchases.get_open(user_id, "PREMIUM_7D").id == int(invoices[0].params["payload"].split(":")[1])


@pytest.mark.parametrize("body", [
    b"not json at all",
    b"[1, 2, 3]",
    b'"a string"',
    b"{}",
    b'{"update_id": "12"}',
    b'{"update_id": -1}',
    b'{"update_id": true}',
    b'{"update_id": 123456789012345678901234567890}',
    b'{"update_id": 911000001, "message": {"garbage": 1}}',
    b'{"update_id": 911000002, "message": {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}}}',
    b'{"update_id": 911000003, "callback_query": {"id": "x", "from": {"id": 5}}}',
    b'{"update_id": 911000004, "pre_checkout_query": {"id": "q", "from": {"id": 5, "is_bot": false, '
    b'"first_name": "x"}, "currency": "XTR", "total_amount": 5, "invoice_payload": "purchase:99999"}}',
    b'{"update_id": 911000005, "message": {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}, '
    b'"from": {"id": 5, "is_bot": false, "first_name": "x"}, "text": "/promo ' + b"A" * 5000 + b'"}}',
    b'{"update_id": 911000006, "edited_message": {"message_id": 1}}',
    b"\xff\xfe\x00garbage",
    b"[" * 60_000,
    b'{"update_id": 911000007, "message": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_000 + b"}",
])
def test_garbage_updates_are_answered_200_without_a_500(stack: Stack, body: bytes) -> None:
    response = stack.send(None, raw=body)
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True
    assert stack.get("/healthz").status_code == 200


def test_a_body_over_64_kib_is_refused_413_not_500(stack: Stack) -> None:
    response = stack.send(None, raw=b'{"update_id": 1, "x": "' + b"a" * 70_000 + b'"}')
    assert response.status_code == 413


def test_a_pre_checkout_for_an_unknown_purchase_is_refused_in_german(stack: Stack, bot_api: FakeBotApi,
                                                                     user_id: int) -> None:
    stack.deliver(stack.updates.pre_checkout(user_id, "purchase:987654", 120, query_id="pcq-unknown"))
    answer = bot_api.last("answerPreCheckoutQuery").params
    assert answer["pre_checkout_query_id"] == "pcq-unknown" and answer["ok"] == "False"
    assert answer["error_message"] == "Diese Rechnung kenne ich nicht. Bitte fordere eine neue an."
    stack.deliver(stack.updates.pre_checkout(user_id, "purchase:987654", 120, currency="EUR",
                                             query_id="pcq-eur"))
    assert "Telegram Stars" in bot_api.last("answerPreCheckoutQuery").params["error_message"]


def test_the_duplicate_filter_survives_a_restart(bot_api: FakeBotApi, tmp_path: Path, sqlite_url: str,
                                                 user_id: int) -> None:
    """Two `starpromo serve` processes in turn over one SQLite file: the second drops the first's update."""
    database_url = sqlite_url
    update = None
    first = Stack(database_url, bot_api, tmp_path / "first.log")
    try:
        update = first.updates.promo(user_id, None)
        assert first.deliver(update)["result"] == "processed"
    finally:
        first.stop()
    second = Stack(database_url, bot_api, tmp_path / "second.log")
    try:
        assert second.deliver(update)["result"] == "duplicate"
    finally:
        second.stop()
    assert len(bot_api.texts(user_id)) == 1
