"""``payment_reviews`` (port ``PaymentReviews``): payment differences and unsafe recoveries waiting for a human,
one row per ``dedup_key`` (the same difference found again is the same row)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from adapters.sql._base import ColumnValues, SqlRepository, in_chunks
from adapters.sql.tables import payment_reviews
from domain.model import PaymentReview


def review_from_row(row: ColumnValues) -> PaymentReview:
    return PaymentReview(
        id=row["id"], dedup_key=row["dedup_key"], event=row["event"], kind=row["kind"],
        purchase_id=row["purchase_id"], telegram_payment_charge_id=row["telegram_payment_charge_id"],
        details=dict(row["details"] or {}), created_at=row["created_at"], resolved_at=row["resolved_at"],
        resolution_note=row["resolution_note"],
    )


def _values(review: PaymentReview) -> dict[str, Any]:
    return {"dedup_key": review.dedup_key, "event": review.event, "kind": review.kind,
            "purchase_id": review.purchase_id, "telegram_payment_charge_id": review.telegram_payment_charge_id,
            # JSON-safe (dates and the like as text), as the in-memory adapter's copy would read back.
            "details": json.loads(json.dumps(review.details, default=str)), "created_at": review.created_at,
            "resolved_at": review.resolved_at, "resolution_note": review.resolution_note}


class SqlPaymentReviews(SqlRepository):
    table = payment_reviews

    def _one(self, statement: sa.Executable) -> PaymentReview | None:
        row = self._execute(statement).first()
        return review_from_row(row._mapping) if row is not None else None

    def add(self, review: PaymentReview) -> PaymentReview | None:
        added = self.add_many([review])
        return added[0] if added else None

    def add_many(self, reviews: Sequence[PaymentReview]) -> list[PaymentReview]:
        if not reviews:
            return []
        # One compiled statement, sent as batched multi-row INSERTs ("insertmanyvalues") with RETURNING.
        insert = pg_dialect.insert(self.table) if self._postgres else sqlite_dialect.insert(self.table)
        statement = insert.on_conflict_do_nothing(index_elements=[self.table.c.dedup_key]).returning(self.table)
        return [review_from_row(row._mapping) for row in self._execute(statement, [_values(r) for r in reviews])]

    def existing_keys(self, dedup_keys: Sequence[str]) -> set[str]:
        column = self.table.c.dedup_key
        found: set[str] = set()
        for chunk in in_chunks(sorted(set(dedup_keys))):
            found.update(self._execute(sa.select(column).where(column.in_(chunk))).scalars())
        return found

    def get(self, review_id: int) -> PaymentReview | None:
        return self._one(sa.select(self.table).where(self.table.c.id == review_id))

    def list(self, open_only: bool, limit: int, after_id: int | None = None) -> list[PaymentReview]:
        table = self.table
        statement = sa.select(table).order_by(table.c.id).limit(limit)
        if open_only:
            statement = statement.where(table.c.resolved_at.is_(None))
        if after_id is not None:
            statement = statement.where(table.c.id > after_id)
        return [review_from_row(row._mapping) for row in self._connection.execute(statement)]

    def count_open(self) -> int:
        table = self.table
        statement = sa.select(sa.func.count()).select_from(table).where(table.c.resolved_at.is_(None))
        return int(self._connection.execute(statement).scalar_one())

    def resolve(self, review_id: int, note: str | None, now: datetime) -> PaymentReview | None:
        table = self.table
        return self._one(sa.update(table).where(table.c.id == review_id, table.c.resolved_at.is_(None))
                         .values(resolved_at=now, resolution_note=note).returning(table))
