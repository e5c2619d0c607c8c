"""Read-only reports for ops and support: one campaign's metrics (SPEC 7 ``.../campaigns/{id}/stats``) and what
support needs about one Telegram user (``GET /internal/users/{user_id}``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from domain.dashboard import DEFAULT_WINDOW_HOURS, hourly_series, iso, roll_up_attempts, validate_window_hours
from domain.errors import NotFound, ValidationError
from domain.model import (
    ATTEMPT_RESULTS,
    Attempt,
    Campaign,
    Entitlement,
    LedgerEntry,
    PromoCode,
    PromoType,
    Purchase,
    Redemption,
    RedemptionStatus,
)
from domain.policy import PromoPolicy
from domain.redemption import MAX_USER_ID
from domain.throttling import blocked_until

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.repositories import UnitOfWorkFactory

USER_VIEW_LIMIT = 50


@attrs.frozen
class UserRedemption:
    redemption: Redemption
    code: PromoCode | None
    campaign: Campaign | None


@attrs.frozen
class UserView:
    """Everything support needs about one user, newest first, at most ``USER_VIEW_LIMIT`` of each list."""

    user_id: int
    redemptions: list[UserRedemption]
    purchases: list[Purchase]
    entitlement: Entitlement | None
    ledger: list[LedgerEntry]
    attempts: list[Attempt]
    failures_in_window: int
    blocked_until: datetime | None


class ReportService:
    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock, policy: PromoPolicy | None = None) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._policy = policy or PromoPolicy()

    def campaign_stats(self, campaign_id: int, window_hours: int = DEFAULT_WINDOW_HOURS) -> dict[str, Any]:
        """The campaign's metrics over the trailing window: attempts on its codes by result, its redemptions
        created in the window by status, its paid purchases, the Stars and grant days it gave, and the hourly
        ``series`` (as the dashboard's)."""
        hours = validate_window_hours(window_hours)
        until = self._clock.now()
        since = until - timedelta(hours=hours)
        end = until + timedelta(microseconds=1)
        with self._uow() as uow:
            campaign = uow.campaigns.get(campaign_id)
            if campaign is None:
                raise NotFound(f"campaign {campaign_id} not found")
            roll_up_attempts(uow, since, until)
            attempts = uow.attempts.counts_by_result(since, end, campaign_id)
            redemptions = uow.redemptions.count_by_status_in_campaign(campaign_id, since)
            paid, revenue, discount = uow.purchases.paid_in_campaign(campaign_id, since)
            series = hourly_series(uow, since, end, campaign_id)
        # A campaign's redemptions all carry its own terms: a grant campaign's are grants, given when APPLIED (REVOKED
        # later included), and no other campaign gives days. (``Redemptions.given_in_campaign`` says the same with
        # one more join of purchases and redemptions, whose Stars ``paid_in_campaign`` already counted.)
        grants = redemptions.get(RedemptionStatus.APPLIED, 0) + redemptions.get(RedemptionStatus.REVOKED, 0)
        grant_days = grants * (campaign.grant_days or 0) if campaign.promo_type is PromoType.PREMIUM_GRANT else 0
        return {
            "campaign_id": campaign_id,
            "window": {"from": iso(since), "to": iso(until), "hours": hours},
            "attempts_by_result": {r.value: attempts.get(r, 0) for r in ATTEMPT_RESULTS},
            "redemptions_by_status": {s.value: redemptions.get(s, 0) for s in RedemptionStatus},
            "purchases_paid": paid,
            "stars_revenue": revenue,
            "discount_stars_given": discount,
            "grant_days_given": grant_days,
            "series": series,
        }

    def user(self, user_id: int) -> UserView:
        if isinstance(user_id, bool) or not isinstance(user_id, int) or not 1 <= user_id <= MAX_USER_ID:
            raise ValidationError.single("user_id", "must be a positive 64-bit integer")
        now = self._clock.now()
        with self._uow() as uow:
            redemptions = uow.redemptions.for_user(user_id, USER_VIEW_LIMIT)
            codes = uow.promo_codes.get_many(sorted({r.promo_code_id for r in redemptions}))
            campaigns = uow.campaigns.get_many(sorted({r.campaign_id for r in redemptions}))
            purchases = uow.purchases.for_user(user_id, USER_VIEW_LIMIT)
            entitlement = uow.entitlements.get(user_id)
            ledger = list(reversed(uow.ledger.for_user(user_id)))[:USER_VIEW_LIMIT]
            attempts = uow.attempts.for_user(user_id, USER_VIEW_LIMIT)
            failures, _ = uow.attempts.failure_stats(user_id, now - self._policy.fail_window)
            until = blocked_until(uow.attempts, user_id, now, self._policy)
        return UserView(
            user_id=user_id,
            redemptions=[UserRedemption(r, codes.get(r.promo_code_id), campaigns.get(r.campaign_id))
                         for r in redemptions],
            purchases=purchases, entitlement=entitlement, ledger=ledger, attempts=attempts,
            failures_in_window=failures, blocked_until=until,
        )
