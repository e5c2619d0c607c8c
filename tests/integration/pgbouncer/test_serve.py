"""``starpromo serve`` with ``DATABASE_URL`` pointing at PgBouncer in transaction mode and
``DATABASE_POOL_MODE=transaction``, migrated through it with ``starpromo db upgrade``: 300 racing redeems on a capped
code, then 200 plain redeems, over real HTTP. Every answer is a SPEC 7 outcome (200 or 422), never a 5xx, and the
counts are exact. With prepared statements (the session pool mode) the same traffic answered 5xx to 115 of the 300
racing redeems (94 x 500, 21 x 503): 32 server threads each run the same few statements again and again on client
connections PgBouncer spreads over fewer server connections than that."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.sql.engine import POOL_TRANSACTION, EngineHolder
from tests.integration.pgbouncer.conftest import through_pgbouncer
from tests.sql import fresh_pg_database, live_units_mismatch
from tests.unit.http.server import STARPROMO, Server, race_redeems, server_env

TRANSACTION_MODE = {"DATABASE_POOL_MODE": POOL_TRANSACTION}
THREADS = "32"


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A fresh database through PgBouncer, migrated through it as an operator would."""
    with fresh_pg_database("starpromo_bouncer_serve") as direct:
        url = through_pgbouncer(direct)
        proc = subprocess.run([STARPROMO, "db", "upgrade"], env=server_env(url, **TRANSACTION_MODE),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        yield url


def test_racing_and_plain_redeems_over_http_through_pgbouncer_answer_no_5xx_and_exact_counts(
        database_url: str, tmp_path: Path) -> None:
    server = Server(database_url, tmp_path / "serve.log", "--threads", THREADS, STARPROMO_DB_POOL_SIZE=THREADS,
                    **TRANSACTION_MODE)
    try:
        capped = server.post("/internal/promo/campaigns", {"name": "bouncer rush", "code": "BOUNCE-RUSH-1",
                                                           "promo_type": "PERCENT_DISCOUNT", "discount_percent": 10,
                                                           "max_total_uses": 120})
        assert capped.status_code == 201, capped.text
        plain = server.post("/internal/promo/campaigns", {"name": "bouncer plain", "code": "BOUNCE-PLAIN-1",
                                                          "promo_type": "PREMIUM_GRANT", "grant_plan_code": "PREMIUM",
                                                          "grant_days": 7})
        assert plain.status_code == 201, plain.text

        racing = race_redeems(server, "BOUNCERUSH1", range(1, 301), "rush-")
        assert racing == Counter({200: 120, 422: 180})
        after = race_redeems(server, "BOUNCEPLAIN1", range(1001, 1201), "plain-")
        assert after == Counter({200: 200})
    finally:
        log = server.stop()
    assert "Traceback" not in log
    engines = EngineHolder(database_url, 1, POOL_TRANSACTION)
    try:
        with engines.engine.connect() as conn:
            used = conn.execute(sa.text("SELECT name, used_total FROM promo_campaigns ORDER BY id")).all()
            attempts = conn.execute(sa.text("SELECT count(*) FROM promo_attempts")).scalar_one()
        assert [tuple(row) for row in used] == [("bouncer rush", 120), ("bouncer plain", 200)]
        assert attempts == 500
        assert live_units_mismatch(engines) == []
    finally:
        engines.dispose()
