"""``ops_operators`` and ``ops_sign_in_failures`` (ports ``Operators`` and ``SignInFailures``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.sql._base import ColumnValues, SqlRepository
from adapters.sql.tables import ops_operators, ops_sign_in_failures
from domain.operators import DuplicateOperatorName, Operator, OperatorRole, name_key

_UNIQUE_NAME = ("uq_ops_operators_name_key", "ops_operators.name_key")


def operator_from_row(row: ColumnValues) -> Operator:
    return Operator(id=row["id"], name=row["name"], role=OperatorRole(row["role"]),
                    password_hash=row["password_hash"], created_at=row["created_at"], updated_at=row["updated_at"],
                    session_epoch=row["session_epoch"])


class SqlOperators(SqlRepository):
    table = ops_operators

    def _one(self, statement: sa.Executable) -> Operator | None:
        row = self._write(statement).first()
        return operator_from_row(row._mapping) if row is not None else None

    def _write(self, statement: sa.Executable) -> sa.CursorResult[Any]:
        try:
            return self._connection.execute(statement)
        except sa.exc.IntegrityError as exc:
            if any(name in str(exc.orig) for name in _UNIQUE_NAME):
                raise DuplicateOperatorName(_UNIQUE_NAME[0]) from None
            raise

    def add(self, operator: Operator) -> Operator:
        added = self._one(sa.insert(self.table).values(
            name=operator.name, name_key=operator.name_key, role=operator.role.value,
            password_hash=operator.password_hash, session_epoch=operator.session_epoch,
            created_at=operator.created_at, updated_at=operator.updated_at,
        ).returning(self.table))
        assert added is not None
        return added

    def get_by_name(self, name: str) -> Operator | None:
        return self._one(sa.select(self.table).where(self.table.c.name_key == name_key(name)))

    def get(self, operator_id: int) -> Operator | None:
        return self._one(sa.select(self.table).where(self.table.c.id == operator_id))

    def list(self) -> list[Operator]:
        statement = sa.select(self.table).order_by(self.table.c.name_key)
        return [operator_from_row(row._mapping) for row in self._connection.execute(statement)]

    def update(self, operator: Operator) -> Operator:
        table = self.table
        changed = self._one(sa.update(table).where(table.c.id == operator.id).values(
            name=operator.name, name_key=operator.name_key, role=operator.role.value,
            password_hash=operator.password_hash, session_epoch=operator.session_epoch,
            updated_at=operator.updated_at,
        ).returning(table))
        if changed is None:
            raise LookupError(f"operator {operator.id} does not exist")
        return changed

    def remove(self, operator_id: int) -> None:
        self._connection.execute(sa.delete(self.table).where(self.table.c.id == operator_id))


class SqlSignInFailures(SqlRepository):
    table = ops_sign_in_failures

    def record(self, name_key: str, address: str | None, at: datetime) -> None:
        self._connection.execute(sa.insert(self.table).values(name_key=name_key, address=address, at=at))

    def _count(self, where: sa.ColumnElement[bool], since: datetime) -> tuple[int, datetime | None]:
        table = self.table
        count, latest = self._connection.execute(
            sa.select(sa.func.count(), sa.func.max(table.c.at)).where(where, table.c.at >= since)).one()
        return int(count), latest

    def count_for_name(self, name_key: str, since: datetime) -> tuple[int, datetime | None]:
        return self._count(self.table.c.name_key == name_key, since)

    def count_for_address(self, address: str, since: datetime) -> tuple[int, datetime | None]:
        return self._count(self.table.c.address == address, since)

    def prune(self, before: datetime) -> int:
        result = self._connection.execute(sa.delete(self.table).where(self.table.c.at < before))
        return int(result.rowcount)
