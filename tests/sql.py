"""Real databases for tests: a fresh, migrated PostgreSQL database or SQLite file per use.

PostgreSQL comes from scripts/with-services.sh (run by `make test`); a test that needs it fails, never
skips, when it is missing.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from adapters.sql.engine import EngineHolder
from adapters.sql.migrations import upgrade
from adapters.sql.tables import metadata
from tests.conftest import required_env


def create_pg_database(admin_url: str, name: str) -> str:
    """The database ``name`` on the server of ``admin_url``, new and empty (dropped first if it exists); its URL."""
    _as_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _as_admin(admin_url: str, *statements: str) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        admin.dispose()


@contextmanager
def fresh_pg_database(prefix: str = "starpromo") -> Iterator[str]:
    """A new, empty PostgreSQL database; its URL. Dropped afterwards."""
    admin_url = required_env("STARPROMO_TEST_PG_ADMIN_URL")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        yield create_pg_database(admin_url, name)
    finally:
        _as_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def unmigrated_engines(backend: str, directory: Path, prefix: str = "starpromo") -> Iterator[EngineHolder]:
    """Engines on an empty, unmigrated database (the migration tests take it to the revision they start from):
    ``backend`` "sqlite" (a file in ``directory``) or "postgresql" (a fresh database named after ``prefix``)."""
    with contextlib.ExitStack() as stack:
        url = (f"sqlite:///{directory / f'{uuid.uuid4().hex[:8]}.db'}" if backend == "sqlite"
               else stack.enter_context(fresh_pg_database(prefix)))
        holder = EngineHolder(url)
        try:
            yield holder
        finally:
            holder.dispose()


@contextmanager
def migrated(url: str, pool_size: int = 20) -> Iterator[EngineHolder]:
    engines = EngineHolder(url, pool_size)
    upgrade(engines)
    try:
        yield engines
    finally:
        engines.dispose()


@contextmanager
def pg_engines(prefix: str = "starpromo", pool_size: int = 20) -> Iterator[EngineHolder]:
    with fresh_pg_database(prefix) as url, migrated(url, pool_size) as engines:
        yield engines


@contextmanager
def sqlite_engines(directory: Path) -> Iterator[EngineHolder]:
    with migrated(f"sqlite:///{directory / f'{uuid.uuid4().hex[:8]}.db'}") as engines:
        yield engines


def truncate_all(engines: EngineHolder) -> None:
    """Empty every table (ids restart) between tests sharing one database."""
    names = [t.name for t in metadata.sorted_tables]
    with engines.engine.begin() as conn:
        if engines.dialect == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(names):
                conn.execute(sa.text(f"DELETE FROM {name}"))


def live_units_mismatch(engines: EngineHolder, derived: bool = True) -> list[tuple[str, int, int, int]]:
    """(level, id, used_total, live redemptions) of every code and every campaign breaking the SPEC 4
    accounting: a code's ``used_total`` must equal its RESERVED + APPLIED + REVOKED redemptions, a campaign's
    that number over all its codes, and neither may exceed its cap (a code's) or budget (a campaign's). A
    redemption filed under another campaign than its code's (which the campaign sum would hide) is listed as
    (``redemption``, id, its campaign_id, its code's campaign_id). The derived rows too: a campaign whose
    ``promo_code_counts`` differ from its codes as (``code_counts``, campaign_id, counted, codes) per status, and
    a purchase whose ``campaign_id`` is not its redemption's as (``purchase``, id, its campaign_id, the
    redemption's); ``derived=False`` leaves those out (a database migrated only up to a revision before 0010)."""
    core = """
        SELECT 'code' AS level, c.id, c.used_total, count(r.id) AS live
        FROM promo_codes c
        LEFT JOIN promo_redemptions r ON r.promo_code_id = c.id AND r.status IN ('RESERVED', 'APPLIED', 'REVOKED')
        GROUP BY c.id, c.used_total, c.max_total_uses
        HAVING c.used_total <> count(r.id) OR (c.max_total_uses IS NOT NULL AND c.used_total > c.max_total_uses)
        UNION ALL
        SELECT 'campaign' AS level, k.id, k.used_total, count(r.id) AS live
        FROM promo_campaigns k
        LEFT JOIN promo_codes c ON c.campaign_id = k.id
        LEFT JOIN promo_redemptions r ON r.promo_code_id = c.id AND r.status IN ('RESERVED', 'APPLIED', 'REVOKED')
        GROUP BY k.id, k.used_total, k.max_total_uses
        HAVING k.used_total <> count(r.id) OR (k.max_total_uses IS NOT NULL AND k.used_total > k.max_total_uses)
        UNION ALL
        SELECT 'redemption' AS level, r.id, r.campaign_id, c.campaign_id
        FROM promo_redemptions r JOIN promo_codes c ON c.id = r.promo_code_id
        WHERE r.campaign_id <> c.campaign_id
        {derived}
        ORDER BY 1, 2
    """
    derived_sql = """
        UNION ALL
        SELECT 'code_counts' AS level, coalesce(k.campaign_id, a.campaign_id), coalesce(k.codes, 0), coalesce(a.n, 0)
        FROM promo_code_counts k
        FULL OUTER JOIN (SELECT campaign_id, status, count(*) AS n FROM promo_codes GROUP BY campaign_id, status) a
          ON a.campaign_id = k.campaign_id AND a.status = k.status
        WHERE coalesce(k.codes, 0) <> coalesce(a.n, 0)
        UNION ALL
        SELECT 'purchase' AS level, p.id, coalesce(p.campaign_id, 0), coalesce(r.campaign_id, 0)
        FROM purchases p LEFT JOIN promo_redemptions r ON r.id = p.promo_redemption_id
        WHERE coalesce(p.campaign_id, 0) <> coalesce(r.campaign_id, 0)
    """
    sql = sa.text(core.format(derived=derived_sql if derived else ""))
    with engines.engine.connect() as conn:
        return [(str(level), int(a), int(b), int(c)) for level, a, b, c in conn.execute(sql)]

