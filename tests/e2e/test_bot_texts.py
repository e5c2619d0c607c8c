"""What the user reads: German by default, English for `en` users, and always what to do next."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.e2e.stack import Stack
from tests.fakes.bot_api import FakeBotApi


def test_bare_promo_and_the_promo_open_button_explain_how_to_send_a_code(stack: Stack, bot_api: FakeBotApi,
                                                                         user_id: int) -> None:
    stack.deliver(stack.updates.promo(user_id, None))
    stack.deliver(stack.updates.message(user_id, "/promo@starpromo_test_bot"))
    stack.deliver(stack.updates.callback(user_id, "promo:open"))
    assert bot_api.texts(user_id) == [
        "Sende deinen Promo-Code so: /promo DEINCODE (zum Beispiel /promo SOMMER20).",
        "Sende deinen Promo-Code so: /promo DEINCODE (zum Beispiel /promo SOMMER20).",
        "Schick mir einfach eine Nachricht: /promo DEINCODE",
    ]


def test_english_users_read_english_and_everyone_else_german(stack: Stack, bot_api: FakeBotApi,
                                                             user_id: int) -> None:
    stack.discount_campaign("HELLO25", 25, applicable_products=["PREMIUM_30D"])
    english, german, unknown = user_id, user_id + 500_000, user_id + 600_000
    stack.deliver(stack.updates.promo(english, "HELLO25", language_code="en-US"))
    stack.deliver(stack.updates.promo(german, "HELLO25", language_code="de"))
    stack.deliver(stack.updates.promo(unknown, "NOSUCHCODE", language_code=None))
    assert bot_api.texts(english)[0].startswith("Code accepted: 25% off, reserved until ")
    en_buttons = bot_api.calls_to("sendMessage")[-3].json("reply_markup")["inline_keyboard"]
    assert [[b["text"] for b in row] for row in en_buttons] == [["Premium 30 days · 113 ⭐ instead of 150 ⭐"]]
    assert bot_api.texts(german)[0].startswith("Code angenommen: 25 % Rabatt, reserviert bis ")
    de_buttons = bot_api.calls_to("sendMessage")[-2].json("reply_markup")["inline_keyboard"]
    assert [[b["text"] for b in row] for row in de_buttons] == [["Premium 30 Tage · 113 ⭐ statt 150 ⭐"]]
    assert bot_api.texts(unknown) == [
        "Diesen Code kenne ich nicht. Prüfe die Schreibweise und sende /promo CODE erneut."]

    stack.deliver(stack.updates.promo(english, "HELLO25", language_code="en"))
    assert bot_api.texts(english)[-1] == ("You have already redeemed this code, or as many codes of this promotion "
                                             "as one person may.")
    stack.deliver(stack.updates.callback(english, "buy:NO_SUCH_PLAN", language_code="en"))
    assert bot_api.texts(english)[-1] == "This plan is no longer available. Send /promo CODE for a current choice."
    stack.deliver(stack.updates.callback(english, "sell:everything", language_code="en"))
    assert bot_api.last("answerCallbackQuery").params["text"] == (
        "This button is outdated. Send /promo CODE to start again.")


def test_rate_limited_says_when_the_block_ends(stack: Stack, bot_api: FakeBotApi, user_id: int) -> None:
    for i in range(5):
        stack.deliver(stack.updates.promo(user_id, f"WRONG{i}CODE"))
    before = datetime.now(UTC)
    stack.deliver(stack.updates.promo(user_id, "WRONG9CODE"))
    text = bot_api.texts(user_id)[-1]
    m = re.fullmatch(r"Zu viele Fehlversuche\. Du kannst es ab (\d\d\.\d\d\.\d{4}, \d\d:\d\d) Uhr UTC wieder "
                     r"versuchen \(in etwa (\d+) Minuten\)\.", text)
    assert m is not None, text
    ends = datetime.strptime(m.group(1), "%d.%m.%Y, %H:%M").replace(tzinfo=UTC)
    # the block is PROMO_BLOCK_MINUTES (60) after the latest failure, a moment ago
    assert before + timedelta(minutes=58) <= ends <= before + timedelta(minutes=61)
    assert int(m.group(2)) in (59, 60)

    stack.deliver(stack.updates.promo(user_id + 1_000_000, "WRONGCODE", language_code="en"))
    for _ in range(5):
        stack.deliver(stack.updates.promo(user_id + 1_000_000, "WRONGCODE", language_code="en"))
    assert re.fullmatch(r"Too many failed attempts\. You can try again from \d{4}-\d\d-\d\d \d\d:\d\d UTC "
                        r"\(in about \d+ minutes\)\.", bot_api.texts(user_id + 1_000_000)[-1])


def test_an_expired_or_foreign_reservation_tells_the_user_to_redeem_again(stack: Stack, bot_api: FakeBotApi,
                                                                          user_id: int) -> None:
    stack.discount_campaign("MINE10", 10)
    stack.deliver(stack.updates.promo(user_id, "MINE10"))
    data = bot_api.last("sendMessage").json("reply_markup")["inline_keyboard"][0][0]["callback_data"]
    # another user taps a button carrying someone else's reservation
    stranger = user_id + 2_000_000
    stack.deliver(stack.updates.callback(stranger, data))
    assert bot_api.texts(stranger) == ["Diese Reservierung gibt es nicht (mehr). Sende /promo CODE erneut."]
    assert [c for c in bot_api.calls_to("sendInvoice") if c.params["chat_id"] == str(stranger)] == []
