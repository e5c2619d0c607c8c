"""``/healthz``, ``/readyz`` and ``/internal/openapi.json``."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from dependency_injector import providers
from flask import Flask

from adapters.memory import InMemoryPaymentGateway, ManualClock
from entrypoints.http import create_app, inputs
from entrypoints.http.shapes import parse_body, parse_partial
from tests.unit.http.conftest import Api, assert_error, make_container


class _DownUnitOfWork:
    def __enter__(self) -> _DownUnitOfWork:
        raise ConnectionError("connection refused")

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        return None


def test_readyz_is_503_json_when_the_database_is_down(clock: ManualClock) -> None:
    container = make_container(clock)
    container.uow_factory.override(providers.Object(_DownUnitOfWork))
    app = create_app(container)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    err = assert_error(client.get("/readyz"), 503, "NOT_READY")
    assert err["details"] == {"database": "unreachable"}


def test_readyz_reports_redis_when_configured_and_stays_in_rotation_without_it(clock: ManualClock) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    container = make_container(clock)
    client = create_app(container).test_client()
    assert client.get("/readyz").json == {"status": "ready", "database": "ok", "redis": "not_configured"}
    down = make_container(clock, REDIS_URL=f"redis://127.0.0.1:{closed}/0")
    answer = create_app(down).test_client().get("/readyz")
    assert answer.status_code == 200
    assert answer.json == {"status": "degraded", "database": "ok", "redis": "down"}


def test_openapi_is_3_1_and_behind_auth(app: Flask, api: Api) -> None:
    assert_error(app.test_client().get("/internal/openapi.json"), 401, "UNAUTHORIZED")
    doc = api.get("/internal/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["internalToken"]["name"] == "X-Internal-Token"


def test_openapi_documents_exactly_the_routes_of_the_app(app: Flask, api: Api) -> None:
    doc = api.get("/internal/openapi.json").json
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule.replace("<int:", "{").replace(">", "}")
        served |= {(path, m) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    assert documented == served


def _body_schemas(doc: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The object schemas a request body may take (a ``oneOf`` gives several)."""
    schemas = doc["components"]["schemas"]
    if "$ref" in schema:
        return _body_schemas(doc, schemas[schema["$ref"].rsplit("/", 1)[-1]])
    if "oneOf" in schema:
        return [s for option in schema["oneOf"] for s in _body_schemas(doc, option)]
    return [schema]


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def test_openapi_request_bodies_refuse_unknown_fields(api: Api) -> None:
    doc = api.get("/internal/openapi.json").json
    for _, _, op in _operations(doc):
        for status in ("401", "403", "500"):
            assert status in op["responses"] or op.get("security") == []
        body = op.get("requestBody")
        if body:
            for schema in _body_schemas(doc, body["content"]["application/json"]["schema"]):
                assert schema["additionalProperties"] is False
            assert {"400", "413"} <= set(op["responses"])


def test_every_change_documents_the_x_actor_header(clock: ManualClock) -> None:
    container = make_container(clock)
    container.payment_gateway.override(providers.Object(InMemoryPaymentGateway()))
    doc = Api(create_app(container).test_client()).get("/internal/openapi.json").json
    reads = {("/internal/promo/redeem", "post"), ("/internal/promo/codes/lookup", "post")}
    for path, method, op in _operations(doc):
        if not path.startswith("/internal/") or method == "get" or (path, method) in reads:
            continue
        names = [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]
        assert names == ["X-Actor"], (path, method)


def test_the_documented_examples_pass_the_checks_that_validate_requests() -> None:
    for cls in (inputs.RedeemRequest, inputs.CampaignCreateRequest, inputs.StatusChangeRequest,
                inputs.GenerateCodesRequest, inputs.AddCodeRequest, inputs.LookupRequest,
                inputs.RefundRollbackRequest):
        for example in cls.EXAMPLES:
            assert parse_body(example, cls)[1] == [], (cls, example)
    for example in inputs.CampaignChangeRequest.EXAMPLES:
        assert parse_partial(example, inputs.CampaignChangeRequest)[1] == []


def test_the_documented_query_limits_are_the_enforced_ones(api: Api) -> None:
    doc = api.get("/internal/openapi.json").json
    params = {p["name"]: p["schema"] for p in doc["paths"]["/internal/promo/codes"]["get"]["parameters"]}
    top = params["limit"]["maximum"]
    assert api.get(f"/internal/promo/codes?limit={top}").status_code == 200
    assert api.get(f"/internal/promo/codes?limit={top + 1}").status_code == 400
