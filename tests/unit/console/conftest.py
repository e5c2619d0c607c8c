"""Fixtures for console page tests: an app over the in-memory adapters with an admin and a viewer."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from dependency_injector import providers
from flask import Flask
from flask.testing import FlaskClient

from adapters.passwords import Argon2Passwords
from entrypoints.container import Container, build_container
from entrypoints.http import create_app
from entrypoints.settings import Settings

ADMIN, VIEWER = "alice", "victor"
PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_settings(**extra: str) -> Settings:
    env = {"DATABASE_URL": "memory://", "PROMO_SECRET_PEPPER": "p" * 32, "INTERNAL_API_TOKEN": "t" * 32,
           "OPS_SESSION_SECRET": "s" * 40, **extra}
    return Settings.from_env(env)


@pytest.fixture
def console_container() -> Iterator[Container]:
    container = build_container(console_settings())
    container.password_hasher.override(providers.Object(Argon2Passwords(time_cost=1, memory_cost=8, parallelism=1)))
    ops = container.operator_service()
    ops.add(ADMIN, "admin", PASSWORD, actor="cli:test")
    ops.add(VIEWER, "viewer", PASSWORD, actor="cli:test")
    yield container
    container.unwire()


@pytest.fixture
def console_app(console_container: Container) -> Flask:
    app = create_app(console_container)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def container(console_app: Flask) -> Container:
    """The container behind ``console_app`` (to seed data and read it back)."""
    value = console_app.extensions["starpromo.container"]
    return value  # type: ignore[no-any-return]


@pytest.fixture
def admin(console_app: Flask) -> tuple[FlaskClient, str]:
    """A test client signed in as the admin, and its CSRF token."""
    client = console_app.test_client()
    return client, signed_in(client, ADMIN)


def csrf_token(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def signed_in(client: FlaskClient, name: str = ADMIN) -> str:
    """Signs ``name`` in through the form; returns the CSRF token for later POSTs."""
    token = csrf_token(client.get("/ops/sign-in").text)
    response = client.post("/ops/sign-in", data={"name": name, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.text
    return csrf_token(client.get("/ops/").text)
