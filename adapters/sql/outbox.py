"""``telegram_outbox`` (port ``ports.outbox.TelegramOutbox``): the replies the bot owes.

The claim is one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``: two delivery
processes never take the same row, and a chat whose oldest PENDING row is taken (or not due) gives none,
so a chat's messages go out one at a time, in order.

On PostgreSQL the claim and the marks a delivery makes (sent, put back, failed) go the raw psycopg way, each
statement alone a transaction of its own when nothing else is open (``SqlRepository.run_raw``): one round trip
instead of BEGIN, statement, COMMIT. A launch burst makes several of them per reply, and on a busy 2-core host each
round trip is a wait for the scheduler.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from adapters.sql._base import ColumnValues, PgStatement, SqlRepository, column_names, utc
from adapters.sql.tables import UTCDateTime, telegram_outbox
from domain.outbox import MAX_ERROR, OutboxBacklog, OutboxMessage, OutboxStatus

_PENDING = OutboxStatus.PENDING.value


def _claim_statement(postgres: bool, one_chat: bool) -> sa.TextClause:
    """The claim, written once as SQL (built from expression objects on every call it cost more CPU than the rest
    of a webhook request): each chat's oldest PENDING row, due and not leased, oldest due first."""
    chat = " AND head.chat_id = :chat_id" if one_chat else ""
    lock = " FOR UPDATE OF head SKIP LOCKED" if postgres else ""  # SQLite: one writer at a time anyway
    return sa.text(
        "UPDATE telegram_outbox SET leased_until = :lease_until, attempts = attempts + 1, updated_at = :now "
        "WHERE id IN (SELECT head.id FROM telegram_outbox AS head "
        f"WHERE head.status = '{_PENDING}' AND head.next_attempt_at <= :now "
        f"AND (head.leased_until IS NULL OR head.leased_until <= :now){chat} "
        "AND NOT EXISTS (SELECT 1 FROM telegram_outbox AS older WHERE older.chat_id = head.chat_id "
        f"AND older.status = '{_PENDING}' AND older.id < head.id) "
        f"ORDER BY head.next_attempt_at, head.id LIMIT :limit{lock}) "
        f"RETURNING {', '.join(column_names(telegram_outbox))}"
    ).bindparams(sa.bindparam("now", type_=UTCDateTime()), sa.bindparam("lease_until", type_=UTCDateTime()))


_CLAIM = {(postgres, one_chat): _claim_statement(postgres, one_chat).columns(*telegram_outbox.c)
          for postgres in (True, False) for one_chat in (True, False)}
_COLUMNS = column_names(telegram_outbox)
_TIMESTAMPS = frozenset(c.name for c in telegram_outbox.c if isinstance(c.type, UTCDateTime))


def _pg(sql: str) -> PgStatement:
    """``sql`` with ``:name`` placeholders as psycopg's ``%(name)s`` (timestamps cast, as the column types)."""
    for name in ("lease_until", "now", "next_attempt_at"):
        sql = sql.replace(f":{name}", f"%({name})s::timestamptz")
    for name in ("limit", "chat_id", "message_id", "telegram_message_id", "error"):
        sql = sql.replace(f":{name}", f"%({name})s")
    return PgStatement.text(sql)


_PG_CLAIM = {one_chat: _pg(str(_claim_statement(True, one_chat))) for one_chat in (True, False)}
_PG_MARK = {
    "sent": _pg(f"UPDATE telegram_outbox SET status = '{OutboxStatus.SENT.value}', telegram_message_id = "
                ":telegram_message_id, sent_at = :now, leased_until = NULL, updated_at = :now "
                f"WHERE id = :message_id AND status = '{_PENDING}'"),
    "reschedule": _pg("UPDATE telegram_outbox SET next_attempt_at = :next_attempt_at, leased_until = NULL, "
                      f"updated_at = :now, last_error = :error WHERE id = :message_id AND status = '{_PENDING}'"),
    "failed": _pg(f"UPDATE telegram_outbox SET status = '{OutboxStatus.FAILED.value}', leased_until = NULL, "
                  f"updated_at = :now, last_error = :error WHERE id = :message_id AND status = '{_PENDING}'"),
}


def _from_tuple(row: Any) -> OutboxMessage:
    values = dict(zip(_COLUMNS, row, strict=True))
    for name in _TIMESTAMPS:
        values[name] = utc(values[name])
    return message_from_row(values)


def message_from_row(row: ColumnValues) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"], chat_id=row["chat_id"], dedup_key=row["dedup_key"], method=row["method"],
        payload=dict(row["payload"] or {}), status=OutboxStatus(row["status"]), attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"], leased_until=row["leased_until"], created_at=row["created_at"],
        updated_at=row["updated_at"], sent_at=row["sent_at"], telegram_message_id=row["telegram_message_id"],
        last_error=row["last_error"],
    )


class SqlTelegramOutbox(SqlRepository):
    table = telegram_outbox

    def _many(self, statement: sa.Executable) -> list[OutboxMessage]:
        return [message_from_row(row._mapping) for row in self._execute(statement)]

    def add(self, message: OutboxMessage) -> OutboxMessage | None:
        insert = pg_dialect.insert(self.table) if self._postgres else sqlite_dialect.insert(self.table)
        rows = self._many(insert.values(
            chat_id=message.chat_id, dedup_key=message.dedup_key, method=message.method,
            payload=dict(message.payload), status=message.status.value, attempts=message.attempts,
            next_attempt_at=message.next_attempt_at, leased_until=message.leased_until,
            created_at=message.created_at, updated_at=message.updated_at, sent_at=message.sent_at,
            telegram_message_id=message.telegram_message_id, last_error=message.last_error,
        ).on_conflict_do_nothing(index_elements=[self.table.c.dedup_key]).returning(self.table))
        return rows[0] if rows else None

    def claim_due(self, now: datetime, lease_until: datetime, limit: int,
                  chat_id: int | None = None) -> list[OutboxMessage]:
        params: dict[str, Any] = {"now": now, "lease_until": lease_until, "limit": limit}
        if chat_id is not None:
            params["chat_id"] = chat_id
        if self._postgres:
            cursor = self.run_raw(_PG_CLAIM[chat_id is not None], params, alone=True)
            claimed = [_from_tuple(row) for row in cursor.fetchall()]
        else:
            claimed = [message_from_row(row._mapping) for row in
                       self._connection.execute(_CLAIM[(False, chat_id is not None)], params)]
        return sorted(claimed, key=lambda m: (m.next_attempt_at, m.id or 0))

    def _mark_pg(self, kind: str, **params: Any) -> bool:
        return bool(self.run_raw(_PG_MARK[kind], params, alone=True).rowcount)

    def _change(self, message_id: int, **values: Any) -> bool:
        t = self.table
        result = self._execute(sa.update(t).where(t.c.id == message_id, t.c.status == _PENDING).values(**values))
        return bool(result.rowcount)

    def mark_sent(self, message_id: int, telegram_message_id: int, now: datetime) -> bool:
        if self._postgres:
            return self._mark_pg("sent", message_id=message_id, telegram_message_id=telegram_message_id, now=now)
        return self._change(message_id, status=OutboxStatus.SENT.value, telegram_message_id=telegram_message_id,
                            sent_at=now, leased_until=None, updated_at=now)

    def reschedule(self, message_id: int, next_attempt_at: datetime, error: str | None, now: datetime) -> bool:
        if self._postgres:
            return self._mark_pg("reschedule", message_id=message_id, next_attempt_at=next_attempt_at, now=now,
                                 error=error[:MAX_ERROR] if error is not None else None)
        return self._change(message_id, next_attempt_at=next_attempt_at, leased_until=None, updated_at=now,
                            last_error=error[:MAX_ERROR] if error is not None else None)

    def mark_failed(self, message_id: int, error: str, now: datetime) -> bool:
        if self._postgres:
            return self._mark_pg("failed", message_id=message_id, now=now, error=error[:MAX_ERROR])
        return self._change(message_id, status=OutboxStatus.FAILED.value, leased_until=None, updated_at=now,
                            last_error=error[:MAX_ERROR])

    def backlog(self) -> int:
        t = self.table
        return int(self._execute(sa.select(sa.func.count()).select_from(t).where(t.c.status == _PENDING))
                   .scalar_one())

    def summary(self, now: datetime) -> OutboxBacklog:
        t = self.table
        pending = t.c.status == _PENDING
        counts: Any = self._execute(sa.select(
            sa.func.count().filter(pending),
            sa.func.count().filter(pending, t.c.next_attempt_at <= now),
            sa.func.count().filter(t.c.status == OutboxStatus.FAILED.value),
        ).select_from(t)).one()
        oldest = self._execute(sa.select(t.c.created_at).where(pending).order_by(t.c.created_at).limit(1)).scalar()
        return OutboxBacklog(pending=int(counts[0]), due=int(counts[1]), failed=int(counts[2]),
                             oldest_pending_at=oldest, next_due_at=self.next_due_at())

    def next_due_at(self) -> datetime | None:
        t = self.table
        claimable_at = sa.case((t.c.leased_until > t.c.next_attempt_at, t.c.leased_until),
                               else_=t.c.next_attempt_at)
        row: Any = self._execute(sa.select(t.c.next_attempt_at, t.c.leased_until).where(t.c.status == _PENDING)
                                 .order_by(claimable_at).limit(1)).first()
        return None if row is None else max(row[0], row[1] or row[0])

    def list(self, status: str | None, limit: int, after_id: int | None = None) -> list[OutboxMessage]:
        t = self.table
        statement = sa.select(t).order_by(t.c.id).limit(limit)
        if status is not None:
            statement = statement.where(t.c.status == status)
        if after_id is not None:
            statement = statement.where(t.c.id > after_id)
        return self._many(statement)

    def redeliver(self, message_ids: Sequence[int] | None, now: datetime) -> int:
        t = self.table
        statement = sa.update(t).where(t.c.status == OutboxStatus.FAILED.value).values(
            status=_PENDING, attempts=0, next_attempt_at=now, leased_until=None, updated_at=now)
        if message_ids is not None:
            statement = statement.where(t.c.id.in_(list(message_ids)))
        return int(self._execute(statement).rowcount)

    def delete_sent_before(self, cutoff: datetime, limit: int) -> int:
        t = self.table
        oldest = (sa.select(t.c.id).where(t.c.status == OutboxStatus.SENT.value, t.c.sent_at < cutoff)
                  .order_by(t.c.sent_at).limit(limit))
        return int(self._execute(sa.delete(t).where(t.c.id.in_(oldest.scalar_subquery()))).rowcount)
