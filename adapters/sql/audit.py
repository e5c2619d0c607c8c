"""``audit_log`` (port ``AuditLog``): append only; an entry is written in the transaction of the change it
records, so it commits or rolls back with it."""

from __future__ import annotations

import json

import sqlalchemy as sa

from adapters.sql._base import ColumnValues, SqlRepository
from adapters.sql.tables import audit_log
from domain.model import AuditEntry, AuditFilter


def audit_entry_from_row(row: ColumnValues) -> AuditEntry:
    return AuditEntry(id=row["id"], at=row["at"], actor=row["actor"], action=row["action"],
                      target_type=row["target_type"], target_id=row["target_id"], details=dict(row["details"] or {}))


class SqlAuditLog(SqlRepository):
    table = audit_log

    def add(self, entry: AuditEntry) -> AuditEntry:
        row = self._connection.execute(sa.insert(self.table).values(
            at=entry.at, actor=entry.actor, action=entry.action, target_type=entry.target_type,
            target_id=entry.target_id,
            # JSON-safe (dates and the like as text): what is stored is what a later read returns.
            details=json.loads(json.dumps(entry.details, default=str)),
        ).returning(self.table)).one()
        return audit_entry_from_row(row._mapping)

    def search(self, flt: AuditFilter, limit: int, before_id: int | None) -> list[AuditEntry]:
        table = self.table
        statement = sa.select(table).order_by(table.c.id.desc()).limit(max(limit, 0))
        if before_id is not None:
            statement = statement.where(table.c.id < before_id)
        for column, wanted in ((table.c.actor, flt.actor), (table.c.action, flt.action),
                               (table.c.target_type, flt.target_type), (table.c.target_id, flt.target_id)):
            if wanted is not None:
                statement = statement.where(column == wanted)
        return [audit_entry_from_row(row._mapping) for row in self._connection.execute(statement)]
