"""SPEC 7: one campaign's metrics (``GET /internal/promo/campaigns/{id}/stats``) and what support sees about one
user (``GET /internal/users/{user_id}``), on the in-memory adapters driven through the real services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest

from adapters.memory import InMemoryPaymentGateway, InMemoryUnitOfWorkFactory, ManualClock
from domain.campaigns import CampaignService, CampaignSpec
from domain.checkout import CheckoutService
from domain.codes import CodeHasher
from domain.errors import NotFound, ValidationError
from domain.maintenance import MaintenanceService
from domain.model import Campaign, CampaignStatus, LedgerSource, PromoType, PurchaseStatus, RedeemResult, Redemption
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService
from domain.reports import ReportService
from tests.conftest import T0

ACTOR = "alice"
ZERO_ATTEMPTS = {r: 0 for r in ("ACCEPTED", "INVALID", "PAUSED", "EXPIRED", "NOT_APPLICABLE", "DEPLETED",
                                "ALREADY_USED", "RATE_LIMITED")}
ZERO_REDEMPTIONS = {"RESERVED": 0, "APPLIED": 0, "EXPIRED": 0, "REVOKED": 0}


@attrs.define
class Shop:
    """The services of one in-memory shop, sharing a store and a clock."""

    uow_factory: InMemoryUnitOfWorkFactory
    clock: ManualClock
    campaigns: CampaignService
    codes: CodeService
    redemptions: RedemptionService
    checkout: CheckoutService
    jobs: MaintenanceService
    reports: ReportService

    def campaign(self, spec: CampaignSpec, *plaintexts: str) -> Campaign:
        first, *more = plaintexts
        created, _ = self.campaigns.create(spec, actor=ACTOR, code=first)
        assert created.id is not None
        for plaintext in more:
            self.codes.add(created.id, plaintext, actor=ACTOR)
        return created

    def reserve(self, user: int, code: str, key: str) -> Redemption:
        outcome = self.redemptions.redeem(user, code, key)
        assert outcome.accepted and outcome.redemption is not None, outcome.result
        return outcome.redemption

    def buy(self, r: Redemption, product: str) -> int:
        """Checkout with the reservation, invoice, pre-checkout and payment; the purchase id."""
        assert r.id is not None
        p = self.checkout.init(r.user_id, product, r.id)
        assert p.id is not None
        self.checkout.mark_invoice_sent(p.id)
        assert self.checkout.precheckout(p.id, p.final_stars_amount).ok
        self.checkout.successful_payment(p.id, f"charge-{p.id}", p.final_stars_amount)
        return p.id

    def result(self, user: int, code: str, key: str) -> RedeemResult:
        return self.redemptions.redeem(user, code, key).result


@pytest.fixture
def shop(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher, policy: PromoPolicy,
         campaigns: CampaignService, redemptions: RedemptionService) -> Shop:
    return Shop(uow_factory, clock, campaigns, CodeService(uow_factory, clock, hasher), redemptions,
                CheckoutService(uow_factory, clock, policy=policy), MaintenanceService(uow_factory, clock, policy),
                ReportService(uow_factory, clock, policy))


STARS = CampaignSpec(name="stars", promo_type=PromoType.STARS_DISCOUNT, discount_stars=100)
OTHER = CampaignSpec(name="other", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=20)
GIFT = CampaignSpec(name="gift", promo_type=PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM", grant_days=30)


@attrs.frozen
class History:
    stars: Campaign
    other: Campaign
    gift: Campaign


@pytest.fixture
def history(shop: Shop) -> History:
    """12:00-12:05: a 100-Star campaign with two codes is used, paid, refused, paused; another campaign and a
    grant campaign are used alongside. 13:05: one more reservation. 13:10 (now): expiry, a refund rolled back."""
    stars = shop.campaign(STARS, "STARS100A", "STARS100B")
    other = shop.campaign(OTHER, "OTHER20X")
    gift = shop.campaign(GIFT, "GIFT30DAYS")
    first = shop.reserve(1, "STARS100A", "a1")
    shop.clock.advance(minutes=1)
    shop.buy(first, "PREMIUM_7D")  # 50 Stars, 49 off: 1 Star
    second = shop.reserve(2, "STARS100B", "b2")
    refunded = shop.buy(second, "PREMIUM_30D")  # 150 Stars, 100 off: 50 Stars
    shop.reserve(3, "STARS100A", "a3")  # will expire
    shop.clock.advance(minutes=1)
    assert shop.result(1, "STARS100B", "b1") is RedeemResult.ALREADY_USED  # one per user across the campaign
    assert shop.result(5, "STARS100Z", "z5") is RedeemResult.INVALID  # no code: no campaign's attempt
    shop.reserve(4, "OTHER20X", "o4")
    shop.reserve(7, "GIFT30DAYS", "g7")
    shop.reserve(8, "GIFT30DAYS", "g8")
    code_b = shop.codes.lookup("STARS100B").code
    assert code_b.id is not None
    shop.codes.set_status(code_b.id, CampaignStatus.PAUSED, actor=ACTOR)
    assert shop.result(6, "STARS100B", "b6") is RedeemResult.PAUSED
    shop.clock.advance(minutes=63)  # 13:05
    shop.reserve(9, "STARS100A", "a9")
    shop.clock.advance(minutes=5)  # 13:10
    shop.jobs.expire_reservations()
    shop.checkout.refund(refunded, InMemoryPaymentGateway(), actor=ACTOR)
    shop.jobs.rollback_refunded_promos()
    return History(stars, other, gift)


def series(**busy: dict[str, int]) -> list[dict[str, Any]]:
    """The expected 24 h series at 13:10: the hours 13:00 yesterday to 13:00 today, zeros except ``busy``
    (keyed ``h12`` and ``h13`` for today's hours)."""
    out = []
    for back in range(24, -1, -1):
        hour = T0 + timedelta(hours=1 - back)
        entry = {"hour": hour.strftime("%Y-%m-%dT%H:00:00Z"), "attempts": 0, "accepted": 0, "applied": 0,
                 "stars_revenue": 0}
        if hour.date() == T0.date():
            entry.update(busy.get(f"h{hour.hour}", {}))
        out.append(entry)
    return out


# --- campaign stats -------------------------------------------------------------------------------------


def test_campaign_stats_count_only_what_happened_on_the_campaigns_own_codes(shop: Shop, history: History) -> None:
    assert history.stars.id is not None
    assert shop.reports.campaign_stats(history.stars.id) == {
        "campaign_id": history.stars.id,
        "window": {"from": "2026-02-28T13:10:00Z", "to": "2026-03-01T13:10:00Z", "hours": 24},
        # the INVALID guess and the other campaigns' attempts are not this campaign's
        "attempts_by_result": ZERO_ATTEMPTS | {"ACCEPTED": 4, "ALREADY_USED": 1, "PAUSED": 1},
        "redemptions_by_status": {"RESERVED": 1, "APPLIED": 1, "EXPIRED": 1, "REVOKED": 1},
        "purchases_paid": 2,  # paid in the window; one was refunded later, it was paid all the same
        "stars_revenue": 51,  # 1 + 50: the final Stars paid
        "discount_stars_given": 149,  # 49 (capped at base - 1) + 100
        "grant_days_given": 0,
        "series": series(h12={"attempts": 5, "accepted": 3, "applied": 2, "stars_revenue": 51},
                         h13={"attempts": 1, "accepted": 1}),
    }


def test_campaign_stats_of_a_grant_campaign_count_the_days_it_gave(shop: Shop, history: History) -> None:
    assert history.gift.id is not None
    stats = shop.reports.campaign_stats(history.gift.id)
    assert stats["attempts_by_result"] == ZERO_ATTEMPTS | {"ACCEPTED": 2}
    assert stats["redemptions_by_status"] == ZERO_REDEMPTIONS | {"APPLIED": 2}
    assert (stats["purchases_paid"], stats["stars_revenue"], stats["discount_stars_given"],
            stats["grant_days_given"]) == (0, 0, 0, 60)
    assert stats["series"] == series(h12={"attempts": 2, "accepted": 2, "applied": 2})


def test_campaign_stats_of_an_unpaid_reservation_show_it_expired(shop: Shop, history: History) -> None:
    assert history.other.id is not None
    stats = shop.reports.campaign_stats(history.other.id)
    assert stats["attempts_by_result"] == ZERO_ATTEMPTS | {"ACCEPTED": 1}
    assert stats["redemptions_by_status"] == ZERO_REDEMPTIONS | {"EXPIRED": 1}
    assert (stats["purchases_paid"], stats["stars_revenue"], stats["discount_stars_given"]) == (0, 0, 0)


def test_campaign_stats_of_the_last_hour_leave_out_what_came_before(shop: Shop, history: History) -> None:
    assert history.stars.id is not None
    stats = shop.reports.campaign_stats(history.stars.id, window_hours=1)
    assert stats["window"] == {"from": "2026-03-01T12:10:00Z", "to": "2026-03-01T13:10:00Z", "hours": 1}
    assert stats["attempts_by_result"] == ZERO_ATTEMPTS | {"ACCEPTED": 1}
    assert stats["redemptions_by_status"] == ZERO_REDEMPTIONS | {"RESERVED": 1}
    assert (stats["purchases_paid"], stats["stars_revenue"], stats["discount_stars_given"]) == (0, 0, 0)
    assert [(e["hour"], e["attempts"], e["stars_revenue"]) for e in stats["series"]] == [
        ("2026-03-01T12:00:00Z", 0, 0), ("2026-03-01T13:00:00Z", 1, 0)]


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize("hours", [1, 2, 24, 720])
def test_campaign_series_add_up_to_the_campaigns_figures(shop: Shop, hours: int) -> None:
    for campaign_id in shop.uow_factory.store.campaigns:
        stats = shop.reports.campaign_stats(campaign_id, hours)
        assert len(stats["series"]) == hours + 1
        assert sum(e["attempts"] for e in stats["series"]) == sum(stats["attempts_by_result"].values())
        assert sum(e["accepted"] for e in stats["series"]) == stats["attempts_by_result"]["ACCEPTED"]
        assert sum(e["stars_revenue"] for e in stats["series"]) == stats["stars_revenue"]


def test_a_new_campaign_has_zero_stats_and_a_missing_one_is_not_found(shop: Shop) -> None:
    c = shop.campaign(OTHER, "NEWCODE1")
    assert c.id is not None
    stats = shop.reports.campaign_stats(c.id, 3)
    assert stats["attempts_by_result"] == ZERO_ATTEMPTS and stats["redemptions_by_status"] == ZERO_REDEMPTIONS
    assert (stats["purchases_paid"], stats["stars_revenue"], stats["discount_stars_given"],
            stats["grant_days_given"]) == (0, 0, 0, 0)
    assert len(stats["series"]) == 4 and not any(e["attempts"] for e in stats["series"])
    with pytest.raises(NotFound):
        shop.reports.campaign_stats(c.id + 100)


@pytest.mark.parametrize("hours", [0, 721, True, "24"])
def test_campaign_stats_window_outside_1_to_720_hours_names_the_field(shop: Shop, hours: object) -> None:
    c = shop.campaign(OTHER, "NEWCODE1")
    assert c.id is not None
    with pytest.raises(ValidationError) as err:
        shop.reports.campaign_stats(c.id, hours)  # type: ignore[arg-type]
    assert err.value.errors[0]["field"] == "window_hours"


# --- user view --------------------------------------------------------------------------------------------


USER = 4711


def test_the_user_view_shows_redemptions_with_code_prefix_and_campaign_purchases_entitlement_and_attempts(
    shop: Shop,
) -> None:
    stars = shop.campaign(STARS, "STARS100A")
    gift = shop.campaign(GIFT, "GIFT30DAYS")
    shop.reserve(USER, "GIFT30DAYS", "g")
    shop.clock.advance(minutes=1)
    bought = shop.buy(shop.reserve(USER, "STARS100A", "s"), "PREMIUM_7D")
    shop.clock.advance(minutes=1)
    shop.reserve(USER + 1, "STARS100A", "someone-else")  # not this user's

    view = shop.reports.user(USER)

    assert view.user_id == USER
    assert [(u.redemption.status.value, u.code.code_prefix if u.code else None,
             u.campaign.name if u.campaign else None) for u in view.redemptions] == [
        ("APPLIED", "STAR", "stars"), ("APPLIED", "GIFT", "gift")]  # newest first
    assert [u.redemption.campaign_id for u in view.redemptions] == [stars.id, gift.id]
    assert [(p.id, p.status, p.final_stars_amount, p.discount_stars_amount) for p in view.purchases] == [
        (bought, PurchaseStatus.PAID, 1, 49)]
    assert view.entitlement is not None and view.entitlement.plan_code == "PREMIUM"
    assert view.entitlement.expires_at == T0 + timedelta(days=37)  # 30 granted, then 7 bought on top
    assert [(e.source, e.days) for e in view.ledger] == [(LedgerSource.PURCHASE, 7), (LedgerSource.PROMO_GRANT, 30)]
    assert [a.result for a in view.attempts] == [RedeemResult.ACCEPTED, RedeemResult.ACCEPTED]
    assert (view.failures_in_window, view.blocked_until) == (0, None)
    assert "STARS100A" not in repr(view) and "GIFT30DAYS" not in repr(view)  # hashes and prefixes only


def test_the_user_view_shows_when_a_throttled_user_may_try_again(shop: Shop) -> None:
    shop.campaign(STARS, "STARS100A")
    for i in range(5):
        assert shop.result(USER, f"WRONG{i}00", f"w{i}") is RedeemResult.INVALID
        shop.clock.advance(minutes=2)
    last_failure = shop.clock.now() - timedelta(minutes=2)
    assert shop.result(USER, "STARS100A", "blocked") is RedeemResult.RATE_LIMITED

    view = shop.reports.user(USER)

    assert (view.failures_in_window, view.blocked_until) == (5, last_failure + timedelta(minutes=60))
    assert [a.result for a in view.attempts] == [RedeemResult.RATE_LIMITED] + [RedeemResult.INVALID] * 5
    assert [a.code_prefix for a in view.attempts][1:] == ["WRON"] * 5
    assert view.redemptions == [] and view.purchases == [] and view.entitlement is None and view.ledger == []
    shop.clock.advance(minutes=59)
    assert shop.reports.user(USER).blocked_until is None  # the block is over; the failures still count
    assert shop.reports.user(USER).failures_in_window == 5
    shop.clock.advance(hours=24)
    assert shop.reports.user(USER).failures_in_window == 0


def test_an_unknown_user_has_an_empty_view(shop: Shop) -> None:
    view = shop.reports.user(123)
    assert (view.redemptions, view.purchases, view.entitlement, view.ledger, view.attempts) == ([], [], None, [], [])
    assert (view.failures_in_window, view.blocked_until) == (0, None)


@pytest.mark.parametrize("user_id", [0, -1, True, 2**63, "5"])
def test_a_bad_user_id_names_the_field(shop: Shop, user_id: object) -> None:
    with pytest.raises(ValidationError) as err:
        shop.reports.user(user_id)  # type: ignore[arg-type]
    assert err.value.errors[0]["field"] == "user_id"
