"""Why ``DATABASE_POOL_MODE=transaction`` exists: behind PgBouncer in transaction mode a client's transactions land
on whichever server connection is free, so a statement psycopg prepared on one (after its 5th run, in session mode)
is missing on the next. Transaction mode prepares nothing, and the same sequence works."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from adapters.sql.engine import POOL_SESSION, POOL_TRANSACTION, create_engine

# One statement run often enough on one client connection for psycopg to prepare it (its threshold is 5).
STATEMENT = sa.text("SELECT count(*) FROM promo_codes WHERE id > :after")
RUNS = 8


def _run_then_move_to_another_server_connection(engine: sa.Engine) -> int:
    """``STATEMENT`` ``RUNS`` times on one client connection, each in a transaction of its own; then a second client
    holds the server connection those ran on (PgBouncer hands out the most recently freed one first), so the
    first client's next transaction runs on another server connection."""
    with engine.connect() as first, engine.connect() as second:
        for i in range(RUNS):
            first.execute(STATEMENT, {"after": i}).scalar_one()
            first.commit()
        second.execute(sa.text("SELECT 1"))  # begins a transaction and keeps it open: its server connection is busy
        try:
            return int(first.execute(STATEMENT, {"after": 0}).scalar_one())
        finally:
            first.rollback()
            second.rollback()


def test_session_mode_prepares_statements_a_transaction_pooler_loses(bouncer_database: str) -> None:
    engine = create_engine(bouncer_database, pool_size=2, pool_mode=POOL_SESSION)
    try:
        with pytest.raises(sa.exc.DBAPIError, match="prepared statement"):
            _run_then_move_to_another_server_connection(engine)
    finally:
        engine.dispose()


def test_transaction_mode_prepares_nothing_and_the_same_sequence_works(bouncer_database: str) -> None:
    engine = create_engine(bouncer_database, pool_size=2, pool_mode=POOL_TRANSACTION)
    try:
        assert _run_then_move_to_another_server_connection(engine) >= 0
    finally:
        engine.dispose()
