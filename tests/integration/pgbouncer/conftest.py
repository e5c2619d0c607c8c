"""PgBouncer in transaction pooling mode (Debian's ``pgbouncer``, started by scripts/with-services.sh in front of the
throwaway PostgreSQL, fewer server connections than the tests' clients) and a database reached through it with
``DATABASE_POOL_MODE=transaction``: migrated through it, and the services of the race package on it.

The service fixtures of the race package and the payments package's fake Bot API are reused as they are (imported
below); ``engines`` and ``world`` are this package's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from adapters.sql.engine import POOL_TRANSACTION, EngineHolder
from adapters.sql.migrations import upgrade
from tests.conftest import required_env
from tests.fakes.bot_api import FakeBotApi
from tests.integration.payments_reliability.conftest import bot_api
from tests.integration.payments_reliability.world import World, make_world
from tests.integration.pg_races.conftest import campaigns, checkout, codes, jobs, redemptions, uow_factory
from tests.integration.pg_races.races import MAX_THREADS
from tests.sql import fresh_pg_database, truncate_all

__all__ = ["bot_api", "campaigns", "checkout", "codes", "jobs", "redemptions", "through_pgbouncer", "uow_factory"]


def through_pgbouncer(direct_url: str) -> str:
    """The database of ``direct_url`` reached through PgBouncer, which serves every database of the cluster."""
    bouncer = sa.make_url(required_env("STARPROMO_TEST_PGBOUNCER_URL"))
    return sa.make_url(direct_url).set(host=bouncer.host, port=bouncer.port).render_as_string(hide_password=False)


@pytest.fixture(scope="package")
def bouncer_database() -> Iterator[str]:
    """A fresh database, migrated through PgBouncer in transaction mode (as `starpromo db upgrade` would be with
    ``DATABASE_POOL_MODE=transaction``); its URL through PgBouncer."""
    with fresh_pg_database("starpromo_bouncer") as direct:
        url = through_pgbouncer(direct)
        holder = EngineHolder(url, 1, POOL_TRANSACTION)
        try:
            upgrade(holder)
        finally:
            holder.dispose()
        yield url


@pytest.fixture(scope="package")
def engines(bouncer_database: str) -> Iterator[EngineHolder]:
    holder = EngineHolder(bouncer_database, MAX_THREADS, POOL_TRANSACTION)
    try:
        yield holder
    finally:
        holder.dispose()


@pytest.fixture
def world(engines: EngineHolder, bot_api: FakeBotApi) -> Iterator[World]:
    """The payments tests' world (a container with Telegram at the fake Bot API) on the database behind
    PgBouncer, with ``DATABASE_POOL_MODE=transaction``."""
    truncate_all(engines)
    with make_world(engines.url, bot_api, POOL_TRANSACTION) as made:
        yield made
