"""SPEC 7 access rules: token (401), address allowlist (403), X-Forwarded-For only for trusted hops."""

from __future__ import annotations

import pytest
from flask import Flask

from adapters.memory import ManualClock
from domain.errors import ConfigurationError
from entrypoints.http import create_app
from entrypoints.http.auth import address_allowed, client_address
from entrypoints.settings import Settings
from tests.unit.http.conftest import TOKEN, Api, assert_error, make_container

LIST = "/internal/promo/campaigns"


def test_missing_token_is_401_json(app: Flask) -> None:
    assert_error(app.test_client().get(LIST), 401, "UNAUTHORIZED")


def test_wrong_token_is_401_json(app: Flask) -> None:
    client = app.test_client()
    assert_error(client.get(LIST, headers={"X-Internal-Token": TOKEN + "x"}), 401, "UNAUTHORIZED")
    assert_error(client.get(LIST, headers={"X-Internal-Token": TOKEN[:-1]}), 401, "UNAUTHORIZED")
    assert_error(client.get(LIST, headers={"X-Internal-Token": ""}), 401, "UNAUTHORIZED")


def test_non_ascii_token_is_401_not_500(app: Flask) -> None:
    r = app.test_client().get(LIST, headers={"X-Internal-Token": "tök\u00e9n"})
    assert_error(r, 401, "UNAUTHORIZED")


def test_right_token_from_loopback_is_served(api: Api) -> None:
    assert api.get(LIST).status_code == 200
    assert api.get(LIST, environ_base={"REMOTE_ADDR": "::1"}).status_code == 200


def test_address_outside_the_allowlist_is_403_even_with_the_token(api: Api) -> None:
    r = api.get(LIST, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert_error(r, 403, "FORBIDDEN")


def test_unknown_internal_route_needs_auth_before_404(app: Flask, api: Api) -> None:
    assert_error(app.test_client().get("/internal/nope"), 401, "UNAUTHORIZED")
    assert_error(api.get("/internal/nope"), 404, "NOT_FOUND")


def test_forwarded_for_is_ignored_without_trusted_proxies(api: Api) -> None:
    # TRUSTED_PROXY_COUNT=0: the socket peer decides, whatever the header claims.
    r = api.get(LIST, headers={"X-Forwarded-For": "127.0.0.1"}, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert_error(r, 403, "FORBIDDEN")
    r = api.get(LIST, headers={"X-Forwarded-For": "10.9.9.9"})
    assert r.status_code == 200


def test_one_trusted_proxy_uses_the_address_it_appended(clock: ManualClock) -> None:
    app = create_app(make_container(clock, TRUSTED_PROXY_COUNT="1", INTERNAL_IP_ALLOWLIST="10.0.0.0/8"))
    api = Api(app.test_client())
    proxy = {"REMOTE_ADDR": "192.168.1.1"}
    assert api.get(LIST, headers={"X-Forwarded-For": "10.1.2.3"}, environ_base=proxy).status_code == 200
    # A client cannot sneak in by prepending an allowed address: only the last hop is trusted.
    r = api.get(LIST, headers={"X-Forwarded-For": "10.1.2.3, 203.0.113.7"}, environ_base=proxy)
    assert_error(r, 403, "FORBIDDEN")
    # No header at all: the proxy itself is the client, and it is not allowed.
    assert_error(api.get(LIST, environ_base=proxy), 403, "FORBIDDEN")


def test_two_trusted_proxies_use_the_second_address_from_the_right(clock: ManualClock) -> None:
    app = create_app(make_container(clock, TRUSTED_PROXY_COUNT="2", INTERNAL_IP_ALLOWLIST="10.0.0.0/8"))
    api = Api(app.test_client())
    proxy = {"REMOTE_ADDR": "192.168.1.1"}
    assert api.get(LIST, headers={"X-Forwarded-For": "1.2.3.4, 10.7.7.7, 172.16.0.1"},
                   environ_base=proxy).status_code == 200
    r = api.get(LIST, headers={"X-Forwarded-For": "10.7.7.7, 1.2.3.4, 172.16.0.1"}, environ_base=proxy)
    assert_error(r, 403, "FORBIDDEN")


def test_client_address_rules() -> None:
    assert client_address("9.9.9.9", "1.1.1.1, 2.2.2.2", 0) == "9.9.9.9"
    assert client_address("9.9.9.9", "1.1.1.1, 2.2.2.2", 1) == "2.2.2.2"
    assert client_address("9.9.9.9", "1.1.1.1, 2.2.2.2", 2) == "1.1.1.1"
    assert client_address("9.9.9.9", "1.1.1.1", 2) == "9.9.9.9"
    nets = Settings().internal_ip_allowlist
    assert address_allowed("127.0.0.1", nets) and address_allowed("::1", nets)
    assert address_allowed("::ffff:127.0.0.1", nets)
    assert not address_allowed("not-an-ip", nets) and not address_allowed(None, nets)
    assert not address_allowed("127.0.0.2", nets)


def test_health_endpoints_need_no_auth(app: Flask) -> None:
    client = app.test_client()
    outside = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/healthz", environ_base=outside).json == {"status": "ok"}
    r = client.get("/readyz", environ_base=outside)
    assert r.status_code == 200 and r.json == {"status": "ready", "database": "ok", "redis": "not_configured"}


def test_app_refuses_to_start_without_a_token(clock: ManualClock) -> None:
    container = make_container(clock, INTERNAL_API_TOKEN="")
    with pytest.raises(ConfigurationError, match="INTERNAL_API_TOKEN"):
        create_app(container)
