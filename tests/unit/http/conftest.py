"""The internal API on the in-memory adapter family, a manual clock, and a client that sends the token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import pytest
from dependency_injector import providers
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from adapters.memory import ManualClock
from entrypoints.container import Container, build_container
from entrypoints.http import create_app
from entrypoints.settings import Settings
from tests.conftest import PEPPER

TOKEN = "test-internal-token-0123456789"
AUTH = {"X-Internal-Token": TOKEN}


def make_container(clock: ManualClock, **env: str) -> Container:
    values = {"DATABASE_URL": "memory://", "PROMO_SECRET_PEPPER": PEPPER, "INTERNAL_API_TOKEN": TOKEN, **env}
    container = build_container(Settings.from_env(values))
    container.clock.override(providers.Object(clock))
    return container


@pytest.fixture
def container(clock: ManualClock) -> Container:
    return make_container(clock)


@pytest.fixture
def app(container: Container) -> Flask:
    return create_app(container)


class Answer(TestResponse):
    """What ``Api`` calls return: a test response whose ``json`` the tests index without a None check (a typing
    device only, applied by ``cast``; a test that expects JSON fails on None anyway)."""

    @property
    def json(self) -> Any:
        return super().json


class Api:
    """Calls the app the way an ops client would: JSON bodies, the internal token, from 127.0.0.1."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def post(self, path: str, body: Any = None, headers: Mapping[str, str] | None = None, **kw: Any) -> Answer:
        return cast(Answer, self.client.post(path, json=body, headers={**AUTH, **(headers or {})}, **kw))

    def get(self, path: str, headers: Mapping[str, str] | None = None, **kw: Any) -> Answer:
        return cast(Answer, self.client.get(path, headers={**AUTH, **(headers or {})}, **kw))

    def patch(self, path: str, body: Any = None, headers: Mapping[str, str] | None = None, **kw: Any) -> Answer:
        return cast(Answer, self.client.patch(path, json=body, headers={**AUTH, **(headers or {})}, **kw))

    def create_campaign(self, code: str | None = None, **fields: Any) -> dict[str, Any]:
        """A new campaign (20% off by default, named after its code) with ``code`` as its one chosen code; the
        201 body: the campaign JSON and, in ``code``, the code row."""
        body: dict[str, Any] = {"name": fields.pop("name", f"campaign {code or 'without code'}"),
                                "promo_type": "PERCENT_DISCOUNT", "discount_percent": 20}
        if code is not None:
            body["code"] = code
        if fields.get("promo_type") not in (None, "PERCENT_DISCOUNT"):
            body.pop("discount_percent")
        body.update(fields)
        r = self.post("/internal/promo/campaigns", body)
        assert r.status_code == 201, r.json
        assert r.json is not None
        return dict(r.json)

    def redeem(self, user_id: int, code: str, key: str) -> Answer:
        return self.post("/internal/promo/redeem", {"user_id": user_id, "code": code, "idempotency_key": key})


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


def assert_error(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """A JSON error body of SPEC 7 with ``status`` and ``code``; returns ``error``."""
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    body = response.json
    assert body is not None and set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert "Traceback" not in response.get_data(as_text=True)
    return dict(body["error"])
