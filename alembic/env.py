"""Alembic environment: the target is ``adapters.sql.tables.metadata``; the database comes from the
connection `starpromo db upgrade` passes in, else ``DATABASE_URL`` (default ``sqlite:///starpromo.db``)."""

from __future__ import annotations

import os

from adapters.sql.engine import create_engine
from adapters.sql.tables import metadata
from alembic import context

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL", "sqlite:///starpromo.db")
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            _migrate(conn)
    finally:
        engine.dispose()


def _migrate(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # type: ignore[attr-defined]
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():  # type: ignore[attr-defined]
        connection.commit()  # type: ignore[attr-defined]


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `starpromo db upgrade`")
run()
