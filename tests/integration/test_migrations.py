"""`starpromo db upgrade` builds the schema on an empty PostgreSQL database and an empty SQLite file, a second
run is a no-op, and the schema the migrations build equals the tables' metadata (adapters/sql/tables.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from adapters.sql.engine import create_engine
from adapters.sql.migrations import head_revision
from adapters.sql.tables import metadata
from tests.sql import fresh_pg_database

STARPROMO = str(Path(sys.executable).parent / "starpromo")
TABLES = {"promo_campaigns", "promo_codes", "promo_redemptions", "promo_attempts", "purchases", "entitlements",
          "entitlement_ledger", "processed_updates", "payment_reviews", "audit_log", "alembic_version",
          "ops_operators", "ops_sign_in_failures", "star_movements", "telegram_outbox", "promo_attempts_hourly",
          "promo_code_counts"}


def db_upgrade(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMO_", "DATABASE_URL"))}
    env["DATABASE_URL"] = url  # no pepper: migrating never hashes a code
    return subprocess.run([STARPROMO, "db", "upgrade"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with fresh_pg_database("starpromo_migrate") as url:
        yield url


def schema_differences(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            diffs: list[Any] = list(compare_metadata(ctx, metadata))
    finally:
        engine.dispose()
    if url.startswith("sqlite"):
        # SQLite has no IDENTITY: an INTEGER PRIMARY KEY is the rowid, which numbers rows the same way.
        diffs = [d for d in diffs if not (isinstance(d, list) and d[0][0] == "modify_default"
                                          and isinstance(d[0][-1], sa.Identity))]
    return diffs


def test_db_upgrade_builds_the_schema_and_a_second_run_is_a_no_op(empty_database: str, tmp_path: Path) -> None:
    first = db_upgrade(empty_database, tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"migrated from empty to revision {head_revision()}" in first.stdout
    engine = create_engine(empty_database)
    try:
        assert set(sa.inspect(engine).get_table_names()) == TABLES
    finally:
        engine.dispose()
    second = db_upgrade(empty_database, tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"database is up to date (revision {head_revision()})" in second.stdout


def test_the_migrated_schema_equals_the_tables_metadata(empty_database: str, tmp_path: Path) -> None:
    assert db_upgrade(empty_database, tmp_path).returncode == 0
    assert schema_differences(empty_database) == []


def test_the_partial_unique_indexes_exist_with_their_conditions(tmp_path: Path) -> None:
    with fresh_pg_database("starpromo_migrate") as url:
        assert db_upgrade(url, tmp_path).returncode == 0
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                defs: dict[str, str] = {str(name): str(definition) for name, definition in conn.execute(
                    sa.text("SELECT indexname, indexdef FROM pg_indexes"))}
        finally:
            engine.dispose()
    assert "WHERE ((status)::text <> 'EXPIRED'::text)" in defs["uq_promo_redemptions_live_per_user"]
    assert "UNIQUE" in defs["uq_promo_redemptions_live_per_user"]
    assert "(campaign_id, user_id, user_slot) WHERE ((status)::text <> 'EXPIRED'::text)" in \
        defs["uq_promo_redemptions_user_slot"]
    assert "UNIQUE" in defs["uq_promo_redemptions_user_slot"]
    assert "UNIQUE" in defs["uq_promo_campaigns_name"]
    assert "UNIQUE" in defs["uq_purchases_open_per_user_product"]
    assert "CREATED" in defs["uq_purchases_open_per_user_product"]
    assert "UNIQUE" in defs["uq_promo_redemptions_idempotency_key"]
    assert "UNIQUE" in defs["uq_purchases_telegram_payment_charge_id"]
    assert "UNIQUE" in defs["uq_promo_codes_code_hash"]


def test_db_upgrade_reports_an_unreachable_database_without_a_traceback(tmp_path: Path) -> None:
    proc = db_upgrade("postgresql+psycopg://nobody:secret@127.0.0.1:1/none", tmp_path)
    assert proc.returncode != 0
    assert "migration of 127.0.0.1:1/none failed" in proc.stderr
    assert "Traceback" not in proc.stderr and "secret" not in proc.stderr


def test_db_upgrade_names_a_malformed_database_url(tmp_path: Path) -> None:
    proc = db_upgrade("mysql://root:pw@localhost/x", tmp_path)
    assert proc.returncode == 2
    assert "DATABASE_URL" in proc.stderr and "pw" not in proc.stderr and "Traceback" not in proc.stderr


def test_db_upgrade_on_the_memory_family_has_nothing_to_do(tmp_path: Path) -> None:
    proc = db_upgrade("memory://", tmp_path)
    assert proc.returncode == 0 and "nothing to migrate" in proc.stdout


def test_upgrading_a_0001_database_with_purchases_keeps_them_and_downgrading_drops_only_the_new_parts(
        empty_database: str) -> None:
    from adapters.sql.engine import EngineHolder
    from adapters.sql.migrations import alembic_config, current_revision, upgrade
    from alembic import command

    engines = EngineHolder(empty_database)
    try:
        assert upgrade(engines, "0001") == (None, "0001")
        with engines.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO purchases (user_id, product_code, base_stars_amount, discount_stars_amount, "
                "final_stars_amount, status, telegram_payment_charge_id, created_at, updated_at, paid_at) "
                "VALUES (7, 'PREMIUM_30D', 150, 30, 120, 'PAID', 'ch-old', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP)"))
        assert upgrade(engines) == ("0001", head_revision())
        with engines.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT telegram_payment_charge_id FROM purchases")).scalar_one() == "ch-old"
            assert conn.execute(sa.text("SELECT count(*) FROM payment_reviews")).scalar_one() == 0
        with engines.engine.connect() as conn:
            command.downgrade(alembic_config(conn), "0001")
            if conn.in_transaction():
                conn.commit()
        assert current_revision(engines) == "0001"
        names = set(sa.inspect(engines.engine).get_table_names())
        assert "payment_reviews" not in names and "purchases" in names
    finally:
        engines.dispose()
