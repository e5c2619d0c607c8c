"""The ``Entitlements`` and ``EntitlementLedger`` ports (ports/entitlements.py) on memory, SQLite and PostgreSQL:
one entitlement row per user, ledger entries appended in order."""

from __future__ import annotations

from datetime import timedelta

import attrs

from domain.model import Entitlement, LedgerEntry, LedgerSource
from tests.builders import Factory
from tests.conftest import T0


def test_an_entitlement_is_one_row_per_user_replaced_on_put(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        assert uow.entitlements.get(1) is None
        uow.entitlements.put(Entitlement(1, "PREMIUM", T0 + timedelta(days=7), T0))
        uow.entitlements.put(Entitlement(1, "PREMIUM", T0 + timedelta(days=14), T0 + timedelta(minutes=1)))
        uow.commit()
    with uow_factory() as uow:
        assert uow.entitlements.get(1) == Entitlement(1, "PREMIUM", T0 + timedelta(days=14), T0 + timedelta(minutes=1))


def test_ledger_entries_are_appended_in_order(uow_factory: Factory) -> None:
    entry = LedgerEntry(user_id=1, plan_code="PREMIUM", days=7, source=LedgerSource.PROMO_GRANT,
                        promo_redemption_id=None, purchase_id=None, expires_at_after=T0 + timedelta(days=7),
                        created_at=T0)
    with uow_factory() as uow:
        a = uow.ledger.add(entry)
        b = uow.ledger.add(attrs.evolve(entry, days=-7, source=LedgerSource.REFUND_REVOKE, expires_at_after=T0))
        uow.ledger.add(attrs.evolve(entry, user_id=2))
        uow.commit()
    assert a.id is not None and b.id is not None and a.id < b.id
    with uow_factory() as uow:
        assert uow.ledger.for_user(1) == [a, b]
