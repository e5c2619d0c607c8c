"""``/healthz``, ``/readyz`` and ``/internal/openapi.json``."""

from __future__ import annotations

from types import TracebackType

from dependency_injector import providers
from flask import Flask

from adapters.memory import ManualClock
from entrypoints.http import create_app
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


def test_openapi_request_bodies_refuse_unknown_fields(api: Api) -> None:
    doc = api.get("/internal/openapi.json").json
    schemas = doc["components"]["schemas"]
    for ops in doc["paths"].values():
        for op in ops.values():
            for status in ("401", "403", "500"):
                assert status in op["responses"] or op.get("security") == []
            body = op.get("requestBody")
            if body:
                ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
                assert schemas[ref]["additionalProperties"] is False
                assert {"400", "413"} <= set(op["responses"])
