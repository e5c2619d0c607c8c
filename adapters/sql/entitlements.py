"""``entitlements``, ``entitlement_ledger`` (ports ``Entitlements``, ``EntitlementLedger``) and
``processed_updates`` (port ``ProcessedUpdates``: the Telegram webhook's dedup)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from adapters.sql._base import SqlRepository
from adapters.sql.tables import entitlement_ledger, entitlements, processed_updates
from domain.model import Entitlement, LedgerEntry, LedgerSource


class SqlEntitlements(SqlRepository):
    table = entitlements

    def get(self, user_id: int) -> Entitlement | None:
        row = self._connection.execute(sa.select(self.table).where(self.table.c.user_id == user_id)).first()
        if row is None:
            return None
        return Entitlement(user_id=row.user_id, plan_code=row.plan_code, expires_at=row.expires_at,
                           updated_at=row.updated_at)

    def put(self, entitlement: Entitlement) -> None:
        insert = pg_dialect.insert(self.table) if self._postgres else sqlite_dialect.insert(self.table)
        statement = insert.values(user_id=entitlement.user_id, plan_code=entitlement.plan_code,
                                  expires_at=entitlement.expires_at, updated_at=entitlement.updated_at)
        self._connection.execute(statement.on_conflict_do_update(
            index_elements=[self.table.c.user_id],
            set_={"plan_code": statement.excluded.plan_code, "expires_at": statement.excluded.expires_at,
                  "updated_at": statement.excluded.updated_at},
        ))


class SqlLedger(SqlRepository):
    table = entitlement_ledger

    def add(self, entry: LedgerEntry) -> LedgerEntry:
        new_id = self._connection.execute(sa.insert(self.table).values(
            user_id=entry.user_id, plan_code=entry.plan_code, days=entry.days, source=entry.source.value,
            promo_redemption_id=entry.promo_redemption_id, purchase_id=entry.purchase_id,
            expires_at_after=entry.expires_at_after, created_at=entry.created_at,
        ).returning(self.table.c.id)).scalar_one()
        return LedgerEntry(
            user_id=entry.user_id, plan_code=entry.plan_code, days=entry.days, source=entry.source,
            promo_redemption_id=entry.promo_redemption_id, purchase_id=entry.purchase_id,
            expires_at_after=entry.expires_at_after, created_at=entry.created_at, id=new_id,
        )

    def for_user(self, user_id: int) -> list[LedgerEntry]:
        table = self.table
        rows = self._connection.execute(sa.select(table).where(table.c.user_id == user_id).order_by(table.c.id))
        return [
            LedgerEntry(user_id=row.user_id, plan_code=row.plan_code, days=row.days, source=LedgerSource(row.source),
                        promo_redemption_id=row.promo_redemption_id, purchase_id=row.purchase_id,
                        expires_at_after=row.expires_at_after, created_at=row.created_at, id=row.id)
            for row in rows
        ]


class SqlProcessedUpdates(SqlRepository):
    table = processed_updates

    def add(self, update_id: int, now: datetime) -> bool:
        insert = pg_dialect.insert(self.table) if self._postgres else sqlite_dialect.insert(self.table)
        statement = insert.values(update_id=update_id, processed_at=now).on_conflict_do_nothing(
            index_elements=[self.table.c.update_id]).returning(self.table.c.update_id)
        return self._connection.execute(statement).first() is not None

    def seen(self, update_id: int) -> bool:
        table = self.table
        return self._connection.execute(sa.select(table.c.update_id).where(table.c.update_id == update_id)
                                        ).first() is not None

    def delete_before(self, cutoff: datetime, limit: int) -> int:
        table = self.table
        oldest = (sa.select(table.c.update_id).where(table.c.processed_at < cutoff)
                  .order_by(table.c.processed_at).limit(limit))
        result = self._connection.execute(sa.delete(table).where(table.c.update_id.in_(oldest.scalar_subquery())))
        return int(result.rowcount)
