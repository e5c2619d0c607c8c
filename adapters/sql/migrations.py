"""Alembic, driven from code: `starpromo db upgrade` and the tests use these functions.

The migration scripts live in the top-level ``alembic/`` directory (SPEC 1), found relative to this
package, so the command works from any working directory.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from adapters.sql.engine import EngineHolder
from alembic import command

ALEMBIC_DIR = Path(__file__).resolve().parents[2] / "alembic"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    if not (ALEMBIC_DIR / "env.py").is_file():
        raise RuntimeError(f"migration scripts not found at {ALEMBIC_DIR}")
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engines: EngineHolder) -> str | None:
    with engines.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engines: EngineHolder, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate to ``revision``; returns (revision before, revision after). At head already: a no-op."""
    before = current_revision(engines)
    with engines.engine.connect() as conn:
        command.upgrade(alembic_config(conn), revision)
        if conn.in_transaction():
            conn.commit()
    return before, current_revision(engines)


def downgrade(engines: EngineHolder, revision: str) -> tuple[str | None, str | None]:
    """Migrate back to ``revision``; returns (revision before, revision after). A downgrade that the data does
    not fit refuses with the migration's own message and changes nothing."""
    before = current_revision(engines)
    with engines.engine.connect() as conn:
        command.downgrade(alembic_config(conn), revision)
        if conn.in_transaction():
            conn.commit()
    return before, current_revision(engines)
