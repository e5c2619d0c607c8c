"""What the internal API answers: the JSON of campaigns, codes, redemptions, purchases, audit entries and users.

Campaign JSON: the ``promo_campaigns`` columns plus ``codes_total`` and ``codes_by_status``; code JSON: the
``promo_codes`` columns (``code_hash`` included; the plaintext is never stored, so it cannot leak from here).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from domain.campaigns import CampaignView
from domain.model import (
    Attempt,
    AuditEntry,
    Campaign,
    CampaignStatus,
    Entitlement,
    LedgerEntry,
    PromoCode,
    Purchase,
    Redemption,
)
from domain.reports import UserRedemption, UserView
from entrypoints.http.convert import format_datetime, unstructure
from entrypoints.http.errors import ApiError

CAMPAIGN_COLUMNS: tuple[str, ...] = (
    "id", "name", "promo_type", "grant_plan_code", "grant_days", "discount_percent", "discount_stars",
    "applicable_products", "target_scope", "status", "paused_reason", "valid_from", "valid_until", "max_total_uses",
    "per_user_limit", "used_total", "created_at", "updated_at",
)
CODE_COLUMNS: tuple[str, ...] = (
    "id", "campaign_id", "code_hash", "code_prefix", "status", "paused_reason", "max_total_uses", "used_total",
    "created_at", "updated_at", "campaign_name", "promo_type", "target_scope", "valid_from", "valid_until",
)
REDEMPTION_FIELDS: tuple[str, ...] = (
    "id", "promo_code_id", "campaign_id", "user_id", "promo_type", "status", "discount_percent", "discount_stars",
    "reserved_until", "grant_plan_code", "grant_days", "created_at",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, tuple):
        return list(value)
    return unstructure(value)


def _columns(row: object, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: _plain(getattr(row, name)) for name in names}


def codes_by_status_json(counts: Mapping[CampaignStatus, int]) -> dict[str, int]:
    return {s.value: counts.get(s, 0) for s in CampaignStatus}


def campaign_json(view: CampaignView) -> dict[str, Any]:
    """The ``promo_campaigns`` columns, ``codes_total`` and ``codes_by_status`` (every status, zeros included)."""
    out = _columns(view.campaign, CAMPAIGN_COLUMNS)
    out["codes_total"] = view.codes_total
    out["codes_by_status"] = codes_by_status_json(view.codes_by_status)
    return out


def new_campaign_view(campaign: Campaign, code: PromoCode | None) -> CampaignView:
    """A campaign just created (with its first code or none): its counts are known without reading them."""
    counts = dict.fromkeys(CampaignStatus, 0)
    if code is not None:
        counts[code.status] += 1
    return CampaignView(campaign, counts)


def code_json(code: PromoCode) -> dict[str, Any]:
    return _columns(code, CODE_COLUMNS)


def redemption_json(redemption: Redemption, campaign: Campaign) -> dict[str, Any]:
    """The SPEC 7 redemption JSON: the row's fields and the campaign's terms it was redeemed under."""
    return {
        "id": redemption.id,
        "promo_code_id": redemption.promo_code_id,
        "campaign_id": redemption.campaign_id,
        "user_id": redemption.user_id,
        "promo_type": campaign.promo_type.value,
        "status": redemption.status.value,
        "discount_percent": redemption.discount_percent,
        "discount_stars": redemption.discount_stars,
        "reserved_until": _plain(redemption.reserved_until),
        "grant_plan_code": campaign.grant_plan_code,
        "grant_days": campaign.grant_days,
        "created_at": _plain(redemption.created_at),
    }


def purchase_json(purchase: Purchase) -> dict[str, Any]:
    """The ``purchases`` columns of SPEC 5 (and ``review_reason`` set by payment recovery)."""
    data: dict[str, Any] = unstructure(purchase)
    return data


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": _plain(entry.at), "actor": entry.actor, "action": entry.action,
            "target_type": entry.target_type, "target_id": entry.target_id, "details": entry.details}


# --- GET /internal/users/{user_id} -------------------------------------------------------------------------------


def _user_redemption_json(item: UserRedemption) -> dict[str, Any]:
    r, campaign = item.redemption, item.campaign
    out: dict[str, Any] = {
        "id": r.id, "promo_code_id": r.promo_code_id, "code_prefix": item.code.code_prefix if item.code else None,
        "campaign_id": r.campaign_id, "campaign_name": campaign.name if campaign else None,
        "promo_type": campaign.promo_type.value if campaign else None, "status": r.status.value,
        "discount_percent": r.discount_percent, "discount_stars": r.discount_stars,
        "grant_plan_code": campaign.grant_plan_code if campaign else None,
        "grant_days": campaign.grant_days if campaign else None,
    }
    for name in ("reserved_until", "purchase_id", "applied_purchase_id", "created_at", "updated_at", "revoked_at"):
        out[name] = _plain(getattr(r, name))
    return out


def _entitlement_json(entitlement: Entitlement, now: datetime) -> dict[str, Any]:
    return {"plan_code": entitlement.plan_code, "expires_at": _plain(entitlement.expires_at),
            "active": entitlement.expires_at > now, "updated_at": _plain(entitlement.updated_at)}


def _ledger_json(entry: LedgerEntry) -> dict[str, Any]:
    return {"id": entry.id, "plan_code": entry.plan_code, "days": entry.days, "source": entry.source.value,
            "promo_redemption_id": entry.promo_redemption_id, "purchase_id": entry.purchase_id,
            "expires_at_after": _plain(entry.expires_at_after), "created_at": _plain(entry.created_at)}


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {"id": attempt.id, "attempted_at": _plain(attempt.attempted_at), "result": attempt.result.value,
            "code_prefix": attempt.code_prefix, "normalized_code_hash": attempt.normalized_code_hash,
            "campaign_id": attempt.campaign_id}


def user_json(view: UserView, now: datetime, fail_limit: int, fail_window_hours: int) -> dict[str, Any]:
    """Everything support needs about one user (newest first, at most 50 of each list)."""
    blocked = view.blocked_until is not None and view.blocked_until > now
    return {
        "user_id": view.user_id,
        "redemptions": [_user_redemption_json(r) for r in view.redemptions],
        "purchases": [purchase_json(p) for p in view.purchases],
        "entitlements": [_entitlement_json(view.entitlement, now)] if view.entitlement else [],
        "entitlement_ledger": [_ledger_json(e) for e in view.ledger],
        "attempts": [_attempt_json(a) for a in view.attempts],
        "throttling": {
            "blocked": blocked,
            "blocked_until": _plain(view.blocked_until) if blocked else None,
            "failures_in_window": view.failures_in_window,
            "fail_limit": fail_limit,
            "window_hours": fail_window_hours,
        },
    }


def not_found(what: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} not found")
