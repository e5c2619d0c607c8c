"""Alembic environment: the target is ``adapters.sql.tables.metadata``; the database comes from the
connection `starpromo db upgrade` passes in (its engine follows ``DATABASE_POOL_MODE``), else the settings'
``DATABASE_URL`` and ``DATABASE_POOL_MODE`` (``alembic upgrade head`` run by hand).

Behind PgBouncer in transaction mode every migration works as it does on a direct connection: all of them run in
one transaction (PostgreSQL's DDL is transactional), their ``SET`` is ``SET LOCAL`` and the temporary table of 0003
is dropped before that transaction ends."""

from __future__ import annotations

import sqlalchemy as sa

from adapters.sql.engine import create_engine
from adapters.sql.tables import metadata
from alembic import context
from entrypoints.settings import Settings

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    settings = Settings.from_env(require_pepper=False)
    url = config.get_main_option("sqlalchemy.url") or settings.database_url
    engine = create_engine(url, pool_size=1, pool_mode=settings.database_pool_mode)
    try:
        with engine.connect() as conn:
            _migrate(conn)
    finally:
        engine.dispose()


def _migrate(connection: sa.Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A migration that rebuilds a table drops one other tables refer to: SQLite's foreign keys go off for the
        # run (outside any transaction: inside one the PRAGMA does nothing) and are checked before the commit.
        _sqlite_foreign_keys(connection, enabled=False)
    try:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows pointing at missing rows: {broken[:10]}")
        if connection.in_transaction():
            connection.commit()
    finally:
        if sqlite:
            _sqlite_foreign_keys(connection, enabled=True)


def _sqlite_foreign_keys(connection: sa.Connection, enabled: bool) -> None:
    """Straight on the driver's connection: SQLAlchemy would begin a transaction first."""
    driver_connection = connection.connection.dbapi_connection
    assert driver_connection is not None
    if connection.in_transaction() or getattr(driver_connection, "in_transaction", False):
        return  # the PRAGMA would be ignored; 0003 then refuses to rebuild with a clear message
    driver_connection.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `starpromo db upgrade`")
run()
