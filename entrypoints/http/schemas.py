"""The JSON of campaigns, codes, redemptions, purchases, audit entries, pages and users: each written with
``shapes.dump`` as its class in ``entrypoints.http.outputs`` declares it (the class is also its OpenAPI schema).
What is here is only where a member does not come from the object of the same name (a redemption's terms from its
campaign, a campaign's code counts from its view).

Campaign JSON: the ``promo_campaigns`` columns plus ``codes_total`` and ``codes_by_status``; code JSON: the
``promo_codes`` columns (``code_hash`` included; the plaintext is never stored, so it cannot leak from here).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from domain.campaigns import CampaignView
from domain.model import AuditEntry, Campaign, CampaignStatus, PromoCode, Purchase, Redemption
from domain.reports import UserRedemption, UserView
from entrypoints.http import outputs
from entrypoints.http.errors import ApiError
from entrypoints.http.shapes import dump


def codes_by_status_json(counts: Mapping[CampaignStatus, int]) -> dict[str, int]:
    return {s.value: counts.get(s, 0) for s in CampaignStatus}


def _campaign_counts(view: CampaignView) -> dict[str, Any]:
    return {"codes_total": view.codes_total, "codes_by_status": codes_by_status_json(view.codes_by_status)}


def campaign_json(view: CampaignView) -> dict[str, Any]:
    """The ``promo_campaigns`` columns, ``codes_total`` and ``codes_by_status`` (every status, zeros included)."""
    return dump(outputs.Campaign, view.campaign, **_campaign_counts(view))


def campaign_created_json(campaign: Campaign, code: PromoCode | None) -> dict[str, Any]:
    """A campaign just created, with the row of its first code (or null): its counts are known without reading
    them."""
    counts = dict.fromkeys(CampaignStatus, 0)
    if code is not None:
        counts[code.status] += 1
    return dump(outputs.CampaignCreated, campaign, **_campaign_counts(CampaignView(campaign, counts)), code=code)


def code_json(code: PromoCode) -> dict[str, Any]:
    return dump(outputs.Code, code)


def page_json(page_class: type, items: list[dict[str, Any]], next_cursor: int | None) -> dict[str, Any]:
    return dump(page_class, items=items, next_cursor=next_cursor)


def redemption_json(redemption: Redemption, campaign: Campaign) -> dict[str, Any]:
    """The SPEC 7 redemption JSON: the row's fields and the campaign's terms it was redeemed under."""
    return dump(outputs.Redemption, redemption, promo_type=campaign.promo_type,
                grant_plan_code=campaign.grant_plan_code, grant_days=campaign.grant_days)


def purchase_json(purchase: Purchase) -> dict[str, Any]:
    return dump(outputs.Purchase, purchase)


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return dump(outputs.AuditEntry, entry)


# --- GET /internal/users/{user_id} -------------------------------------------------------------------------------


def _user_redemption_json(item: UserRedemption) -> dict[str, Any]:
    campaign = item.campaign
    return dump(outputs.UserRedemption, item.redemption, code_prefix=item.code.code_prefix if item.code else None,
                campaign_name=campaign.name if campaign else None,
                promo_type=campaign.promo_type if campaign else None,
                grant_plan_code=campaign.grant_plan_code if campaign else None,
                grant_days=campaign.grant_days if campaign else None)


def user_json(view: UserView, now: datetime, fail_limit: int, fail_window_hours: int) -> dict[str, Any]:
    """Everything support needs about one user (newest first, at most 50 of each list)."""
    blocked = view.blocked_until is not None and view.blocked_until > now
    entitlement = view.entitlement
    return dump(
        outputs.User, view,
        redemptions=[_user_redemption_json(r) for r in view.redemptions],
        entitlements=[] if entitlement is None else [
            dump(outputs.UserEntitlement, entitlement, active=entitlement.expires_at > now)],
        entitlement_ledger=view.ledger,
        throttling={"blocked": blocked, "blocked_until": view.blocked_until if blocked else None,
                    "failures_in_window": view.failures_in_window, "fail_limit": fail_limit,
                    "window_hours": fail_window_hours},
    )


def not_found(what: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} not found")
