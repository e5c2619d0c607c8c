"""SPEC 7: the dashboard document, computed on a known data set (exact numbers), its hourly ``series``, and
the guard's counts of paused campaigns and of codes paused on their own."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.codes import CodeHasher
from domain.dashboard import DashboardService
from domain.errors import ValidationError
from domain.model import (
    Attempt,
    CampaignStatus,
    PausedReason,
    PaymentReview,
    PromoCode,
    PromoType,
    PurchaseStatus,
    RedeemResult,
    Redemption,
    RedemptionStatus,
    StarMovement,
)
from domain.promo_codes import CodeService
from tests.builders import (
    make_attempt,
    make_campaign,
    make_code,
    make_grant_campaign,
    make_grant_redemption,
    make_purchase,
    make_redemption,
    make_stars_campaign,
)
from tests.conftest import T0

HOT = "a" * 64
WARM = "b" * 64
DISCOUNT = CampaignSpec(name="d", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=10)


def _ago(**kw: float) -> datetime:
    return T0 - timedelta(**kw)


def _hour(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:00:00Z")


@pytest.fixture
def dashboard(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> DashboardService:
    return DashboardService(uow_factory, clock)


def _reservation(code: PromoCode, user: int, status: RedemptionStatus, created: datetime,
                 purchase: int | None = None, **changes: Any) -> Redemption:
    """A discount reservation of ``code`` (10 % unless ``changes`` say otherwise), applied by ``purchase``."""
    fields: dict[str, Any] = {"discount_percent": 10, **changes}
    return make_redemption(code, user, f"k{user}", status=status, reserved_until=created + timedelta(minutes=15),
                           purchase_id=purchase, applied_purchase_id=purchase, created_at=created,
                           updated_at=created, revoked_at=created if status is RedemptionStatus.REVOKED else None,
                           **fields)


@pytest.fixture
def data(uow_factory: InMemoryUnitOfWorkFactory) -> None:
    """The known data set: see the expected figures in the tests (``now`` is ``T0``, on the hour)."""
    with uow_factory() as uow:
        d = uow.campaigns.add(make_campaign("d", discount_percent=10))
        s = uow.campaigns.add(make_stars_campaign("s", discount_stars=100))
        g = uow.campaigns.add(make_grant_campaign("g", grant_plan_code="P", grant_days=1))
        uow.campaigns.add(make_campaign("m1", status=CampaignStatus.PAUSED, paused_reason=PausedReason.MANUAL,
                                        updated_at=_ago(hours=2)))
        uow.campaigns.add(make_campaign("m2", status=CampaignStatus.PAUSED,
                                        paused_reason=PausedReason.AUTO_BRUTEFORCE, updated_at=_ago(hours=48)))
        uow.campaigns.add(make_campaign("m3", updated_at=_ago(hours=1)))  # resumed: not paused
        dc = uow.promo_codes.add(make_code(d, "1" * 64, code_prefix="DISC"))
        sc = uow.promo_codes.add(make_code(s, "2" * 64, code_prefix="STAR"))
        gc = uow.promo_codes.add(make_code(g, "3" * 64, code_prefix="GIFT"))
        # codes paused on their own (their campaign d stays ACTIVE)
        uow.promo_codes.add(make_code(d, "4" * 64, code_prefix="DISC", status=CampaignStatus.PAUSED,
                                      paused_reason=PausedReason.AUTO_BRUTEFORCE, updated_at=_ago(hours=3)))
        uow.promo_codes.add(make_code(d, "5" * 64, code_prefix="DISC", status=CampaignStatus.PAUSED,
                                      paused_reason=PausedReason.MANUAL, updated_at=_ago(hours=30)))

        redemptions = [
            _reservation(dc, 1, RedemptionStatus.APPLIED, _ago(hours=2, minutes=30), purchase=1),
            _reservation(sc, 2, RedemptionStatus.REVOKED, _ago(hours=1), purchase=2, discount_percent=None,
                         discount_stars=100),
            _reservation(dc, 3, RedemptionStatus.RESERVED, _ago(minutes=10)),
            _reservation(dc, 4, RedemptionStatus.EXPIRED, _ago(hours=5)),
            make_grant_redemption(gc, 5, "k5", created_at=_ago(hours=1, minutes=30)),  # no reservation
            _reservation(dc, 6, RedemptionStatus.APPLIED, _ago(hours=40, minutes=10), purchase=6),
            make_grant_redemption(gc, 8, "k8", status=RedemptionStatus.REVOKED, created_at=_ago(hours=20)),
        ]
        assert [uow.redemptions.add(r).id for r in redemptions] == [1, 2, 3, 4, 5, 6, 7]

        purchases = [
            # user, product, base, final, redemption, status, paid, refunded, changed, review
            (1, "PREMIUM_30D", 150, 135, 1, PurchaseStatus.PAID, _ago(hours=2), None, _ago(hours=2), None),
            (2, "PREMIUM_7D", 50, 1, 2, PurchaseStatus.REFUNDED, _ago(minutes=50), _ago(minutes=10),
             _ago(minutes=10), None),
            (3, "PREMIUM_365D", 1000, 1000, None, PurchaseStatus.REFUNDED, _ago(hours=30), _ago(hours=1),
             _ago(hours=1), None),  # paid before the window
            (4, "PREMIUM_90D", 350, 350, None, PurchaseStatus.FAILED, None, None, _ago(hours=3), None),
            (5, "PREMIUM_90D", 350, 350, None, PurchaseStatus.FAILED, None, None, _ago(hours=25), None),
            (6, "PREMIUM_30D", 150, 135, 6, PurchaseStatus.PAID, _ago(hours=40), None, _ago(hours=40),
             "AMOUNT_MISMATCH"),
            (7, "PREMIUM_30D", 150, 150, None, PurchaseStatus.PAID, T0, None, T0, None),  # paid right now
        ]
        for user, product, base, final, rid, status, paid, refunded, changed, review in purchases:
            uow.purchases.add(make_purchase(
                user, product, base_stars_amount=base, discount_stars_amount=base - final, final_stars_amount=final,
                promo_redemption_id=rid, status=status, telegram_payment_charge_id=f"ch-{user}" if paid else None,
                created_at=changed - timedelta(minutes=5), updated_at=changed, paid_at=paid, refunded_at=refunded,
                review_reason=review))

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
            uow.attempts.add(make_attempt(user, result, at, h, prefix=None))
        for key in ("a", "b"):
            uow.payment_reviews.add(PaymentReview(
                id=None, dedup_key=key, event="payments_recovery_review_required", kind="AMOUNT_MISMATCH",
                purchase_id=None, telegram_payment_charge_id=None, details={}, created_at=_ago(hours=50)))
        uow.payment_reviews.resolve(2, "done", _ago(hours=49))
        # Other Star movements the reconciliation recorded (issue 17): by occurred_at, per kind and direction.
        uow.star_movements.add_many([
            _movement("wd-1", "withdrawal", "fragment", 5000, 0, _ago(hours=3), outgoing=True),
            _movement("wd-old", "withdrawal", "fragment", 700, 0, _ago(hours=30), outgoing=True),
            _movement("bc-1", "paid_broadcast", "telegram_api", 0, 100_000_000, _ago(minutes=30), outgoing=True),
            _movement("bc-2", "paid_broadcast", "telegram_api", 2, 950_000_000, _ago(minutes=10), outgoing=True),
            _movement("af-1", "affiliate_commission", "affiliate_program", 12, 0, T0),
        ])
        uow.commit()


def _movement(tx_id: str, kind: str, partner: str, stars: int, nanostars: int, at: datetime,
              outgoing: bool = False) -> StarMovement:
    return StarMovement(transaction_id=tx_id, outgoing=outgoing, kind=kind, partner=partner, transaction_type=None,
                        stars=stars, nanostars=nanostars, occurred_at=at)


def _series(hours: int, **busy: dict[str, int]) -> list[dict[str, Any]]:
    """The expected series of a window of ``hours`` ending at ``T0``: ``hours + 1`` entries (the window touches the
    hour ``T0`` opens as well), zeros except the ``busy`` hours (keyed ``h<hours before T0>``)."""
    out = []
    for back in range(hours, -1, -1):
        entry = {"hour": _hour(_ago(hours=back)), "attempts": 0, "accepted": 0, "applied": 0, "stars_revenue": 0}
        entry.update(busy.get(f"h{back}", {}))
        out.append(entry)
    return out


@pytest.mark.usefixtures("data")
def test_dashboard_of_the_last_24_hours(dashboard: DashboardService) -> None:
    assert dashboard.metrics(24) == {
        "window": {"from": "2026-02-28T12:00:00Z", "to": "2026-03-01T12:00:00Z", "hours": 24},
        "conversion": {
            "attempts_total": 38,
            "attempts_accepted": 5,
            "acceptance_rate": 5 / 38,
            "reservations_total": 4,  # percent and Stars reservations alike; not the grant
            "reservations_applied": 2,  # paid (the REVOKED one was paid, then refunded)
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
            "paused_codes_total": 2,
            "paused_campaigns_recent": 2,  # campaign m1 and one code, paused inside the window
        },
        "payments": {
            "paid_count": 3, "paid_stars": 286,  # by paid_at: a refund later does not unpay it
            "refunded_count": 2, "refunded_stars": 1001,  # by refunded_at: one was paid before the window
            "failed_count": 1, "failed_stars": 350,
            "open_review_items": 1, "purchases_in_review": 1,  # now, whatever the window
            "other_movements": {"count": 4, "kinds": [  # wd-old is older than the window
                {"kind": "affiliate_commission", "direction": "incoming", "count": 1, "stars": 12,
                 "nanostar_amount": 0},
                {"kind": "paid_broadcast", "direction": "outgoing", "count": 2, "stars": 3,  # 0.1 + 2.95
                 "nanostar_amount": 50_000_000},
                {"kind": "withdrawal", "direction": "outgoing", "count": 1, "stars": 5000, "nanostar_amount": 0},
            ]},
        },
        "series": _series(
            24,
            h20={"applied": 1},  # the revoked grant, applied when it was created
            h3={"attempts": 2},
            h2={"attempts": 3, "applied": 2, "stars_revenue": 135},  # purchase 1 paid; the grant at -1h30
            h1={"attempts": 32, "accepted": 5, "applied": 1, "stars_revenue": 1},  # the Stars purchase paid
            h0={"attempts": 1, "stars_revenue": 150},  # what happens at T0 itself belongs to the window
        ),
    }


@pytest.mark.usefixtures("data")
def test_dashboard_of_the_last_hour_includes_both_ends_of_the_window(dashboard: DashboardService) -> None:
    m = dashboard.metrics(1)
    assert m["window"] == {"from": "2026-03-01T11:00:00Z", "to": "2026-03-01T12:00:00Z", "hours": 1}
    assert m["conversion"] == {"attempts_total": 33, "attempts_accepted": 5, "acceptance_rate": 5 / 33,
                               "reservations_total": 2, "reservations_applied": 1, "reservation_apply_rate": 0.5}
    assert m["failures"]["by_result"]["INVALID"] == 20 and m["failures"]["by_result"]["PAUSED"] == 0
    assert m["failures"]["failure_rate"] == 28 / 33
    assert {k: v for k, v in m["guard"].items() if k != "candidate_abusive_hashes"} == {
        "paused_campaigns_total": 2, "paused_codes_total": 2, "paused_campaigns_recent": 0}
    assert m["payments"] | {"open_review_items": 0, "purchases_in_review": 0} == {
        "paid_count": 2, "paid_stars": 151, "refunded_count": 2, "refunded_stars": 1001, "failed_count": 0,
        "failed_stars": 0, "open_review_items": 0, "purchases_in_review": 0,
        "other_movements": {"count": 3, "kinds": [
            {"kind": "affiliate_commission", "direction": "incoming", "count": 1, "stars": 12, "nanostar_amount": 0},
            {"kind": "paid_broadcast", "direction": "outgoing", "count": 2, "stars": 3,
             "nanostar_amount": 50_000_000}]}}
    assert m["series"] == _series(1, h1={"attempts": 32, "accepted": 5, "applied": 1, "stars_revenue": 1},
                                  h0={"attempts": 1, "stars_revenue": 150})


@pytest.mark.usefixtures("data")
def test_default_window_is_24_hours_and_the_longest_30_days(dashboard: DashboardService) -> None:
    assert dashboard.metrics() == dashboard.metrics(24)
    longest = dashboard.metrics(720)
    assert longest["window"]["from"] == "2026-01-30T12:00:00Z"
    assert longest["conversion"]["attempts_total"] == 42
    assert longest["conversion"]["reservations_total"] == 5
    assert longest["failures"]["by_result"]["EXPIRED"] == 4
    assert longest["guard"]["paused_campaigns_recent"] == 4
    assert len(longest["series"]) == 721
    assert longest["payments"]["other_movements"]["count"] == 5


@pytest.mark.usefixtures("data")
@pytest.mark.parametrize("hours", [1, 3, 24, 72, 720])
def test_the_series_has_one_entry_per_hour_and_adds_up_to_the_window(dashboard: DashboardService,
                                                                       hours: int) -> None:
    m = dashboard.metrics(hours)
    series = m["series"]
    assert [e["hour"] for e in series] == [_hour(_ago(hours=back)) for back in range(hours, -1, -1)]
    assert sum(e["attempts"] for e in series) == m["conversion"]["attempts_total"]
    assert sum(e["accepted"] for e in series) == m["conversion"]["attempts_accepted"]
    assert sum(e["stars_revenue"] for e in series) == m["payments"]["paid_stars"]


def test_a_window_off_the_hour_starts_and_ends_in_partial_hours(
    dashboard: DashboardService, uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock,
) -> None:
    clock.advance(minutes=30)  # 12:30: the window 10:30..12:30 touches the hours 10, 11 and 12
    with uow_factory() as uow:
        for minutes_ago in (121, 120, 90, 5, 0):  # 10:29 is outside, 10:30 the window's first moment
            at = clock.now() - timedelta(minutes=minutes_ago)
            uow.attempts.add(Attempt(user_id=1, normalized_code_hash=None, code_prefix=None,
                                     result=RedeemResult.INVALID, attempted_at=at))
        uow.commit()
    m = dashboard.metrics(2)
    assert [(e["hour"], e["attempts"]) for e in m["series"]] == [
        ("2026-03-01T10:00:00Z", 1), ("2026-03-01T11:00:00Z", 1), ("2026-03-01T12:00:00Z", 2)]
    assert m["conversion"]["attempts_total"] == 4


def test_empty_dashboard_has_zero_rates_every_result_and_a_series_of_zeros(dashboard: DashboardService) -> None:
    m = dashboard.metrics(24)
    assert m["conversion"] == {"attempts_total": 0, "attempts_accepted": 0, "acceptance_rate": 0.0,
                               "reservations_total": 0, "reservations_applied": 0, "reservation_apply_rate": 0.0}
    assert m["failures"] == {"failure_rate": 0.0, "by_result": {
        "INVALID": 0, "PAUSED": 0, "EXPIRED": 0, "NOT_APPLICABLE": 0, "DEPLETED": 0, "ALREADY_USED": 0,
        "RATE_LIMITED": 0, "IDEMPOTENCY_KEY_REUSED": 0}}
    assert m["guard"] == {"candidate_abusive_hashes": [], "paused_campaigns_total": 0, "paused_codes_total": 0,
                          "paused_campaigns_recent": 0}
    assert m["payments"] == {"paid_count": 0, "paid_stars": 0, "refunded_count": 0, "refunded_stars": 0,
                             "failed_count": 0, "failed_stars": 0, "open_review_items": 0, "purchases_in_review": 0,
                             "other_movements": {"count": 0, "kinds": []}}
    assert m["series"] == _series(24)


def test_paused_codes_count_apart_from_paused_campaigns(
    dashboard: DashboardService, campaigns: CampaignService, uow_factory: InMemoryUnitOfWorkFactory,
    clock: ManualClock, hasher: CodeHasher,
) -> None:
    codes = CodeService(uow_factory, clock, hasher)
    c, first = campaigns.create(DISCOUNT, actor="alice", code="GIVEAWAY1")
    assert c.id is not None and first is not None and first.id is not None
    codes.add(c.id, "GIVEAWAY2", actor="alice")

    def guard() -> tuple[int, int, int]:
        g = dashboard.metrics(24)["guard"]
        return g["paused_campaigns_total"], g["paused_codes_total"], g["paused_campaigns_recent"]

    assert guard() == (0, 0, 0)
    clock.advance(minutes=1)
    codes.set_status(first.id, CampaignStatus.PAUSED, actor="alice")
    assert guard() == (0, 1, 1)  # one code paused on its own; its campaign is active
    campaigns.set_status(c.id, CampaignStatus.PAUSED, actor="alice")
    assert guard() == (1, 1, 2)  # the campaign's pause does not make its other code a paused code
    clock.advance(hours=25)
    assert guard() == (1, 1, 0)  # still paused, but not recently
    codes.set_status(first.id, CampaignStatus.ACTIVE, actor="alice")
    assert guard() == (1, 0, 0)


@pytest.mark.parametrize("hours", [0, 721, -1, True, "24", 1.5, None])
def test_window_hours_outside_1_to_720_is_a_validation_error(dashboard: DashboardService, hours: object) -> None:
    with pytest.raises(ValidationError) as err:
        dashboard.metrics(hours)  # type: ignore[arg-type]
    assert err.value.errors == [{"field": "window_hours", "message": "must be an integer 1..720"}]
