"""Repositories of the ops console's operators and of refused sign-ins (SPEC 14), part of the unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from domain.operators import Operator


class Operators(Protocol):
    """The ``ops_operators`` table: the ops console's operators, unique by ``name_key`` (the name case-folded)."""

    def add(self, operator: Operator) -> Operator:
        """Insert; returns the row with its id. Raises ``DuplicateOperatorName``."""
        ...

    def get_by_name(self, name: str) -> Operator | None:
        """The operator whose name equals ``name`` case-insensitively."""
        ...

    def get(self, operator_id: int) -> Operator | None: ...

    def list(self) -> list[Operator]:
        """Every operator, by ``name_key``."""
        ...

    def update(self, operator: Operator) -> Operator:
        """Replace the row of ``operator.id`` (role, password hash, session epoch, updated_at); returns it."""
        ...

    def remove(self, operator_id: int) -> None:
        """Delete the row (nothing when it is gone already)."""
        ...


class SignInFailures(Protocol):
    """The ``ops_sign_in_failures`` table: one row per refused console sign-in, counted over a trailing window per
    name (its ``name_key``) and per address."""

    def record(self, name_key: str, address: str | None, at: datetime) -> None: ...

    def count_for_name(self, name_key: str, since: datetime) -> tuple[int, datetime | None]:
        """How many failures of ``name_key`` at or after ``since``, and the latest one's time (None when none)."""
        ...

    def count_for_address(self, address: str, since: datetime) -> tuple[int, datetime | None]:
        """How many failures from ``address`` at or after ``since``, and the latest one's time (None when none)."""
        ...

    def prune(self, before: datetime) -> int:
        """Delete the failures before ``before``; returns how many."""
        ...
