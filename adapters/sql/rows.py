"""Rows <-> entities of the redeem tables: ``promo_campaigns``, ``promo_codes``, ``promo_redemptions``,
``promo_attempts``.

A row is read by column name: a SQLAlchemy ``Row`` through its ``_mapping``, a raw psycopg tuple through
``*_from_tuple`` (the tuple holds the table's columns in the order of its ``Table`` object, because every
statement here selects them in that order). Timestamps go through ``utc``: the raw path's come in the session's
time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.sql._base import ColumnValues, column_names, plain, utc, utc_required
from adapters.sql.tables import promo_attempts, promo_campaigns, promo_codes, promo_redemptions
from domain.model import (
    Attempt,
    Campaign,
    CampaignStatus,
    PausedReason,
    PromoCode,
    PromoType,
    RedeemResult,
    Redemption,
    RedemptionStatus,
    TargetScope,
)

CAMPAIGN_COLUMNS = column_names(promo_campaigns)
CODE_COLUMNS = column_names(promo_codes)
REDEMPTION_COLUMNS = column_names(promo_redemptions)


def _paused_reason(value: str | None) -> PausedReason | None:
    return PausedReason(value) if value else None


# -- promo_campaigns ---------------------------------------------------------------------------------------

def campaign_values(campaign: Campaign) -> dict[str, Any]:
    """The insert parameters of a ``promo_campaigns`` row (every column but ``id``)."""
    return {
        "name": campaign.name,
        "promo_type": campaign.promo_type.value,
        "grant_plan_code": campaign.grant_plan_code,
        "grant_days": campaign.grant_days,
        "discount_percent": campaign.discount_percent,
        "discount_stars": campaign.discount_stars,
        "applicable_products": list(campaign.applicable_products),
        "target_scope": campaign.target_scope.value,
        "status": campaign.status.value,
        "paused_reason": plain(campaign.paused_reason),
        "valid_from": campaign.valid_from,
        "valid_until": campaign.valid_until,
        "max_total_uses": campaign.max_total_uses,
        "per_user_limit": campaign.per_user_limit,
        "used_total": campaign.used_total,
        "created_at": campaign.created_at,
        "updated_at": campaign.updated_at,
    }


def campaign_from_row(row: ColumnValues) -> Campaign:
    return Campaign(
        id=row["id"],
        name=row["name"],
        promo_type=PromoType(row["promo_type"]),
        grant_plan_code=row["grant_plan_code"],
        grant_days=row["grant_days"],
        discount_percent=row["discount_percent"],
        discount_stars=row["discount_stars"],
        applicable_products=tuple(row["applicable_products"] or ()),
        target_scope=TargetScope(row["target_scope"]),
        status=CampaignStatus(row["status"]),
        paused_reason=_paused_reason(row["paused_reason"]),
        valid_from=utc_required(row["valid_from"]),
        valid_until=utc(row["valid_until"]),
        max_total_uses=row["max_total_uses"],
        per_user_limit=row["per_user_limit"],
        used_total=row["used_total"],
        created_at=utc_required(row["created_at"]),
        updated_at=utc_required(row["updated_at"]),
    )


def campaign_from_tuple(values: Sequence[Any]) -> Campaign:
    return campaign_from_row(dict(zip(CAMPAIGN_COLUMNS, values, strict=True)))


# -- promo_codes -------------------------------------------------------------------------------------------

def code_values(code: PromoCode) -> dict[str, Any]:
    """The insert parameters of a ``promo_codes`` row (every column but ``id``)."""
    return {
        "campaign_id": code.campaign_id,
        "code_hash": code.code_hash,
        "code_prefix": code.code_prefix,
        "status": code.status.value,
        "paused_reason": plain(code.paused_reason),
        "max_total_uses": code.max_total_uses,
        "used_total": code.used_total,
        "created_at": code.created_at,
        "updated_at": code.updated_at,
        "campaign_name": code.campaign_name,
        "promo_type": code.promo_type.value,
        "target_scope": code.target_scope.value,
        "valid_from": code.valid_from,
        "valid_until": code.valid_until,
    }


def code_from_row(row: ColumnValues) -> PromoCode:
    return PromoCode(
        id=row["id"],
        campaign_id=row["campaign_id"],
        code_hash=row["code_hash"],
        code_prefix=row["code_prefix"],
        status=CampaignStatus(row["status"]),
        paused_reason=_paused_reason(row["paused_reason"]),
        max_total_uses=row["max_total_uses"],
        used_total=row["used_total"],
        created_at=utc_required(row["created_at"]),
        updated_at=utc_required(row["updated_at"]),
        campaign_name=row["campaign_name"],
        promo_type=PromoType(row["promo_type"]),
        target_scope=TargetScope(row["target_scope"]),
        valid_from=utc_required(row["valid_from"]),
        valid_until=utc(row["valid_until"]),
    )


def code_from_tuple(values: Sequence[Any]) -> PromoCode:
    return code_from_row(dict(zip(CODE_COLUMNS, values, strict=True)))


# -- promo_redemptions -------------------------------------------------------------------------------------

def redemption_values(redemption: Redemption) -> dict[str, Any]:
    """The insert parameters of a ``promo_redemptions`` row (every column but ``id``)."""
    return {
        "promo_code_id": redemption.promo_code_id,
        "campaign_id": redemption.campaign_id,
        "user_id": redemption.user_id,
        "idempotency_key": redemption.idempotency_key,
        "status": redemption.status.value,
        "discount_percent": redemption.discount_percent,
        "discount_stars": redemption.discount_stars,
        "reserved_until": redemption.reserved_until,
        "purchase_id": redemption.purchase_id,
        "applied_purchase_id": redemption.applied_purchase_id,
        "created_at": redemption.created_at,
        "updated_at": redemption.updated_at,
        "revoked_at": redemption.revoked_at,
        "user_slot": redemption.user_slot,
    }


def redemption_from_row(row: ColumnValues) -> Redemption:
    return Redemption(
        id=row["id"],
        promo_code_id=row["promo_code_id"],
        campaign_id=row["campaign_id"],
        user_id=row["user_id"],
        idempotency_key=row["idempotency_key"],
        status=RedemptionStatus(row["status"]),
        discount_percent=row["discount_percent"],
        discount_stars=row["discount_stars"],
        reserved_until=utc(row["reserved_until"]),
        purchase_id=row["purchase_id"],
        applied_purchase_id=row["applied_purchase_id"],
        created_at=utc_required(row["created_at"]),
        updated_at=utc_required(row["updated_at"]),
        revoked_at=utc(row["revoked_at"]),
        user_slot=row["user_slot"],
    )


def redemption_from_tuple(values: Sequence[Any]) -> Redemption:
    return redemption_from_row(dict(zip(REDEMPTION_COLUMNS, values, strict=True)))


# -- promo_attempts ----------------------------------------------------------------------------------------

ATTEMPT_INSERT_COLUMNS = [name for name in column_names(promo_attempts) if name != "id"]


def attempt_values(attempt: Attempt) -> dict[str, Any]:
    """The insert parameters of a ``promo_attempts`` row (every column but ``id``)."""
    return {
        "user_id": attempt.user_id,
        "normalized_code_hash": attempt.normalized_code_hash,
        "code_prefix": attempt.code_prefix,
        "result": attempt.result.value,
        "attempted_at": attempt.attempted_at,
        "campaign_id": attempt.campaign_id,
    }


def attempt_from_row(row: ColumnValues) -> Attempt:
    return Attempt(
        user_id=row["user_id"],
        normalized_code_hash=row["normalized_code_hash"],
        code_prefix=row["code_prefix"],
        result=RedeemResult(row["result"]),
        attempted_at=utc_required(row["attempted_at"]),
        id=row["id"],
        campaign_id=row["campaign_id"],
    )
