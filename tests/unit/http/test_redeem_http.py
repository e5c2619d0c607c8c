"""``POST /internal/promo/redeem``: one test per SPEC 7 outcome and its HTTP status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from adapters.memory import ManualClock
from tests.conftest import T0
from tests.unit.http.conftest import Answer, Api, assert_error

REDEMPTION_FIELDS = {"id", "promo_code_id", "campaign_id", "user_id", "promo_type", "status", "discount_percent",
                     "discount_stars", "reserved_until", "grant_plan_code", "grant_days", "created_at"}


def rejected(response: Answer, status: int, result: str) -> dict[str, Any]:
    """A refused redeem: ``{"result", "error"}`` with the result as the error code."""
    assert response.status_code == status, response.json
    body = dict(response.json)
    assert set(body) == {"result", "error"}
    assert body["result"] == result and body["error"]["code"] == result and body["error"]["message"]
    return body


def test_discount_code_is_accepted_with_a_reservation(api: Api) -> None:
    campaign = api.create_campaign("SPRING-20", discount_percent=20)
    r = api.redeem(42, "spring 20", "order-1")
    assert r.status_code == 200
    body = r.json
    assert body["result"] == "ACCEPTED" and body["replayed"] is False
    red = body["redemption"]
    assert set(red) == REDEMPTION_FIELDS
    assert red["promo_code_id"] == campaign["code"]["id"] and red["campaign_id"] == campaign["id"]
    assert red["user_id"] == 42 and red["promo_type"] == "PERCENT_DISCOUNT" and red["status"] == "RESERVED"
    assert red["discount_percent"] == 20 and red["discount_stars"] is None
    assert red["grant_plan_code"] is None and red["grant_days"] is None
    assert red["reserved_until"] == (T0 + timedelta(minutes=15)).isoformat().replace("+00:00", "Z")
    assert red["created_at"] == T0.isoformat().replace("+00:00", "Z")


def test_stars_discount_code_reserves_its_stars(api: Api) -> None:
    api.create_campaign("STARS-50", promo_type="STARS_DISCOUNT", discount_stars=50)
    red = api.redeem(42, "STARS50", "k1").json["redemption"]
    assert red["promo_type"] == "STARS_DISCOUNT" and red["status"] == "RESERVED"
    assert red["discount_stars"] == 50 and red["discount_percent"] is None


def test_grant_code_is_accepted_and_applied(api: Api) -> None:
    api.create_campaign("GIFT-30-DAYS", promo_type="PREMIUM_GRANT", grant_plan_code="PREMIUM", grant_days=30)
    r = api.redeem(7, "GIFT30DAYS", "gift-1")
    assert r.status_code == 200
    red = r.json["redemption"]
    assert red["status"] == "APPLIED" and red["promo_type"] == "PREMIUM_GRANT"
    assert red["grant_plan_code"] == "PREMIUM" and red["grant_days"] == 30
    assert red["discount_percent"] is None and red["reserved_until"] is None


def test_second_redeem_with_same_key_returns_the_first_redemption(api: Api) -> None:
    api.create_campaign("SPRING-20")
    first = api.redeem(42, "SPRING20", "order-1").json
    again = api.redeem(42, "SPRING20", "order-1")
    assert again.status_code == 200
    assert again.json["replayed"] is True
    assert again.json["redemption"] == first["redemption"]


def test_unknown_code_is_invalid_404(api: Api) -> None:
    rejected(api.redeem(42, "NOSUCHCODE", "k1"), 404, "INVALID")


def test_malformed_code_is_invalid_404(api: Api) -> None:
    rejected(api.redeem(42, "a!", "k1"), 404, "INVALID")
    rejected(api.redeem(43, "x" * 300, "k2"), 404, "INVALID")


def test_paused_campaign_is_422(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    assert api.post(f"/internal/promo/campaigns/{c['id']}/status", {"status": "PAUSED"}).status_code == 200
    rejected(api.redeem(42, "SPRING20", "k1"), 422, "PAUSED")


def test_paused_code_is_422(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    assert api.post(f"/internal/promo/codes/{c['code']['id']}/status", {"status": "PAUSED"}).status_code == 200
    rejected(api.redeem(42, "SPRING20", "k1"), 422, "PAUSED")


def test_expired_campaign_is_422(api: Api, clock: ManualClock) -> None:
    api.create_campaign("SPRING-20", valid_until=(T0 + timedelta(days=1)).isoformat())
    clock.advance(days=2)
    rejected(api.redeem(42, "SPRING20", "k1"), 422, "EXPIRED")


def test_not_yet_valid_campaign_is_not_applicable_422(api: Api) -> None:
    api.create_campaign("SPRING-20", valid_from=(T0 + timedelta(days=1)).isoformat())
    rejected(api.redeem(42, "SPRING20", "k1"), 422, "NOT_APPLICABLE")


def test_used_up_campaign_is_depleted_422(api: Api) -> None:
    api.create_campaign("SPRING-20", max_total_uses=1)
    assert api.redeem(1, "SPRING20", "k1").status_code == 200
    rejected(api.redeem(2, "SPRING20", "k2"), 422, "DEPLETED")


def test_used_up_code_of_a_campaign_with_budget_left_is_depleted_422(api: Api) -> None:
    api.create_campaign("ONCE-ONLY", max_total_uses=100, code_max_total_uses=1)
    assert api.redeem(1, "ONCEONLY", "k1").status_code == 200
    rejected(api.redeem(2, "ONCEONLY", "k2"), 422, "DEPLETED")


def test_a_user_at_the_per_user_limit_of_the_campaign_is_already_used_409(api: Api) -> None:
    c = api.create_campaign("CODE-ONE1", per_user_limit=1)
    assert api.post(f"/internal/promo/campaigns/{c['id']}/codes", {"code": "CODE-TWO2"}).status_code == 201
    assert api.redeem(42, "CODE-ONE1", "k1").status_code == 200
    rejected(api.redeem(42, "CODE-TWO2", "k2"), 409, "ALREADY_USED")


def test_same_user_same_campaign_is_already_used_409(api: Api) -> None:
    api.create_campaign("SPRING-20")
    assert api.redeem(42, "SPRING20", "k1").status_code == 200
    rejected(api.redeem(42, "SPRING20", "k2"), 409, "ALREADY_USED")


def test_key_reused_for_another_code_is_409(api: Api) -> None:
    api.create_campaign("SPRING-20")
    api.create_campaign("SUMMER-30", discount_percent=30)
    assert api.redeem(42, "SPRING20", "k1").status_code == 200
    rejected(api.redeem(42, "SUMMER30", "k1"), 409, "IDEMPOTENCY_KEY_REUSED")
    rejected(api.redeem(43, "SPRING20", "k1"), 409, "IDEMPOTENCY_KEY_REUSED")


def test_too_many_failures_is_429_with_retry_after(api: Api, clock: ManualClock) -> None:
    for i in range(5):
        rejected(api.redeem(42, f"WRONG{i}CODE", f"k{i}"), 404, "INVALID")
    clock.advance(minutes=10)
    r = api.redeem(42, "ANYCODE1", "k-last")
    body = rejected(r, 429, "RATE_LIMITED")
    # Blocked for 60 minutes after the latest failure, 10 of which have passed.
    assert r.headers["Retry-After"] == str(50 * 60)
    assert body["error"]["details"] == {"retry_after_seconds": 3000}
    # Other users are not affected.
    rejected(api.redeem(43, "ANYCODE1", "k-other"), 404, "INVALID")


def test_redeem_needs_every_field(api: Api) -> None:
    err = assert_error(api.post("/internal/promo/redeem", {"code": "SPRING20"}), 400, "VALIDATION_ERROR")
    assert sorted(d["field"] for d in err["details"]) == ["idempotency_key", "user_id"]


def test_a_missing_field_and_a_bad_value_are_both_reported(api: Api) -> None:
    err = assert_error(api.post("/internal/promo/redeem", {"user_id": -1, "code": "SPRING20"}), 400,
                       "VALIDATION_ERROR")
    assert {d["field"]: d["message"] for d in err["details"]} == {
        "idempotency_key": "required field missing",
        "user_id": "must be a positive 64-bit integer",
    }
    err = assert_error(api.post("/internal/promo/redeem", {"user_id": "x", "code": "A", "idempotency_key": "a b"}),
                       400, "VALIDATION_ERROR")
    assert sorted(d["field"] for d in err["details"]) == ["idempotency_key", "user_id"]
