"""What every SQL repository shares: the connection of its unit of work, the mapping of constraint violations to
domain errors, the raw psycopg path of the hot statements, and small helpers (COPY text, hour buckets, chunks).

Conditional changes are one ``UPDATE ... WHERE <expected state> ... RETURNING``; unique violations map back to
the domain's ``ConstraintViolation`` subclasses by constraint name (PostgreSQL) or by column list (SQLite). Job
queries lock their batch with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serializes writers with
``BEGIN IMMEDIATE`` instead).

Raw SQL never reads ``SELECT *`` by position: a migrated database may hold a table's columns in another physical
order than a fresh one, so every column list is written out from the ``Table`` object (``column_list``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from psycopg.pq import TransactionStatus

from domain.errors import (
    ConstraintViolation,
    DuplicateCampaignName,
    DuplicateChargeId,
    DuplicateCodeHash,
    DuplicateIdempotencyKey,
    LiveRedemptionExists,
    OpenPurchaseExists,
    UserSlotTaken,
)

# Constraint name (PostgreSQL) and "table.col, table.col" (SQLite's message) -> domain error.
VIOLATIONS: dict[str, type[ConstraintViolation]] = {
    "uq_promo_campaigns_name": DuplicateCampaignName,
    "promo_campaigns.name": DuplicateCampaignName,
    "uq_promo_codes_code_hash": DuplicateCodeHash,
    "promo_codes.code_hash": DuplicateCodeHash,
    "uq_promo_redemptions_idempotency_key": DuplicateIdempotencyKey,
    "promo_redemptions.idempotency_key": DuplicateIdempotencyKey,
    "uq_promo_redemptions_live_per_user": LiveRedemptionExists,
    "promo_redemptions.promo_code_id, promo_redemptions.user_id": LiveRedemptionExists,
    "uq_promo_redemptions_user_slot": UserSlotTaken,
    "promo_redemptions.campaign_id, promo_redemptions.user_id, promo_redemptions.user_slot": UserSlotTaken,
    "uq_purchases_open_per_user_product": OpenPurchaseExists,
    "purchases.user_id, purchases.product_code": OpenPurchaseExists,
    "uq_purchases_telegram_payment_charge_id": DuplicateChargeId,
    "purchases.telegram_payment_charge_id": DuplicateChargeId,
}
# A row pointing at a missing row (a code of no campaign): the plain ``ConstraintViolation``, as the in-memory
# adapter raises it. SQLite names no constraint in that message.
_FOREIGN_KEY_VIOLATION = "23503"
_SQLITE_FOREIGN_KEY_MESSAGE = "FOREIGN KEY constraint failed"
_SQLITE_UNIQUE_MESSAGE = "UNIQUE constraint failed: "

# A row by column name: a SQLAlchemy ``Row._mapping`` (keyed by name or column) or a plain dict.
ColumnValues = Mapping[Any, Any]

# SQLite allows 32766 bound parameters; stay well below for IN lists.
IN_CHUNK = 900
CODE_PREFIX_LENGTH = 4
_IDLE = TransactionStatus.IDLE
_NO_JIT = sa.text("SET LOCAL jit = off")


def constraint_violation(exc: sa.exc.IntegrityError) -> ConstraintViolation | None:
    """The domain error a unique (or foreign key) violation stands for, or None for any other integrity error."""
    driver_error = exc.orig
    diagnostics = getattr(driver_error, "diag", None)
    name = getattr(diagnostics, "constraint_name", None)
    if diagnostics is not None and getattr(diagnostics, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
        return ConstraintViolation(str(name))
    message = str(driver_error)
    if name is None:
        if _SQLITE_FOREIGN_KEY_MESSAGE in message:
            return ConstraintViolation(_SQLITE_FOREIGN_KEY_MESSAGE)
        name = message.split(_SQLITE_UNIQUE_MESSAGE, 1)[1].strip() if _SQLITE_UNIQUE_MESSAGE in message else None
    error_class = VIOLATIONS.get(name) if name else None
    return error_class(name) if error_class is not None else None


class PgStatement:
    """A statement compiled once for psycopg: its SQL text and its constant parameters. SQLAlchemy then skips
    building the expression and its cache key on every call (~75 us of CPU per statement)."""

    def __init__(self, statement: sa.ClauseElement, column_keys: list[str] | None = None) -> None:
        from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

        compiled = statement.compile(dialect=PGDialect_psycopg(), column_keys=column_keys)  # type: ignore[no-untyped-call]
        self.sql = str(compiled)
        self.defaults: dict[str, Any] = {key: plain(value) for key, value in compiled.params.items()}

    @classmethod
    def text(cls, sql: str) -> PgStatement:
        """A statement written as psycopg SQL (``%(name)s`` placeholders), for what Core cannot say as simply."""
        statement = cls.__new__(cls)
        statement.sql, statement.defaults = sql, {}
        return statement


class SqlRepository:
    """One table's repository over the connection (and so the transaction) of a unit of work."""

    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"

    def _execute(self, statement: sa.Executable, params: Any = None) -> sa.CursorResult[Any]:
        """Execute ``statement``, turning a named constraint violation (an insert, or an update of a unique
        column) into its domain error."""
        try:
            return self._connection.execute(statement, params)
        except sa.exc.IntegrityError as exc:
            violation = constraint_violation(exc)
            if violation is None:
                raise
            raise violation from None

    def _without_jit(self) -> None:
        """PostgreSQL: no JIT compilation for the rest of this transaction. The window reports probe an index once
        per row of their window, which PostgreSQL estimates above ``jit_above_cost``; compiling them took longer
        (20-100 ms) than running them (~40 ms for 16,000 purchases)."""
        if self._postgres:
            self._connection.execute(_NO_JIT)

    def _skip_locked(self, statement: sa.Select[Any], *tables: sa.Table) -> sa.Select[Any]:
        """A job's batch: rows another transaction holds are skipped, not waited for (PostgreSQL)."""
        if self._postgres:
            return statement.with_for_update(skip_locked=True, of=list(tables) or None)
        return statement

    def run_raw(self, statement: PgStatement, params: dict[str, Any], *, alone: bool = False) -> Any:
        """PostgreSQL hot path: ``statement`` straight on the psycopg connection of this unit of work.

        The same SQL text SQLAlchemy would send (compiled once), in the same transaction (begun through
        SQLAlchemy, so commit and rollback stay the unit of work's), seen by ``before_cursor_execute``
        listeners; errors come out as SQLAlchemy's ``DBAPIError`` subclasses (named constraint violations as
        their domain errors), and a lost connection is invalidated, exactly as from ``Connection.execute``.
        What it skips is SQLAlchemy's execution context and result wrapping: ~50 us of CPU per statement,
        ~0.4 ms per redeem.

        ``alone``: when this unit of work has no transaction open yet, the statement runs as a transaction of
        its own (autocommit: no BEGIN and no COMMIT round trip) and the unit of work still has none after it.
        Only for a read, or for a write that is whole by itself (all of it or nothing) and that the caller
        commits anyway: ``Redemptions.redeem_snapshot`` and ``add_and_claim`` on the redeem hot path."""
        connection = self._connection
        driver_connection = connection.connection.dbapi_connection
        assert driver_connection is not None
        alone = alone and not connection.in_transaction() and driver_connection.info.transaction_status == _IDLE
        if not alone and not connection.in_transaction():
            connection.begin()
        values = {**statement.defaults, **params}
        cursor = driver_connection.cursor()
        for listener in connection.dispatch.before_cursor_execute:
            listener(connection, cursor, statement.sql, values, None, False)
        if alone:
            driver_connection.autocommit = True
        try:
            cursor.execute(statement.sql, values)
        except Exception as exc:  # a psycopg.Error; anything else is re-raised as it is
            driver_error_class = connection.dialect.loaded_dbapi.Error
            if not isinstance(exc, driver_error_class):
                raise
            invalidated = bool(connection.dialect.is_disconnect(exc, driver_connection, cursor))
            if invalidated:
                connection.invalidate(exc)
            wrapped = sa.exc.DBAPIError.instance(statement.sql, values, exc, driver_error_class,
                                                 connection_invalidated=invalidated, dialect=connection.dialect)
            if isinstance(wrapped, sa.exc.IntegrityError):
                violation = constraint_violation(wrapped)
                if violation is not None:
                    raise violation from None
            raise wrapped from exc
        finally:
            if alone and not driver_connection.closed:
                driver_connection.autocommit = False
        return cursor


def column_names(table: sa.Table) -> list[str]:
    """The table's column names in the order of its ``Table`` object (the order every statement here selects)."""
    return [column.name for column in table.c]


def column_list(table: sa.Table, alias: str) -> str:
    """``alias.col, alias.col, ...`` for raw SQL: every column of ``table`` by name, never by position."""
    return ", ".join(f"{alias}.{name}" for name in column_names(table))


def plain(value: Any) -> Any:
    """Enum members as their plain string value (drivers need not know StrEnum)."""
    return value.value if hasattr(value, "value") else value


def utc(value: datetime | None) -> datetime | None:
    """A timestamp as aware UTC: psycopg's ``timestamptz`` comes in the session's time zone on the raw path."""
    return value.astimezone(UTC) if value is not None else None


def utc_required(value: datetime) -> datetime:
    return value.astimezone(UTC)


def in_chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield list(values[start:start + size])


def like_escaped(text: str) -> str:
    """``text`` taken literally inside a LIKE pattern (escape character ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def starts_with(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    """``column`` starts with ``prefix``. A stored ``code_prefix`` is always 4 characters (a code has at least
    4), so a prefix of 4 or more is an equality, which an index serves whatever the collation."""
    if len(prefix) >= CODE_PREFIX_LENGTH:
        return column == prefix
    return column.like(f"{like_escaped(prefix)}%", escape="\\")


def hour_bucket(column: sa.ColumnElement[Any], postgres: bool) -> sa.ColumnElement[Any]:
    """The start of the UTC hour of a timestamp column: PostgreSQL truncates the UTC wall time; SQLite stores the
    UTC wall time as text already."""
    if postgres:
        return sa.func.date_trunc("hour", sa.func.timezone("UTC", column))
    return sa.func.strftime("%Y-%m-%d %H:00:00", column)


def hour_start(value: Any) -> datetime:
    """An ``hour_bucket`` value as an aware UTC datetime (naive UTC wall time from PostgreSQL, text from SQLite)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: Any) -> str:
    """One value in ``COPY ... FROM STDIN`` text format (``\\N`` is NULL)."""
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    return str(plain(value)).translate(_COPY_ESCAPES)


class CounterRelease:
    """Give units back to many rows of a table with a ``used_total`` counter (never below zero): expired
    reservations returning their units to their codes, and to their campaigns.

    PostgreSQL: one UPDATE whatever the count, joined to a sub-SELECT of the rows and their (id, units) arrays that
    locks the rows in id order (``ORDER BY id FOR UPDATE``) before any is updated, so two runs at once never
    deadlock. SQLite (one writer at a time): one UPDATE per row."""

    def __init__(self, table: sa.Table) -> None:
        name = table.name
        self._release_many = sa.text(
            f"UPDATE {name} AS counted SET used_total = CASE WHEN counted.used_total >= released.units "
            "THEN counted.used_total - released.units ELSE 0 END, updated_at = :now_ "
            f"FROM (SELECT locked.id, given.units FROM {name} AS locked "
            "JOIN unnest(CAST(:ids AS bigint[]), CAST(:units AS integer[])) AS given(id, units) "
            "ON locked.id = given.id "
            "ORDER BY locked.id FOR UPDATE OF locked) AS released "
            "WHERE counted.id = released.id AND counted.used_total > 0"
        ).bindparams(sa.bindparam("now_", type_=table.c.updated_at.type))
        units = sa.bindparam("units", type_=sa.Integer)
        self._release_one = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("row_id"), table.c.used_total > 0)
            .values(used_total=sa.case((table.c.used_total >= units, table.c.used_total - units), else_=0),
                    updated_at=sa.bindparam("now_", type_=table.c.updated_at.type))
        )

    def __call__(self, connection: sa.Connection, units: Mapping[int, int], now: datetime) -> None:
        ids = [row_id for row_id in sorted(units) if units[row_id] > 0]
        if not ids:
            return
        if connection.dialect.name == "postgresql":
            connection.execute(self._release_many, {"ids": ids, "units": [units[i] for i in ids], "now_": now})
            return
        connection.execute(self._release_one, [{"row_id": row_id, "now_": now, "units": units[row_id]}
                                               for row_id in ids])
