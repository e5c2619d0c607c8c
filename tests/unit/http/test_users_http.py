"""``GET /internal/users/{user_id}``: redemptions (with code prefix and campaign), purchases, entitlements, recent
attempts and throttling state of one Telegram user."""

from __future__ import annotations

from datetime import timedelta

from adapters.memory import ManualClock
from entrypoints.container import Container
from tests.conftest import T0
from tests.unit.http.conftest import Api, assert_error

USERS = "/internal/users"


def test_a_user_never_seen_has_empty_lists_and_is_not_throttled(api: Api) -> None:
    r = api.get(f"{USERS}/42")
    assert r.status_code == 200
    assert r.json == {
        "user_id": 42, "redemptions": [], "purchases": [], "entitlements": [], "entitlement_ledger": [],
        "attempts": [],
        "throttling": {"blocked": False, "blocked_until": None, "failures_in_window": 0, "fail_limit": 5,
                       "window_hours": 24},
    }


def test_the_user_view_shows_redemptions_with_code_prefix_and_campaign(api: Api, container: Container) -> None:
    discount = api.create_campaign("SPRING-20", name="spring")
    api.create_campaign("GIFT-0030", name="gift", promo_type="PREMIUM_GRANT", grant_plan_code="PREMIUM",
                        grant_days=30)
    reserved = api.redeem(42, "SPRING20", "k1").json["redemption"]
    assert api.redeem(42, "GIFT0030", "k2").status_code == 200
    purchase = container.checkout_service().init(42, "PREMIUM_30D", reserved["id"])
    view = api.get(f"{USERS}/42").json
    assert [(r["code_prefix"], r["campaign_name"], r["status"]) for r in view["redemptions"]] == [
        ("GIFT", "gift", "APPLIED"), ("SPRI", "spring", "RESERVED")]
    spring = view["redemptions"][1]
    assert spring["campaign_id"] == discount["id"] and spring["discount_percent"] == 20
    assert spring["purchase_id"] == purchase.id
    assert [p["id"] for p in view["purchases"]] == [purchase.id]
    assert view["purchases"][0]["discount_stars_amount"] == 30
    assert view["entitlements"][0]["plan_code"] == "PREMIUM" and view["entitlements"][0]["active"] is True
    assert [e["source"] for e in view["entitlement_ledger"]] == ["PROMO_GRANT"]
    assert [a["result"] for a in view["attempts"]] == ["ACCEPTED", "ACCEPTED"]
    assert "SPRING20" not in api.get(f"{USERS}/42").get_data(as_text=True)


def test_the_user_view_shows_the_block_and_when_it_ends(api: Api, clock: ManualClock) -> None:
    for i in range(5):
        assert api.redeem(7, f"WRONG{i}CODE", f"k{i}").status_code == 404
    clock.advance(minutes=10)
    view = api.get(f"{USERS}/7").json
    assert view["throttling"]["blocked"] is True and view["throttling"]["failures_in_window"] == 5
    # Blocked for 60 minutes after the latest failure (at T0).
    ends = T0 + timedelta(minutes=60)
    assert view["throttling"]["blocked_until"] == ends.isoformat().replace("+00:00", "Z")
    assert [a["result"] for a in view["attempts"]] == ["INVALID"] * 5
    assert all(a["code_prefix"] == "WRON" and a["campaign_id"] is None for a in view["attempts"])


def test_a_user_id_that_is_not_a_positive_64_bit_integer_is_400_or_404(api: Api) -> None:
    err = assert_error(api.get(f"{USERS}/0"), 400, "VALIDATION_ERROR")
    assert [d["field"] for d in err["details"]] == ["user_id"]
    assert_error(api.get(f"{USERS}/{2**63}"), 400, "VALIDATION_ERROR")
    assert_error(api.get(f"{USERS}/-1"), 404, "NOT_FOUND")
    assert_error(api.get(f"{USERS}/abc"), 404, "NOT_FOUND")
