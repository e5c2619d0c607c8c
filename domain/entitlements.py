"""Granting and revoking premium entitlements, always with a ledger entry."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from domain.model import Entitlement, LedgerEntry, LedgerSource

if TYPE_CHECKING:
    from ports.repositories import UnitOfWork


def grant(
    uow: UnitOfWork,
    user_id: int,
    plan_code: str,
    days: int,
    now: datetime,
    source: LedgerSource,
    promo_redemption_id: int | None = None,
    purchase_id: int | None = None,
) -> Entitlement:
    """Grant ``days`` of ``plan_code``; an active entitlement is extended from its end."""
    current = uow.entitlements.get(user_id)
    start = current.expires_at if current is not None and current.expires_at > now else now
    ent = Entitlement(user_id=user_id, plan_code=plan_code, expires_at=start + timedelta(days=days),
                      updated_at=now)
    uow.entitlements.put(ent)
    uow.ledger.add(LedgerEntry(user_id=user_id, plan_code=plan_code, days=days, source=source,
                               promo_redemption_id=promo_redemption_id, purchase_id=purchase_id,
                               expires_at_after=ent.expires_at, created_at=now))
    return ent


def revoke(
    uow: UnitOfWork,
    user_id: int,
    plan_code: str,
    days: int,
    now: datetime,
    promo_redemption_id: int | None = None,
    purchase_id: int | None = None,
) -> Entitlement | None:
    """Take back ``days`` (never ending the entitlement before ``now``), with a negative ledger entry."""
    current = uow.entitlements.get(user_id)
    if current is None:
        expires_after = now
        ent = None
    else:
        expires_after = max(now, current.expires_at - timedelta(days=days))
        ent = Entitlement(user_id=user_id, plan_code=current.plan_code, expires_at=expires_after,
                          updated_at=now)
        uow.entitlements.put(ent)
    uow.ledger.add(LedgerEntry(user_id=user_id, plan_code=plan_code, days=-days,
                               source=LedgerSource.REFUND_REVOKE, promo_redemption_id=promo_redemption_id,
                               purchase_id=purchase_id, expires_at_after=expires_after, created_at=now))
    return ent
