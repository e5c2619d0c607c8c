"""``DATABASE_POOL_MODE`` (SPEC 11): read once at start-up, a bad value names the variable, and every PostgreSQL
engine the container builds follows it (``transaction``: no server-side prepared statements). Behaviour through a
real PgBouncer: tests/integration/pgbouncer/."""

from __future__ import annotations

import pytest

from adapters.sql.engine import POOL_SESSION, POOL_TRANSACTION, EngineHolder, connect_args
from domain.errors import ConfigurationError
from entrypoints.container import build_container
from entrypoints.settings import Settings

PG = "postgresql+psycopg://starpromo@db.invalid/starpromo"


def test_session_is_the_default_and_transaction_is_read_from_the_environment() -> None:
    assert Settings.from_env({"PROMO_SECRET_PEPPER": "p"}).database_pool_mode == POOL_SESSION
    settings = Settings.from_env({"PROMO_SECRET_PEPPER": "p", "DATABASE_POOL_MODE": "transaction"})
    assert settings.database_pool_mode == POOL_TRANSACTION


@pytest.mark.parametrize("value", ["statement", "TRANSACTION", "pgbouncer"])
def test_an_unknown_pool_mode_stops_start_up_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"DATABASE_POOL_MODE: invalid value '{value}'"):
        Settings.from_env({"PROMO_SECRET_PEPPER": "p", "DATABASE_POOL_MODE": value})


def test_transaction_mode_turns_prepared_statements_off_and_session_mode_keeps_the_driver_default() -> None:
    assert connect_args(POOL_TRANSACTION) == {"connect_timeout": 10, "prepare_threshold": None}
    assert "prepare_threshold" not in connect_args(POOL_SESSION)
    with pytest.raises(ValueError, match="pool mode"):
        EngineHolder(PG, 2, "statement")


def test_the_container_builds_its_engines_in_the_configured_mode() -> None:
    settings = Settings.from_env({"PROMO_SECRET_PEPPER": "p", "DATABASE_URL": PG, "DATABASE_POOL_MODE": "transaction"})
    engines = build_container(settings).sql_engines()
    assert isinstance(engines, EngineHolder) and engines.pool_mode == POOL_TRANSACTION
