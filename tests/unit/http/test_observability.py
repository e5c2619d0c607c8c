"""SPEC 7 ``X-Request-Id`` and SPEC 15 ``/metrics`` on the app itself (in-memory adapters, Flask's test client)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from dependency_injector import providers
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from adapters.jsonlog import ContextFieldsFilter, JsonLineFormatter
from adapters.memory import ManualClock
from adapters.prometheus import PrometheusMetrics
from entrypoints.container import Container
from entrypoints.http import create_app
from tests.unit.http.conftest import AUTH, Api, make_container

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def metrics() -> PrometheusMetrics:
    return PrometheusMetrics(CollectorRegistry())


@pytest.fixture
def metered(clock: ManualClock, metrics: PrometheusMetrics) -> Container:
    container = make_container(clock)
    container.metrics.override(providers.Object(metrics))
    return container


@pytest.fixture
def metered_api(metered: Container) -> Api:
    return Api(create_app(metered).test_client())


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(sample name, labels): value}`` of a Prometheus text exposition."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


# --- X-Request-Id --------------------------------------------------------------------------------------------


def test_a_sane_request_id_comes_back_unchanged(api: Api) -> None:
    r = api.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert r.headers["X-Request-Id"] == "abc-123"
    longest = "A1._-" * 25 + "xyz"  # 128 characters of the allowed set
    assert api.get("/healthz", headers={"X-Request-Id": longest}).headers["X-Request-Id"] == longest


def test_without_a_request_id_a_fresh_one_comes_back_each_time(api: Api) -> None:
    first = api.get("/healthz").headers["X-Request-Id"]
    second = api.get("/healthz").headers["X-Request-Id"]
    assert HEX_ID.fullmatch(first) and HEX_ID.fullmatch(second) and first != second


@pytest.mark.parametrize("sent", ["", "a" * 129, "has space", "semi;colon", "üñí", "a\tb", "x/y", "{}"])
def test_an_unsafe_request_id_is_replaced_by_a_fresh_one(api: Api, sent: str) -> None:
    got = api.get("/healthz", headers={"X-Request-Id": sent}).headers["X-Request-Id"]
    assert HEX_ID.fullmatch(got) and got != sent


def test_refused_and_failed_requests_carry_a_request_id_too(api: Api) -> None:
    no_token = api.client.get("/internal/promo/campaigns", headers={"X-Request-Id": "r-401"})
    assert no_token.status_code == 401 and no_token.headers["X-Request-Id"] == "r-401"
    outsider = api.client.get("/internal/promo/campaigns", headers={**AUTH, "X-Request-Id": "r-403"},
                              environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert outsider.status_code == 403 and outsider.headers["X-Request-Id"] == "r-403"
    missing = api.get("/no/such/route", headers={"X-Request-Id": "r-404"})
    assert missing.status_code == 404 and missing.headers["X-Request-Id"] == "r-404"
    bad = api.post("/internal/promo/redeem", {"user_id": "x"}, headers={"X-Request-Id": "r-400"})
    assert bad.status_code == 400 and bad.headers["X-Request-Id"] == "r-400"


@pytest.fixture
def request_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(ContextFieldsFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_each_request_s_lines_carry_its_own_id(api: Api, request_log: io.StringIO) -> None:
    api.create_campaign("LOG-ID-0003")
    r = api.post("/internal/promo/redeem", {"user_id": 9, "code": "LOGID0003", "idempotency_key": "k-log-4"},
                 headers={"X-Request-Id": "abc-123"})
    assert r.status_code == 200
    fresh = api.get("/no/such/route").headers["X-Request-Id"]
    logging.getLogger("starpromo.test").info("outside any request")
    lines = [json.loads(line) for line in request_log.getvalue().splitlines()]
    mine = [ln for ln in lines if ln.get("request_id") == "abc-123"]
    assert [ln["route"] for ln in mine if ln["event"] == "http_request"] == ["/internal/promo/redeem"]
    assert [ln["status"] for ln in lines if ln.get("request_id") == fresh and ln["event"] == "http_request"] == [404]
    outside = [ln for ln in lines if ln.get("message") == "outside any request"]
    assert len(outside) == 1 and "request_id" not in outside[0]
    assert all("request_id" in ln for ln in lines if ln["event"] == "http_request")


# --- /metrics ------------------------------------------------------------------------------------------------


def test_metrics_count_redeems_by_result_and_requests_by_route_method_and_status(metered_api: Api) -> None:
    metered_api.create_campaign("MET-RICS-01", max_total_uses=2)
    statuses = [metered_api.redeem(user, "METRICS01", f"m-{user}").status_code for user in range(1, 6)]
    assert statuses == [200, 200, 422, 422, 422]
    assert metered_api.redeem(1, "NOSUCHCODE9", "m-invalid").status_code == 404
    assert metered_api.post("/internal/promo/redeem", {"user_id": "x"}).status_code == 400

    r = metered_api.client.get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    text = r.get_data(as_text=True)
    assert value(text, "starpromo_redeem_total", result="ACCEPTED") == 2
    assert value(text, "starpromo_redeem_total", result="DEPLETED") == 3
    assert value(text, "starpromo_redeem_total", result="INVALID") == 1
    assert value(text, "starpromo_redeem_duration_seconds_count") == 6  # the 400 never reached the service
    route = "/internal/promo/redeem"
    assert value(text, "starpromo_http_requests_total", route=route, method="POST", status="200") == 2
    assert value(text, "starpromo_http_requests_total", route=route, method="POST", status="422") == 3
    assert value(text, "starpromo_http_requests_total", route=route, method="POST", status="404") == 1
    assert value(text, "starpromo_http_requests_total", route=route, method="POST", status="400") == 1
    assert value(text, "starpromo_http_request_duration_seconds_count", route=route, method="POST") == 7
    assert value(text, "starpromo_http_requests_total", route="/internal/promo/campaigns", method="POST",
                 status="201") == 1
    assert value(text, "starpromo_http_requests_in_flight") == 1  # the scrape itself


def test_metrics_show_the_budget_left_of_active_budgeted_campaigns(metered_api: Api) -> None:
    budgeted = metered_api.create_campaign("BUD-GET-001", max_total_uses=10)
    metered_api.create_campaign("NO-BUDGET-01")  # no budget: no series
    paused = metered_api.create_campaign("BUD-GET-002", max_total_uses=4)
    metered_api.post(f"/internal/promo/campaigns/{paused['id']}/status", {"status": "PAUSED"})
    for user in range(1, 4):
        assert metered_api.redeem(user, "BUDGET001", f"b-{user}").status_code == 200
    text = metered_api.client.get("/metrics").get_data(as_text=True)
    labels = {"campaign_id": str(budgeted["id"]), "campaign": budgeted["name"]}
    assert value(text, "starpromo_campaign_budget_remaining", **labels) == 7
    assert value(text, "starpromo_campaign_budget_total", **labels) == 10
    assert [k for k in samples(text) if k[0] == "starpromo_campaign_budget_remaining"] == [
        ("starpromo_campaign_budget_remaining", frozenset(labels.items()))]
    assert value(text, "starpromo_telegram_outbox_pending") == 0
    assert value(text, "starpromo_metrics_database_up") == 1


def test_metrics_need_no_token_but_an_allowlisted_address(metered_api: Api) -> None:
    assert metered_api.client.get("/metrics").status_code == 200
    outsider = metered_api.client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert outsider.status_code == 403 and outsider.json is not None
    assert outsider.json["error"]["code"] == "FORBIDDEN"


def test_a_client_chosen_method_never_becomes_a_label(metered_api: Api) -> None:
    metered_api.client.open("/healthz", method="BREW")
    text = metered_api.client.get("/metrics").get_data(as_text=True)
    methods = {dict(labels).get("method") for name, labels in samples(text) if name == "starpromo_http_requests_total"}
    assert "BREW" not in methods and "other" in methods
