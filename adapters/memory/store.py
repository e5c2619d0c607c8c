"""The in-memory database: every table as a plain dict or list, one lock, and the undo log of a transaction.

The tables are public attributes on purpose: tests (the stateful oracle among them) read them directly.
Rows are frozen attrs objects, so a change replaces a row and the undo log only has to remember the old one.
"""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import attrs

from domain.model import (
    Attempt,
    AuditEntry,
    Campaign,
    Entitlement,
    LedgerEntry,
    PaymentReview,
    PromoCode,
    Purchase,
    Redemption,
    StarMovement,
)
from domain.operators import Operator, SignInFailure
from domain.outbox import OutboxMessage

_MISSING = object()
Row = TypeVar("Row")


class MemoryStore:
    """All tables of one in-memory database. Share one store between units of work."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        # promo_campaigns by id, and the unique ``name`` index (name -> id).
        self.campaigns: dict[int, Campaign] = {}
        self.campaign_names: dict[str, int] = {}
        # promo_codes by id, and the unique ``code_hash`` index (hash -> id).
        self.codes: dict[int, PromoCode] = {}
        self.code_hashes: dict[str, int] = {}
        self.redemptions: dict[int, Redemption] = {}
        self.attempts: list[Attempt] = []
        self.purchases: dict[int, Purchase] = {}
        self.entitlements: dict[int, Entitlement] = {}
        self.ledger: list[LedgerEntry] = []
        self.audit: list[AuditEntry] = []
        self.kv: dict[str, Any] = {}
        self.processed_updates: dict[int, datetime] = {}
        self.payment_reviews: dict[int, PaymentReview] = {}
        self.payment_review_keys: dict[str, int] = {}
        # star_movements by (transaction id, outgoing).
        self.star_movements: dict[tuple[str, bool], StarMovement] = {}
        # ops_operators by id, and the unique ``name_key`` index (name case-folded -> id).
        self.operators: dict[int, Operator] = {}
        self.operator_names: dict[str, int] = {}
        self.sign_in_failures: dict[int, SignInFailure] = {}
        # telegram_outbox by id, and the unique ``dedup_key`` index (key -> id).
        self.telegram_outbox: dict[int, OutboxMessage] = {}
        self.telegram_outbox_keys: dict[str, int] = {}
        self._ids: dict[str, itertools.count[int]] = defaultdict(lambda: itertools.count(1))

    def next_id(self, table: str) -> int:
        """The next id of ``table`` (ids are never reused, also not after a rollback: like a sequence)."""
        return next(self._ids[table])


class UndoLog:
    """What a transaction changed, newest last: ``rollback`` puts every touched row back as it was."""

    def __init__(self) -> None:
        self.log: list[Callable[[], None]] = []

    def set(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        self._remember(table, key)
        table[key] = value

    def delete(self, table: dict[Any, Any], key: Any) -> None:
        self._remember(table, key)
        table.pop(key, None)

    def append(self, table: list[Any], value: Any) -> None:
        self.log.append(table.pop)
        table.append(value)

    def rollback(self) -> None:
        while self.log:
            self.log.pop()()

    def clear(self) -> None:
        self.log.clear()

    def _remember(self, table: dict[Any, Any], key: Any) -> None:
        old = table.get(key, _MISSING)

        def undo() -> None:
            if old is _MISSING:
                table.pop(key, None)
            else:
                table[key] = old

        self.log.append(undo)


def as_utc(row: Row) -> Row:
    """``row`` with every timezone-aware timestamp field in UTC: what a database with UTC columns hands back (the
    same instants, so rows still compare equal to what was written)."""
    value: Any = row
    if isinstance(value, datetime):
        converted: Any = value.astimezone(UTC) if value.tzinfo is not None else value
        return cast(Row, converted)
    if not attrs.has(type(value)):
        return row
    changes = {
        f.name: moment.astimezone(UTC)
        for f in attrs.fields(type(value))
        if isinstance(moment := getattr(value, f.name), datetime) and moment.tzinfo is not None
        and moment.tzinfo is not UTC
    }
    return cast(Row, attrs.evolve(value, **changes)) if changes else row


class MemoryTable:
    """Base of the in-memory repositories: the store they read and the undo log of their unit of work."""

    def __init__(self, store: MemoryStore, undo: UndoLog) -> None:
        self._s = store
        self._u = undo

    def _write(self, table: dict[Any, Row], key: Any, row: Row) -> Row:
        """Store ``row`` (timestamps in UTC) under ``key``, undoably; the stored row."""
        stored = as_utc(row)
        self._u.set(table, key, stored)
        return stored

    def _append(self, table: list[Row], row: Row) -> Row:
        stored = as_utc(row)
        self._u.append(table, stored)
        return stored


def hour_start(moment: datetime) -> datetime:
    """The start of the UTC hour ``moment`` lies in: the bucket of every hourly series."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)

