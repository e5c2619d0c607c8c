"""One fake Bot API and one PostgreSQL database for the package; a ``world`` on each family (memory, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from adapters.sql.engine import EngineHolder
from tests.fakes.bot_api import FakeBotApi
from tests.integration.payments_reliability.world import World, make_world
from tests.sql import pg_engines, truncate_all


@pytest.fixture(scope="package")
def bot_api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as api:
        yield api


@pytest.fixture(scope="package")
def _pg() -> Iterator[EngineHolder]:
    with pg_engines("starpromo_payments") as engines:
        yield engines


@pytest.fixture(params=["memory", "postgresql"])
def world(request: pytest.FixtureRequest, bot_api: FakeBotApi) -> Iterator[World]:
    with ExitStack() as stack:
        if request.param == "memory":
            url = "memory://"
        else:
            engines: EngineHolder = request.getfixturevalue("_pg")
            truncate_all(engines)
            url = engines.url
        yield stack.enter_context(make_world(url, bot_api))
