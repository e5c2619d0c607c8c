"""Whether and how `starpromo serve` serves POST /webhook/telegram (Flask test client; e2e tests use real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import TestResponse

from adapters.memory import ManualClock
from entrypoints.http import create_app
from entrypoints.http.webhook import secret_matches
from tests.conftest import T0
from tests.fakes.bot_api import FakeBotApi
from tests.unit.http.conftest import AUTH, make_container

HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _json(response: TestResponse) -> Any:
    body = response.get_json()
    assert body is not None, response.data
    return body


@pytest.fixture
def bot_api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as api:
        yield api


def test_without_a_bot_token_there_is_no_webhook_and_no_refund_route() -> None:
    app = create_app(make_container(ManualClock(T0)))
    assert app.test_client().post("/webhook/telegram", json={"update_id": 1}).status_code == 404
    assert app.test_client().post("/internal/payments/1/refund", json={}, headers=AUTH).status_code == 404
    doc = _json(app.test_client().get("/internal/openapi.json", headers=AUTH))
    assert "/webhook/telegram" not in doc["paths"]


def test_with_a_bot_token_the_webhook_and_the_refund_route_are_served_and_documented(bot_api: FakeBotApi) -> None:
    container = make_container(ManualClock(T0), TELEGRAM_BOT_TOKEN="1:t", TELEGRAM_WEBHOOK_SECRET="s3cret",
                               TELEGRAM_API_URL=bot_api.url)
    client = create_app(container).test_client()
    assert client.post("/webhook/telegram", json={"update_id": 1}, headers={HEADER: "s3cret"}).json == {
        "ok": True, "result": "processed"}  # an update kind without a handler
    assert client.post("/internal/payments/1/refund", json={}, headers=AUTH).status_code == 404  # no purchase 1
    doc = _json(client.get("/internal/openapi.json", headers=AUTH))
    assert doc["paths"]["/webhook/telegram"]["post"]["security"] == []
    assert "/internal/payments/{purchase_id}/refund" in doc["paths"]


def test_without_a_configured_secret_every_delivery_is_refused(bot_api: FakeBotApi) -> None:
    container = make_container(ManualClock(T0), TELEGRAM_BOT_TOKEN="1:t", TELEGRAM_API_URL=bot_api.url)
    client = create_app(container).test_client()
    for headers in ({}, {HEADER: ""}, {HEADER: "anything"}):
        response = client.post("/webhook/telegram", json={"update_id": 7, "message": {}}, headers=headers)
        assert response.status_code == 403
        assert _json(response)["error"]["code"] == "FORBIDDEN"
    assert bot_api.calls == []


@pytest.mark.parametrize(("configured", "sent", "ok"), [
    ("abc", "abc", True), ("abc", "abd", False), ("abc", None, False), (None, "abc", False), ("", "", False),
    ("abc", "abcd", False), ("äbc", "äbc", True),
])
def test_secret_compare(configured: str | None, sent: str | None, ok: bool) -> None:
    assert secret_matches(configured, sent) is ok
