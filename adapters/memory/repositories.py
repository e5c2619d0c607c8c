"""In-memory repositories and unit of work: thread-safe, shipped for tests and library users.

A unit of work holds the store's lock from ``__enter__`` to ``__exit__`` (serializable, like a database with
one writer) and keeps an undo log, so ``rollback`` restores every row it touched. The same uniqueness and
conditional-update rules as the database hold (see ``ports.repositories``). The tables live in
:class:`MemoryStore`; the repositories are split along the domain's seams:

- ``adapters.memory.promo``: campaigns, codes, the audit log;
- ``adapters.memory.redemptions``: redemptions and attempts;
- ``adapters.memory.payments_store``: purchases, payment reviews and Star movements;
- ``adapters.memory.operators``: the ops console's operators and refused sign-ins;
- ``adapters.memory.outbox``: the replies the Telegram bot owes;
- here: entitlements, the entitlement ledger, processed Telegram updates, and the unit of work.
"""

from __future__ import annotations

from datetime import datetime
from types import TracebackType
from typing import Self

import attrs

from adapters.memory.operators import InMemoryOperators, InMemorySignInFailures
from adapters.memory.outbox import InMemoryTelegramOutbox
from adapters.memory.payments_store import InMemoryPaymentReviews, InMemoryPurchases, InMemoryStarMovements
from adapters.memory.promo import InMemoryAuditLog, InMemoryCampaigns, InMemoryPromoCodes
from adapters.memory.redemptions import InMemoryAttempts, InMemoryRedemptions
from adapters.memory.store import MemoryStore, MemoryTable, UndoLog
from domain.model import Entitlement, LedgerEntry
from ports.entitlements import EntitlementLedger, Entitlements
from ports.operators import Operators, SignInFailures
from ports.outbox import TelegramOutbox
from ports.repositories import (
    Attempts,
    AuditLog,
    Campaigns,
    PaymentReviews,
    ProcessedUpdates,
    PromoCodes,
    Purchases,
    Redemptions,
    StarMovements,
)

__all__ = [
    "InMemoryAttempts",
    "InMemoryAuditLog",
    "InMemoryCampaigns",
    "InMemoryEntitlements",
    "InMemoryLedger",
    "InMemoryOperators",
    "InMemoryPaymentReviews",
    "InMemoryProcessedUpdates",
    "InMemoryPromoCodes",
    "InMemoryPurchases",
    "InMemoryRedemptions",
    "InMemorySignInFailures",
    "InMemoryStarMovements",
    "InMemoryTelegramOutbox",
    "InMemoryUnitOfWork",
    "InMemoryUnitOfWorkFactory",
    "MemoryStore",
]


class InMemoryEntitlements(MemoryTable):
    """The ``entitlements`` table: one row per user, replaced on ``put``."""

    def get(self, user_id: int) -> Entitlement | None:
        return self._s.entitlements.get(user_id)

    def put(self, entitlement: Entitlement) -> None:
        self._write(self._s.entitlements, entitlement.user_id, entitlement)


class InMemoryLedger(MemoryTable):
    """The ``entitlement_ledger`` table (append only)."""

    def add(self, entry: LedgerEntry) -> LedgerEntry:
        return self._append(self._s.ledger, attrs.evolve(entry, id=self._s.next_id("entitlement_ledger")))

    def for_user(self, user_id: int) -> list[LedgerEntry]:
        return [e for e in self._s.ledger if e.user_id == user_id]


class InMemoryProcessedUpdates(MemoryTable):
    """The ``processed_updates`` table: Telegram ``update_id``s already taken in."""

    def add(self, update_id: int, now: datetime) -> bool:
        if update_id in self._s.processed_updates:
            return False
        self._write(self._s.processed_updates, update_id, now)
        return True

    def seen(self, update_id: int) -> bool:
        return update_id in self._s.processed_updates

    def delete_before(self, cutoff: datetime, limit: int) -> int:
        old = [u for u, at in self._s.processed_updates.items() if at < cutoff][:limit]
        for u in old:
            self._u.delete(self._s.processed_updates, u)
        return len(old)


class InMemoryUnitOfWork:
    """One serializable transaction over a :class:`MemoryStore`."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._undo = UndoLog()
        self.campaigns: Campaigns = InMemoryCampaigns(store, self._undo)
        self.promo_codes: PromoCodes = InMemoryPromoCodes(store, self._undo)
        self.audit: AuditLog = InMemoryAuditLog(store, self._undo)
        self.redemptions: Redemptions = InMemoryRedemptions(store, self._undo)
        self.attempts: Attempts = InMemoryAttempts(store, self._undo)
        self.purchases: Purchases = InMemoryPurchases(store, self._undo)
        self.entitlements: Entitlements = InMemoryEntitlements(store, self._undo)
        self.ledger: EntitlementLedger = InMemoryLedger(store, self._undo)
        self.processed_updates: ProcessedUpdates = InMemoryProcessedUpdates(store, self._undo)
        self.payment_reviews: PaymentReviews = InMemoryPaymentReviews(store, self._undo)
        self.star_movements: StarMovements = InMemoryStarMovements(store, self._undo)
        self.operators: Operators = InMemoryOperators(store, self._undo)
        self.sign_in_failures: SignInFailures = InMemorySignInFailures(store, self._undo)
        self.telegram_outbox: TelegramOutbox = InMemoryTelegramOutbox(store, self._undo)

    def __enter__(self) -> Self:
        self._store.lock.acquire()
        self._undo.clear()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.rollback()
        finally:
            self._store.lock.release()

    def commit(self) -> None:
        self._undo.clear()

    def rollback(self) -> None:
        self._undo.rollback()


class InMemoryUnitOfWorkFactory:
    """Callable producing units of work over one shared store."""

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()

    def __call__(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self.store)
