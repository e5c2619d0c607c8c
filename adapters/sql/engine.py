"""Engines: created lazily, tuned per backend, fork-safe (RQ forks a child per job and may reuse the parent's engine).

SQLite: WAL, a busy timeout and ``BEGIN IMMEDIATE`` for every transaction, so concurrent writers queue
instead of failing half-way with "database is locked" (SQLite's answer to row locks and ``SKIP LOCKED``).
PostgreSQL: psycopg 3, a pool sized for the WSGI threads. Pool mode ``session`` (a direct connection, or a
pooler that gives each client its own server connection): server-side prepared statements after the driver's
default threshold (a statement run 5 times on a connection is prepared there). Pool mode ``transaction`` (PgBouncer
in transaction pooling mode in front): no prepared statements at all. Such a pooler hands each transaction to any
of its server connections, so a statement prepared on one is missing on the next ("prepared statement "_pg3_0"
does not exist") or already there under the same name; under concurrent redeems that was a 5xx for more than a
third of the requests. Nothing else here depends on the server connection outliving a transaction: no session ``SET``
(only ``SET LOCAL``), no advisory locks, no ``LISTEN``, no temporary table outliving its transaction.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

DEFAULT_POOL_SIZE = 20
SQLITE_BUSY_TIMEOUT_MS = 30_000
# DATABASE_POOL_MODE: what sits between the process and PostgreSQL.
POOL_SESSION = "session"
POOL_TRANSACTION = "transaction"
POOL_MODES = (POOL_SESSION, POOL_TRANSACTION)


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` use psycopg 3 (the only PostgreSQL driver we ship)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def connect_args(pool_mode: str = POOL_SESSION) -> dict[str, Any]:
    """psycopg's connection arguments for ``pool_mode``: ``transaction`` turns server-side prepared statements
    off (``prepare_threshold=None``), which a transaction pooler cannot keep."""
    if pool_mode not in POOL_MODES:
        raise ValueError(f"pool mode must be one of {', '.join(POOL_MODES)}, got {pool_mode!r}")
    args: dict[str, Any] = {"connect_timeout": 10}
    if pool_mode == POOL_TRANSACTION:
        args["prepare_threshold"] = None
    return args


def create_engine(url: str, pool_size: int = DEFAULT_POOL_SIZE, pool_mode: str = POOL_SESSION) -> Engine:
    url = normalize_url(url)
    args = connect_args(pool_mode)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                                     "check_same_thread": False})
        _sqlite_setup(engine)
        return engine
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        pool_pre_ping=False,
        connect_args=args,
    )


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class EngineHolder:
    """The engine of ``url``: built on first use, kept across a fork. A forked child drops the pool it inherited
    without closing it (SQLAlchemy's ``dispose(close=False)`` for ``os.fork``: the parent's connections stay the
    parent's) and opens connections of its own; the engine itself (dialect, compiled statements) is kept."""

    def __init__(self, url: str, pool_size: int = DEFAULT_POOL_SIZE, pool_mode: str = POOL_SESSION) -> None:
        self.url = normalize_url(url)
        self._pool_size = pool_size
        connect_args(pool_mode)  # an unknown mode fails here, not at the first query
        self.pool_mode = pool_mode
        self._engine: Engine | None = None
        self._pid = 0
        self._lock = threading.Lock()
        _holders.add(self)

    @property
    def engine(self) -> Engine:
        engine = self._engine
        if engine is not None and self._pid == os.getpid():
            return engine
        with self._lock:
            if self._engine is not None and self._pid != os.getpid():
                self._after_fork()  # forked without the at-fork hook: never expected, kept as the safe fallback
            if self._engine is None:
                self._engine = create_engine(self.url, self._pool_size, self.pool_mode)
                self._pid = os.getpid()
            return self._engine

    def _after_fork(self) -> None:
        if self._engine is not None:
            self._engine.dispose(close=False)
        self._pid = os.getpid()

    @property
    def dialect(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None and self._pid == os.getpid():
                self._engine.dispose()
            self._engine = None


_holders: weakref.WeakSet[EngineHolder] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The child has one thread: a lock another thread of the parent held at the fork would never be released.
    for holder in list(_holders):
        holder._lock = threading.Lock()
        holder._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
