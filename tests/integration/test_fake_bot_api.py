"""The fake Bot API (tests/fakes/bot_api.py) refuses what Telegram refuses (SPEC 9: title, description, payload,
callback data, a Stars price, flood control), so a bot that passes the e2e tests also passes Telegram's checks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fakes.bot_api import FakeBotApi

TOKEN = "42:fake-limits"


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as fake:
        yield fake


def call(api: FakeBotApi, method: str, **params: Any) -> requests.Response:
    encoded = {k: json.dumps(v) if isinstance(v, (list, dict)) else str(v) for k, v in params.items()}
    return requests.post(f"{api.url}/bot{TOKEN}/{method}", data=encoded, timeout=10)


def invoice(**changes: Any) -> dict[str, Any]:
    return {"chat_id": 1, "title": "Premium 30 Tage", "description": "Premium 30 Tage für 90 ⭐.",
            "payload": "purchase:1", "provider_token": "", "currency": "XTR",
            "prices": [{"label": "Premium 30 Tage", "amount": 90}], **changes}


def refused(response: requests.Response, description: str) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == {"ok": False, "error_code": 400, "description": description}


def test_an_invoice_within_the_limits_is_sent(api: FakeBotApi) -> None:
    r = call(api, "sendInvoice", **invoice(title="T" * 32, description="D" * 255, payload="p" * 128))
    assert r.status_code == 200 and r.json()["result"]["invoice"]["total_amount"] == 90


@pytest.mark.parametrize(("changes", "description"), [
    ({"title": "T" * 33}, "Bad Request: INVOICE_TITLE_INVALID"),
    ({"title": ""}, "Bad Request: INVOICE_TITLE_INVALID"),
    ({"description": "D" * 256}, "Bad Request: INVOICE_DESCRIPTION_INVALID"),
    ({"payload": "ü" * 65}, "Bad Request: INVOICE_PAYLOAD_INVALID"),  # 130 bytes
    ({"prices": [{"label": "free", "amount": 0}]}, "Bad Request: STARS_INVOICE_INVALID"),
    ({"prices": [{"label": "a", "amount": 1}, {"label": "b", "amount": 1}]}, "Bad Request: STARS_INVOICE_INVALID"),
    ({"provider_token": "stripe"}, "Bad Request: STARS_INVOICE_INVALID"),
])
def test_an_invoice_beyond_telegrams_limits_is_refused(api: FakeBotApi, changes: dict[str, Any],
                                                       description: str) -> None:
    refused(call(api, "sendInvoice", **invoice(**changes)), description)


def test_callback_data_over_64_bytes_and_empty_or_overlong_texts_are_refused(api: FakeBotApi) -> None:
    keyboard = {"inline_keyboard": [[{"text": "buy", "callback_data": "b" * 64}]]}
    assert call(api, "sendMessage", chat_id=1, text="ok", reply_markup=keyboard).status_code == 200
    keyboard["inline_keyboard"][0][0]["callback_data"] = "b" * 65
    refused(call(api, "sendMessage", chat_id=1, text="ok", reply_markup=keyboard), "Bad Request: BUTTON_DATA_INVALID")
    refused(call(api, "sendMessage", chat_id=1, text=""), "Bad Request: message text is empty")
    refused(call(api, "sendMessage", chat_id=1, text="x" * 4097), "Bad Request: message is too long")
    refused(call(api, "answerCallbackQuery", callback_query_id="1", text="x" * 201), "Bad Request: MESSAGE_TOO_LONG")


def test_flood_control_answers_429_with_retry_after_beyond_the_rate_and_lets_the_bot_send_again_later() -> None:
    with FakeBotApi(messages_per_second=3) as api:
        answers = [call(api, "sendMessage", chat_id=1, text=f"m{i}") for i in range(5)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
        body = answers[3].json()
        assert body["error_code"] == 429 and body["parameters"]["retry_after"] == 1
        assert body["description"] == "Too Many Requests: retry after 1"
        assert call(api, "answerCallbackQuery", callback_query_id="1").status_code == 200  # not a message
        assert api.flood_refusals == 2
        time.sleep(1.05)
        assert call(api, "sendMessage", chat_id=1, text="again").status_code == 200
        assert api.delivered_texts(1) == ["m0", "m1", "m2", "again"]
        assert len(api.texts(1)) == 6  # every call is recorded, the refused ones too


def test_an_injected_429_carries_retry_after(api: FakeBotApi) -> None:
    api.fail("sendMessage", "Too Many Requests: retry after 7", 429, retry_after=7)
    r = call(api, "sendMessage", chat_id=1, text="hi")
    assert r.status_code == 429 and r.json()["parameters"] == {"retry_after": 7}
    assert call(api, "sendMessage", chat_id=1, text="hi").status_code == 200
    assert api.delivered_texts() == ["hi"]


def test_a_second_message_to_one_chat_within_a_second_is_429_and_other_chats_are_not_held() -> None:
    with FakeBotApi(chat_interval=1.0) as api:
        assert call(api, "sendMessage", chat_id=1, text="a").status_code == 200
        again = call(api, "sendMessage", chat_id=1, text="b")
        assert again.status_code == 429 and again.json()["parameters"]["retry_after"] == 1
        assert call(api, "sendMessage", chat_id=2, text="c").status_code == 200
        assert api.delivered_texts() == ["a", "c"]


def test_a_flaky_fake_refuses_about_the_fraction_asked_with_429_or_5xx() -> None:
    with FakeBotApi() as api:
        api.flaky(0.5)
        statuses = [call(api, "sendMessage", chat_id=i, text="x").status_code for i in range(200)]
        assert set(statuses) == {200, 429} and 60 <= statuses.count(429) <= 140
        assert call(api, "answerCallbackQuery", callback_query_id="1").status_code == 200  # messages only
        api.flaky(0.3, error_code=502)
        assert 502 in {call(api, "sendMessage", chat_id=1, text="y").status_code for _ in range(30)}
        api.flaky(0)
        assert call(api, "sendMessage", chat_id=1, text="z").status_code == 200


def test_held_message_requests_are_dropped_unanswered_and_never_count_as_delivered() -> None:
    with FakeBotApi() as api:
        api.hold_messages_after(1)
        assert call(api, "sendMessage", chat_id=1, text="first").status_code == 200

        outcome: list[object] = []

        def held() -> None:
            try:
                outcome.append(call(api, "sendMessage", chat_id=1, text="held"))
            except requests.ConnectionError as exc:  # the connection closed without an answer
                outcome.append(exc)

        thread = threading.Thread(target=held)
        thread.start()
        deadline = time.monotonic() + 5
        while api.holding == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert api.holding == 1
        api.release_held()
        thread.join(5)
        assert [type(o) for o in outcome] == [requests.ConnectionError]
        assert api.delivered_texts() == ["first"]
        assert call(api, "sendMessage", chat_id=1, text="after").status_code == 200
