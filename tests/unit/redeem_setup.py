"""Set-up shared by the redeem tests: the attempts written, failures that block a user, a purchase put directly into
the store, and fault injection through units of work (fakes, not mocks): a repository with some methods replaced,
and a first read that is stale, as a request sees the rows before a concurrent writer commits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from adapters.memory import InMemoryUnitOfWork, InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain.codes import CodeHasher
from domain.model import Attempt, Purchase, PurchaseStatus, RedeemResult, RedeemSnapshot
from domain.redemption import RedemptionService
from tests.conftest import PEPPER

HASH = CodeHasher(PEPPER).hash


def attempts(store: MemoryStore) -> list[Attempt]:
    return list(store.attempts)


def fail_times(redemptions: RedemptionService, clock: ManualClock, user_id: int, n: int, step: timedelta) -> None:
    for i in range(n):
        assert redemptions.redeem(user_id, "NOSUCHCODE", f"fail-{user_id}-{clock.now().timestamp()}-{i}").result \
            is RedeemResult.INVALID
        clock.advance(step)


def add_purchase(store: MemoryStore, user_id: int, status: PurchaseStatus, now: datetime) -> Purchase:
    factory = InMemoryUnitOfWorkFactory(store)
    with factory() as uow:
        p = uow.purchases.add(Purchase(
            id=None, user_id=user_id, product_code="PREMIUM_30D", base_stars_amount=150, discount_stars_amount=0,
            final_stars_amount=150, promo_redemption_id=None, status=status,
            telegram_payment_charge_id=f"charge-{user_id}" if status is not PurchaseStatus.CREATED else None,
            created_at=now, updated_at=now,
        ))
        uow.commit()
    return p


class Override:
    """Delegates to a real in-memory repository except for the methods given."""

    def __init__(self, inner: Any, **methods: Callable[..., Any]) -> None:
        self._inner = inner
        self.__dict__.update(methods)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def patched_factory(store: MemoryStore, patch: Callable[[InMemoryUnitOfWork], None]) -> Callable[[], Any]:
    """A unit-of-work factory over ``store`` whose units of work get ``patch`` applied (fakes, not mocks)."""

    def make() -> InMemoryUnitOfWork:
        uow = InMemoryUnitOfWork(store)
        patch(uow)
        return uow

    return make


def stale_reads(store: MemoryStore, change: Callable[[RedeemSnapshot], RedeemSnapshot]) -> Callable[[], Any]:
    """A unit-of-work factory over ``store`` whose first unit of work reads checks 1-7 as ``change`` makes them:
    what a request read before a concurrent writer committed. Its writes meet the real rows."""
    made = {"units": 0}

    def stale(uow: InMemoryUnitOfWork) -> None:
        made["units"] += 1
        if made["units"] == 1:
            real = uow.redemptions
            uow.redemptions = Override(real, redeem_snapshot=lambda *a: change(real.redeem_snapshot(*a)))

    return patched_factory(store, stale)
