"""``star_movements`` (port ``StarMovements``): the Star transactions that are no purchase payment nor its refund,
one row per Telegram transaction id and direction, as the reconciliation job saw them (issue 17)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from adapters.sql._base import SqlRepository
from adapters.sql.tables import star_movements
from domain.model import MovementTotal, StarMovement
from domain.star_transactions import NANOSTARS_PER_STAR


class SqlStarMovements(SqlRepository):
    table = star_movements

    def add_many(self, movements: Sequence[StarMovement]) -> int:
        if not movements:
            return 0
        rows = [{"transaction_id": m.transaction_id, "outgoing": m.outgoing, "kind": m.kind, "partner": m.partner,
                 "transaction_type": m.transaction_type, "stars": m.stars, "nanostars": m.nanostars,
                 "occurred_at": m.occurred_at} for m in movements]
        # One compiled statement, sent as batched multi-row INSERTs ("insertmanyvalues") with RETURNING.
        insert = pg_dialect.insert(self.table) if self._postgres else sqlite_dialect.insert(self.table)
        statement = insert.on_conflict_do_nothing(
            index_elements=[self.table.c.transaction_id, self.table.c.outgoing]).returning(self.table.c.transaction_id)
        return len(self._execute(statement, rows).all())

    def totals(self, since: datetime, end: datetime) -> list[MovementTotal]:
        t = self.table
        statement = (sa.select(t.c.kind, t.c.outgoing, sa.func.count(), sa.func.sum(t.c.stars),
                               sa.func.sum(t.c.nanostars))
                     .where(t.c.occurred_at >= since, t.c.occurred_at < end)
                     .group_by(t.c.kind, t.c.outgoing).order_by(t.c.kind, t.c.outgoing))
        out = []
        for row in self._execute(statement):
            kind, outgoing, count, stars, nanos = tuple(row)
            carried, rest = divmod(int(nanos or 0), NANOSTARS_PER_STAR)
            out.append(MovementTotal(str(kind), bool(outgoing), int(count), int(stars or 0) + carried, rest))
        return out
