"""The internal API fuzzed from its own OpenAPI document (SPEC 13): no 5xx, every response as documented.

Runs against the WSGI app on the in-memory family (25 examples per operation) and on a migrated SQLite
file (10 per operation: real column types, constraints and integer limits), each seeded with a few
campaigns (one with generated codes, one paused, one with a budget of 1) and a redemption, so that redeem,
the campaign, code, audit and user routes reach their success paths too (the document's path ids carry the
example 1, an id the seed data has).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from dependency_injector import providers
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.memory import InMemoryPaymentGateway, ManualClock
from adapters.sql.engine import EngineHolder
from adapters.sql.migrations import upgrade
from entrypoints.http import create_app
from entrypoints.http.app import FEATURES, VIEW_MODULES
from tests.conftest import T0
from tests.unit.http.conftest import AUTH, Api, make_container

# schemathesis's items share one node id per test function: pytest-xdist would run one operation of each, not all.
pytestmark = pytest.mark.serial

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


def _app(**env: str) -> Any:
    container = make_container(ManualClock(T0), **env)
    container.payment_gateway.override(providers.Object(InMemoryPaymentGateway()))
    app = create_app(container)
    api = Api(app.test_client())
    first = api.create_campaign("AAAA1111", max_total_uses=1000, per_user_limit=3)
    assert api.post(f"/internal/promo/campaigns/{first['id']}/codes", {"count": 5}).status_code == 201
    api.create_campaign("BBBB2222", promo_type="PREMIUM_GRANT", grant_plan_code="PREMIUM", grant_days=30)
    paused = api.create_campaign("CCCC3333", max_total_uses=1)
    api.post(f"/internal/promo/campaigns/{paused['id']}/status", {"status": "PAUSED"}, headers={"X-Actor": "fuzz"})
    assert api.redeem(1, "AAAA1111", "seed-1").status_code == 200
    return app


APP = _app()
WIRED = [*VIEW_MODULES, *(f.module for f in FEATURES)]
# schemathesis's WSGI client sends no client address; the allowlist needs loopback.
LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}
schema = schemathesis.openapi.from_wsgi("/internal/openapi.json", APP, headers=AUTH, environ_base=LOOPBACK)


def _sqlite_url() -> str:
    directory = tempfile.mkdtemp(prefix="starpromo-fuzz-")
    atexit.register(shutil.rmtree, directory, True)
    url = f"sqlite:///{Path(directory) / 'fuzz.db'}"
    engines = EngineHolder(url)
    upgrade(engines)
    engines.dispose()
    return url


SQLITE_APP = _app(DATABASE_URL=_sqlite_url())
sqlite_schema = schemathesis.openapi.from_wsgi("/internal/openapi.json", SQLITE_APP, headers=AUTH,
                                               environ_base=LOOPBACK)


@pytest.fixture
def memory_app_wired() -> None:
    """The container behind APP wired into the view modules (other tests wire them to theirs): once per API
    operation, before its generated cases (wiring is ~30 ms; per case it was half of this module's time)."""
    APP.extensions["starpromo.container"].wire(modules=WIRED, packages=[])


@pytest.fixture
def sqlite_app_wired() -> None:
    SQLITE_APP.extensions["starpromo.container"].wire(modules=WIRED, packages=[])


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case[Any], memory_app_wired: None) -> None:
    case.call_and_validate(headers=AUTH, checks=CHECKS, environ_base=LOOPBACK)


@sqlite_schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_on_sqlite_conforms_to_its_openapi_document(case: schemathesis.Case[Any], sqlite_app_wired: None) -> None:
    case.call_and_validate(headers=AUTH, checks=CHECKS, environ_base=LOOPBACK)
