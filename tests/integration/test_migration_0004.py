"""Migration 0004 (ops console operators) on SQLite and PostgreSQL: upgrade from 0003 adds the two tables with
their unique name key, a downgrade to 0003 drops exactly them, and upgrading again works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.sql.engine import EngineHolder
from adapters.sql.migrations import current_revision, downgrade, upgrade
from tests.sql import unmigrated_engines

NEW_TABLES = {"ops_operators", "ops_sign_in_failures"}
INSERT_OPERATOR = sa.text(
    "INSERT INTO ops_operators (name, name_key, role, password_hash, session_epoch, created_at, updated_at) "
    "VALUES (:name, :key, :role, '$argon2id$x', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")


@pytest.fixture(params=["postgresql", "sqlite"])
def engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineHolder]:
    with unmigrated_engines(request.param, tmp_path, "starpromo_m0004") as holder:
        yield holder


def tables(engines: EngineHolder) -> set[str]:
    return set(sa.inspect(engines.engine).get_table_names())


def test_0004_adds_the_operator_tables_and_downgrading_drops_only_them(engines: EngineHolder) -> None:
    assert upgrade(engines, "0003") == (None, "0003")
    before = tables(engines)
    assert not NEW_TABLES & before
    assert upgrade(engines, "0004") == ("0003", "0004")
    assert tables(engines) == before | NEW_TABLES
    with engines.engine.begin() as conn:
        conn.execute(INSERT_OPERATOR, {"name": "Ann", "key": "ann", "role": "admin"})
        conn.execute(sa.text("INSERT INTO ops_sign_in_failures (name_key, address, at) "
                             "VALUES ('ann', '10.0.0.1', CURRENT_TIMESTAMP)"))
    with pytest.raises(sa.exc.IntegrityError), engines.engine.begin() as conn:
        conn.execute(INSERT_OPERATOR, {"name": "ANN", "key": "ann", "role": "viewer"})
    with pytest.raises(sa.exc.IntegrityError), engines.engine.begin() as conn:
        conn.execute(INSERT_OPERATOR, {"name": "bob", "key": "bob", "role": "root"})
    index_names = {ix["name"] for ix in sa.inspect(engines.engine).get_indexes("ops_sign_in_failures")}
    assert {"ix_ops_sign_in_failures_name_key_at", "ix_ops_sign_in_failures_address_at"} <= index_names

    assert downgrade(engines, "0003") == ("0004", "0003")
    assert tables(engines) == before
    assert upgrade(engines, "0004") == ("0003", "0004")
    with engines.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ops_operators")).scalar_one() == 0
    assert current_revision(engines) == "0004"
