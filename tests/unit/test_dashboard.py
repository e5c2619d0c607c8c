"""SPEC 7: the dashboard document, computed on a known data set (exact numbers)."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs
import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignSpec, build_campaign
from domain.dashboard import DashboardService
from domain.errors import ValidationError
from domain.model import (
    Attempt,
    CampaignStatus,
    PausedReason,
    PaymentReview,
    PromoType,
    Purchase,
    PurchaseStatus,
    RedeemResult,
    Redemption,
    RedemptionStatus,
)
from tests.conftest import T0

HOT = "a" * 64
WARM = "b" * 64


def _ago(**kw: float) -> datetime:
    return T0 - timedelta(**kw)


@pytest.fixture
def dashboard(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> DashboardService:
    return DashboardService(uow_factory, clock)


@pytest.fixture
def data(uow_factory: InMemoryUnitOfWorkFactory) -> None:
    """The known data set: see the expected figures in the tests."""
    discount = CampaignSpec(campaign_name="d", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=10)
    grant = CampaignSpec(campaign_name="g", promo_type=PromoType.PREMIUM_GRANT, grant_plan_code="P", grant_days=1)
    with uow_factory() as uow:
        d = uow.promo_codes.add(build_campaign(discount, "1" * 64, "DISC", _ago(days=10)))
        g = uow.promo_codes.add(build_campaign(grant, "2" * 64, "GIFT", _ago(days=10)))
        for i, (status, changed) in enumerate([(CampaignStatus.PAUSED, _ago(hours=2)),
                                               (CampaignStatus.PAUSED, _ago(hours=48)),
                                               (CampaignStatus.ACTIVE, _ago(hours=1))]):
            c = build_campaign(discount, f"{i + 3}" * 64, "MORE", _ago(days=10))
            uow.promo_codes.add(attrs.evolve(
                c, status=status, updated_at=changed,
                paused_reason=PausedReason.MANUAL if status is CampaignStatus.PAUSED else None))
        assert d.id is not None and g.id is not None
        for user, (campaign_id, percent, status, created, applied) in enumerate([
            (d.id, 10, RedemptionStatus.APPLIED, _ago(hours=2), 1),
            (d.id, 10, RedemptionStatus.RESERVED, _ago(hours=3), None),
            (d.id, 10, RedemptionStatus.EXPIRED, _ago(hours=5), None),
            (d.id, 10, RedemptionStatus.REVOKED, _ago(hours=1), 2),
            (g.id, None, RedemptionStatus.APPLIED, _ago(hours=1), None),  # a grant is no reservation
            (d.id, 10, RedemptionStatus.APPLIED, _ago(hours=30), 3),  # outside the 24 h window
        ], start=1):
            uow.redemptions.add(Redemption(
                id=None, promo_code_id=campaign_id, user_id=user, idempotency_key=f"k{user}", status=status,
                discount_percent=percent, reserved_until=None if percent is None else created + timedelta(minutes=15),
                purchase_id=applied, applied_purchase_id=applied, created_at=created, updated_at=created))
        rows = (
            [(100 + i % 5, HOT, RedeemResult.INVALID, _ago(minutes=5)) for i in range(20)]
            + [(200 + i, None, RedeemResult.ACCEPTED, _ago(hours=1)) for i in range(5)]
            + [(300, None, RedeemResult.PAUSED, _ago(hours=2))] * 3
            + [(301, None, RedeemResult.RATE_LIMITED, _ago(hours=3))] * 2
            + [(302, None, RedeemResult.ALREADY_USED, T0)]
            + [(303, None, RedeemResult.EXPIRED, _ago(hours=25))] * 4
            + [(400 + i, WARM, RedeemResult.DEPLETED, _ago(minutes=11)) for i in range(7)]
        )
        for user, h, result, at in rows:
            uow.attempts.add(Attempt(user_id=user, normalized_code_hash=h, code_prefix=None, result=result,
                                     attempted_at=at))
        for user, (status, stars, paid, refunded, changed, review) in enumerate([
            (PurchaseStatus.PAID, 150, _ago(hours=2), None, _ago(hours=2), None),
            (PurchaseStatus.REFUNDED, 50, _ago(hours=30), _ago(hours=1), _ago(hours=1), None),  # paid before
            (PurchaseStatus.REFUNDED, 1000, _ago(hours=3), _ago(hours=2), _ago(hours=2), None),
            (PurchaseStatus.FAILED, 350, None, None, _ago(hours=3), None),
            (PurchaseStatus.FAILED, 350, None, None, _ago(hours=25), None),  # failed before the window
            (PurchaseStatus.PAID, 120, _ago(hours=40), None, _ago(hours=40), "AMOUNT_MISMATCH"),
        ], start=1):
            uow.purchases.add(Purchase(
                id=None, user_id=user, product_code="PREMIUM_30D", base_stars_amount=stars, discount_stars_amount=0,
                final_stars_amount=stars, promo_redemption_id=None, status=status,
                telegram_payment_charge_id=f"ch-{user}" if paid else None, created_at=changed, updated_at=changed,
                paid_at=paid, refunded_at=refunded, review_reason=review))
        for key in ("a", "b"):
            uow.payment_reviews.add(PaymentReview(
                id=None, dedup_key=key, event="payments_recovery_review_required", kind="AMOUNT_MISMATCH",
                purchase_id=None, telegram_payment_charge_id=None, details={}, created_at=_ago(hours=50)))
        uow.payment_reviews.resolve(2, "done", _ago(hours=49))
        uow.commit()


@pytest.mark.usefixtures("data")
def test_dashboard_of_the_last_24_hours(dashboard: DashboardService) -> None:
    assert dashboard.metrics(24) == {
        "window": {"from": "2026-02-28T12:00:00Z", "to": "2026-03-01T12:00:00Z", "hours": 24},
        "conversion": {
            "attempts_total": 38,
            "attempts_accepted": 5,
            "acceptance_rate": 5 / 38,
            "reservations_total": 4,
            "reservations_applied": 2,
            "reservation_apply_rate": 0.5,
        },
        "failures": {
            "by_result": {"INVALID": 20, "PAUSED": 3, "EXPIRED": 0, "NOT_APPLICABLE": 0, "DEPLETED": 7,
                          "ALREADY_USED": 1, "RATE_LIMITED": 2, "IDEMPOTENCY_KEY_REUSED": 0},
            "failure_rate": 33 / 38,
        },
        "guard": {
            "candidate_abusive_hashes": [{"normalized_code_hash": HOT, "failures": 20, "distinct_users": 5,
                                          "last_seen": "2026-03-01T11:55:00Z"}],
            "paused_campaigns_total": 2,
            "paused_campaigns_recent": 1,
        },
        "payments": {
            "paid_count": 2, "paid_stars": 1150,  # by paid_at: a refund later does not unpay it
            "refunded_count": 2, "refunded_stars": 1050,  # by refunded_at: one was paid before the window
            "failed_count": 1, "failed_stars": 350,
            "open_review_items": 1, "purchases_in_review": 1,  # now, whatever the window
        },
    }


@pytest.mark.usefixtures("data")
def test_dashboard_of_the_last_hour_includes_both_ends_of_the_window(dashboard: DashboardService) -> None:
    m = dashboard.metrics(1)
    assert m["window"] == {"from": "2026-03-01T11:00:00Z", "to": "2026-03-01T12:00:00Z", "hours": 1}
    assert m["conversion"] == {"attempts_total": 33, "attempts_accepted": 5, "acceptance_rate": 5 / 33,
                               "reservations_total": 1, "reservations_applied": 1, "reservation_apply_rate": 1.0}
    assert m["failures"]["by_result"]["INVALID"] == 20 and m["failures"]["by_result"]["PAUSED"] == 0
    assert m["failures"]["failure_rate"] == 28 / 33
    assert (m["guard"]["paused_campaigns_total"], m["guard"]["paused_campaigns_recent"]) == (2, 0)


@pytest.mark.usefixtures("data")
def test_default_window_is_24_hours_and_the_longest_30_days(dashboard: DashboardService) -> None:
    assert dashboard.metrics() == dashboard.metrics(24)
    longest = dashboard.metrics(720)
    assert longest["window"]["from"] == "2026-01-30T12:00:00Z"
    assert longest["conversion"]["attempts_total"] == 42
    assert longest["conversion"]["reservations_total"] == 5
    assert longest["failures"]["by_result"]["EXPIRED"] == 4


def test_empty_dashboard_has_zero_rates_and_every_result(dashboard: DashboardService) -> None:
    m = dashboard.metrics(24)
    assert m["conversion"] == {"attempts_total": 0, "attempts_accepted": 0, "acceptance_rate": 0.0,
                               "reservations_total": 0, "reservations_applied": 0, "reservation_apply_rate": 0.0}
    assert m["failures"] == {"failure_rate": 0.0, "by_result": {
        "INVALID": 0, "PAUSED": 0, "EXPIRED": 0, "NOT_APPLICABLE": 0, "DEPLETED": 0, "ALREADY_USED": 0,
        "RATE_LIMITED": 0, "IDEMPOTENCY_KEY_REUSED": 0}}
    assert m["guard"] == {"candidate_abusive_hashes": [], "paused_campaigns_total": 0, "paused_campaigns_recent": 0}
    assert m["payments"] == {"paid_count": 0, "paid_stars": 0, "refunded_count": 0, "refunded_stars": 0,
                             "failed_count": 0, "failed_stars": 0, "open_review_items": 0, "purchases_in_review": 0}


@pytest.mark.parametrize("hours", [0, 721, -1, True, "24", 1.5, None])
def test_window_hours_outside_1_to_720_is_a_validation_error(dashboard: DashboardService, hours: object) -> None:
    with pytest.raises(ValidationError) as err:
        dashboard.metrics(hours)  # type: ignore[arg-type]
    assert err.value.errors == [{"field": "window_hours", "message": "must be an integer 1..720"}]
