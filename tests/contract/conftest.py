"""The repository contract suite runs once per backend: memory, SQLite, PostgreSQL (SPEC 13). Also the small
helpers its tests share (row builders are in tests/builders.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.memory import InMemoryUnitOfWorkFactory
from adapters.sql.engine import EngineHolder
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from domain.model import CampaignStatus, PausedReason
from ports.repositories import UnitOfWork
from tests.conftest import T0
from tests.sql import pg_engines, sqlite_engines, truncate_all

BACKENDS = ["memory", "sqlite", "postgresql"]
LATER = T0 + timedelta(hours=1)


def ids(rows: Sequence[Any]) -> list[int]:
    """The ids of stored rows, in the order given."""
    return [int(row.id) for row in rows]


def paused(**changes: Any) -> dict[str, Any]:
    """The fields of a row paused by hand."""
    return {"status": CampaignStatus.PAUSED, "paused_reason": PausedReason.MANUAL, **changes}


@pytest.fixture(scope="session")
def _pg() -> Iterator[EngineHolder]:
    with pg_engines("starpromo_contract") as engines:
        yield engines


@pytest.fixture(scope="session")
def _sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineHolder]:
    with sqlite_engines(Path(tmp_path_factory.mktemp("contract"))) as engines:
        yield engines


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def uow_factory(backend: str, request: pytest.FixtureRequest) -> Callable[[], UnitOfWork]:
    if backend == "memory":
        return InMemoryUnitOfWorkFactory()
    engines: EngineHolder = request.getfixturevalue("_pg" if backend == "postgresql" else "_sqlite")
    truncate_all(engines)
    return SqlUnitOfWorkFactory(engines)
