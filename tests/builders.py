"""Builders of domain rows for tests: a valid row by default, any field overridable by keyword.

``make_code`` copies its campaign's fields the way the domain does (``campaign_name``, ``promo_type``,
``target_scope``, ``valid_from``, ``valid_until``); ``make_redemption`` takes ``promo_code_id`` and
``campaign_id`` from its code. ``store_campaign`` / ``store_code`` write one row in a unit of work of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import attrs

from domain.model import (
    Attempt,
    AuditEntry,
    Campaign,
    CampaignStatus,
    PromoCode,
    PromoType,
    Purchase,
    PurchaseStatus,
    RedeemResult,
    Redemption,
    RedemptionStatus,
    TargetScope,
)
from ports.repositories import UnitOfWork
from tests.conftest import T0

Factory = Callable[[], UnitOfWork]

RESERVATION_TTL = timedelta(minutes=15)


def make_campaign(name: str = "Spring sale", **changes: Any) -> Campaign:
    """An ACTIVE 20 % discount campaign on two products, valid for 30 days from ``T0``, no budget, one per user."""
    base = Campaign(
        id=None, name=name, promo_type=PromoType.PERCENT_DISCOUNT, grant_plan_code=None, grant_days=None,
        discount_percent=20, discount_stars=None, applicable_products=("PREMIUM_30D", "PREMIUM_90D"),
        target_scope=TargetScope.ALL, status=CampaignStatus.ACTIVE, paused_reason=None, valid_from=T0,
        valid_until=T0 + timedelta(days=30), max_total_uses=None, per_user_limit=1, used_total=0,
        created_at=T0, updated_at=T0,
    )
    return attrs.evolve(base, **changes)


def make_grant_campaign(name: str = "Gift", **changes: Any) -> Campaign:
    """An ACTIVE campaign granting 30 days of ``PREMIUM``, for every product, without end."""
    grant: dict[str, Any] = {"promo_type": PromoType.PREMIUM_GRANT, "discount_percent": None,
                             "grant_plan_code": "PREMIUM", "grant_days": 30, "applicable_products": (),
                             "valid_until": None}
    return make_campaign(name, **{**grant, **changes})


def make_stars_campaign(name: str = "Stars off", **changes: Any) -> Campaign:
    """An ACTIVE campaign taking 40 Stars off the base price."""
    stars: dict[str, Any] = {"promo_type": PromoType.STARS_DISCOUNT, "discount_percent": None, "discount_stars": 40}
    return make_campaign(name, **{**stars, **changes})


def make_code(campaign: Campaign, code_hash: str = "a" * 64, **changes: Any) -> PromoCode:
    """An ACTIVE code of ``campaign`` (stored: it must have an id) without a cap of its own."""
    assert campaign.id is not None, "store the campaign first"
    base = PromoCode(
        id=None, campaign_id=campaign.id, code_hash=code_hash, code_prefix="SPRI", status=CampaignStatus.ACTIVE,
        paused_reason=None, max_total_uses=None, used_total=0, created_at=T0, updated_at=T0,
        campaign_name=campaign.name, promo_type=campaign.promo_type, target_scope=campaign.target_scope,
        valid_from=campaign.valid_from, valid_until=campaign.valid_until,
    )
    return attrs.evolve(base, **changes)


def make_redemption(code: PromoCode, user_id: int = 1, key: str = "k1", **changes: Any) -> Redemption:
    """A RESERVED 20 % reservation of ``code`` (stored: it must have an id) in the user's first slot, made at
    ``T0`` and held for 15 minutes."""
    assert code.id is not None, "store the code first"
    base = Redemption(
        id=None, promo_code_id=code.id, campaign_id=code.campaign_id, user_id=user_id, idempotency_key=key,
        status=RedemptionStatus.RESERVED, discount_percent=20, discount_stars=None,
        reserved_until=T0 + RESERVATION_TTL, purchase_id=None, applied_purchase_id=None, created_at=T0,
        updated_at=T0, user_slot=1,
    )
    return attrs.evolve(base, **changes)


def make_grant_redemption(code: PromoCode, user_id: int = 1, key: str = "g1", **changes: Any) -> Redemption:
    """An APPLIED grant redemption of ``code`` (no reservation, no discount)."""
    grant: dict[str, Any] = {"status": RedemptionStatus.APPLIED, "discount_percent": None, "reserved_until": None}
    return make_redemption(code, user_id, key, **{**grant, **changes})


def make_purchase(user_id: int = 1, product: str = "PREMIUM_30D", **changes: Any) -> Purchase:
    """A CREATED purchase: 150 Stars, 30 off, 120 to pay."""
    base = Purchase(
        id=None, user_id=user_id, product_code=product, base_stars_amount=150, discount_stars_amount=30,
        final_stars_amount=120, promo_redemption_id=None, status=PurchaseStatus.CREATED,
        telegram_payment_charge_id=None, created_at=T0, updated_at=T0,
    )
    return attrs.evolve(base, **changes)


def make_attempt(user_id: int, result: RedeemResult, at: datetime, h: str | None = "h" * 64,
                 prefix: str | None = "ABCD", campaign_id: int | None = None) -> Attempt:
    return Attempt(user_id=user_id, normalized_code_hash=h, code_prefix=prefix, result=result, attempted_at=at,
                   campaign_id=campaign_id)


def make_audit_entry(action: str = "campaign.status", **changes: Any) -> AuditEntry:
    """An audit row: ``api`` paused campaign ``1`` at ``T0``."""
    base = AuditEntry(id=None, at=T0, actor="api", action=action, target_type="campaign", target_id="1",
                      details={"from": "ACTIVE", "to": "PAUSED", "reason": "MANUAL"})
    return attrs.evolve(base, **changes)


def store_campaign(uow_factory: Factory, campaign: Campaign | None = None) -> Campaign:
    """``campaign`` (default: ``make_campaign()``) stored and committed; the stored row."""
    with uow_factory() as uow:
        stored = uow.campaigns.add(campaign or make_campaign())
        uow.commit()
    return stored


def store_code(uow_factory: Factory, code: PromoCode) -> PromoCode:
    """``code`` stored and committed; the stored row."""
    with uow_factory() as uow:
        stored = uow.promo_codes.add(code)
        uow.commit()
    return stored


def store_campaign_with_code(uow_factory: Factory, campaign: Campaign | None = None, code_hash: str = "a" * 64,
                             **code_changes: Any) -> tuple[Campaign, PromoCode]:
    """A campaign (default: ``make_campaign()``) and one code of it, stored and committed."""
    stored = store_campaign(uow_factory, campaign)
    return stored, store_code(uow_factory, make_code(stored, code_hash, **code_changes))
