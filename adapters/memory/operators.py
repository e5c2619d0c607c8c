"""In-memory ``ops_operators`` and ``ops_sign_in_failures`` (ports ``Operators`` and ``SignInFailures``)."""

from __future__ import annotations

from datetime import datetime

import attrs

from adapters.memory.store import MemoryTable
from domain.operators import DuplicateOperatorName, Operator, SignInFailure, name_key


class InMemoryOperators(MemoryTable):
    """Operators by id, and the unique ``name_key`` index (name case-folded -> id)."""

    def add(self, operator: Operator) -> Operator:
        key = operator.name_key
        if key in self._s.operator_names:
            raise DuplicateOperatorName("uq_ops_operators_name_key")
        operator_id = self._s.next_id("ops_operators")
        stored = self._write(self._s.operators, operator_id, attrs.evolve(operator, id=operator_id))
        self._u.set(self._s.operator_names, key, operator_id)
        return stored

    def get_by_name(self, name: str) -> Operator | None:
        operator_id = self._s.operator_names.get(name_key(name))
        return self._s.operators.get(operator_id) if operator_id is not None else None

    def get(self, operator_id: int) -> Operator | None:
        return self._s.operators.get(operator_id)

    def list(self) -> list[Operator]:
        return sorted(self._s.operators.values(), key=lambda o: o.name_key)

    def update(self, operator: Operator) -> Operator:
        current = self._s.operators.get(operator.id) if operator.id is not None else None
        if current is None:
            raise LookupError(f"operator {operator.id} does not exist")
        if operator.name_key != current.name_key:
            if operator.name_key in self._s.operator_names:
                raise DuplicateOperatorName("uq_ops_operators_name_key")
            self._u.delete(self._s.operator_names, current.name_key)
            self._u.set(self._s.operator_names, operator.name_key, operator.id)
        return self._write(self._s.operators, operator.id, operator)

    def remove(self, operator_id: int) -> None:
        current = self._s.operators.get(operator_id)
        if current is None:
            return
        self._u.delete(self._s.operators, operator_id)
        self._u.delete(self._s.operator_names, current.name_key)


class InMemorySignInFailures(MemoryTable):
    """Refused console sign-ins by a sequence number (the order they were recorded)."""

    def record(self, name_key: str, address: str | None, at: datetime) -> None:
        self._write(self._s.sign_in_failures, self._s.next_id("ops_sign_in_failures"),
                    SignInFailure(name_key=name_key, address=address, at=at))

    def count_for_name(self, name_key: str, since: datetime) -> tuple[int, datetime | None]:
        return _count([f.at for f in self._s.sign_in_failures.values() if f.name_key == name_key and f.at >= since])

    def count_for_address(self, address: str, since: datetime) -> tuple[int, datetime | None]:
        return _count([f.at for f in self._s.sign_in_failures.values() if f.address == address and f.at >= since])

    def prune(self, before: datetime) -> int:
        old = [i for i, f in self._s.sign_in_failures.items() if f.at < before]
        for i in old:
            self._u.delete(self._s.sign_in_failures, i)
        return len(old)


def _count(moments: list[datetime]) -> tuple[int, datetime | None]:
    return len(moments), max(moments, default=None)
