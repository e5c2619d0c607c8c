from __future__ import annotations

from typing import Protocol

from domain.model import Entitlement, LedgerEntry


class Entitlements(Protocol):
    """Users' premium entitlements. Written in the same unit of work as the redemption or payment."""

    def get(self, user_id: int) -> Entitlement | None: ...

    def put(self, entitlement: Entitlement) -> None:
        """Insert or replace the user's entitlement."""
        ...


class EntitlementLedger(Protocol):
    """Append-only audit log of entitlement changes."""

    def add(self, entry: LedgerEntry) -> LedgerEntry: ...

    def for_user(self, user_id: int) -> list[LedgerEntry]: ...
