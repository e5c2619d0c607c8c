"""``/internal/promo/campaigns``: create, list (filters, cursor), get, status transitions."""

from __future__ import annotations

from domain.codes import hmac_hash
from tests.conftest import PEPPER
from tests.unit.http.conftest import Api, assert_error

CAMPAIGNS = "/internal/promo/campaigns"
SECTION_3_COLUMNS = {"id", "campaign_name", "code_hash", "code_prefix", "promo_type", "grant_plan_code", "grant_days",
                     "discount_percent", "applicable_products", "target_scope", "status", "paused_reason",
                     "valid_from", "valid_until", "max_total_uses", "used_total", "created_at", "updated_at"}


def test_create_returns_201_with_the_section_3_columns_and_no_plaintext(api: Api) -> None:
    r = api.post(CAMPAIGNS, {"code": "Spring-2026-Ab", "campaign_name": "spring", "promo_type": "PERCENT_DISCOUNT",
                             "discount_percent": 15, "applicable_products": ["PREMIUM_30D"],
                             "target_scope": "FIRST_PURCHASE_ONLY", "valid_until": "2026-12-31T23:59:59+01:00",
                             "max_total_uses": 100})
    assert r.status_code == 201
    c = r.json
    assert set(c) == SECTION_3_COLUMNS
    assert c["code_hash"] == hmac_hash(PEPPER, "SPRING2026AB") and c["code_prefix"] == "SPRI"
    assert c["status"] == "ACTIVE" and c["used_total"] == 0 and c["paused_reason"] is None
    assert c["applicable_products"] == ["PREMIUM_30D"] and c["target_scope"] == "FIRST_PURCHASE_ONLY"
    assert c["valid_until"] == "2026-12-31T22:59:59Z"
    text = r.get_data(as_text=True).upper()
    assert "SPRING2026AB" not in text and "SPRING-2026-AB" not in text


def test_create_grant_campaign(api: Api) -> None:
    c = api.create_campaign("GIFT-30", promo_type="PREMIUM_GRANT", grant_plan_code="PREMIUM", grant_days=30)
    assert c["promo_type"] == "PREMIUM_GRANT" and c["grant_days"] == 30 and c["discount_percent"] is None


def test_same_code_twice_is_409_code_exists(api: Api) -> None:
    api.create_campaign("SPRING-20")
    r = api.post(CAMPAIGNS, {"code": "spring 20", "campaign_name": "again", "promo_type": "PERCENT_DISCOUNT",
                             "discount_percent": 10})
    assert_error(r, 409, "CODE_EXISTS")


def test_create_names_every_bad_field(api: Api) -> None:
    r = api.post(CAMPAIGNS, {"code": "x", "campaign_name": "", "promo_type": "PERCENT_DISCOUNT",
                             "discount_percent": 120, "grant_days": 3})
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert {d["field"] for d in err["details"]} == {"code", "campaign_name", "discount_percent", "grant_days"}


def test_create_refuses_wrong_types_and_unknown_fields(api: Api) -> None:
    r = api.post(CAMPAIGNS, {"code": "SPRING20", "campaign_name": "s", "promo_type": "FREE_STUFF",
                             "valid_from": "yesterday", "max_total_uses": "10", "colour": "red"})
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert {d["field"] for d in err["details"]} == {"promo_type", "valid_from", "max_total_uses", "colour"}


def test_create_refuses_naive_timestamps_and_huge_counters(api: Api) -> None:
    r = api.post(CAMPAIGNS, {"code": "SPRING20", "campaign_name": "s", "promo_type": "PERCENT_DISCOUNT",
                             "discount_percent": 5, "valid_until": "2026-12-31T00:00:00"})
    assert assert_error(r, 400, "VALIDATION_ERROR")["details"][0]["field"] == "valid_until"
    r = api.post(CAMPAIGNS, {"code": "SPRING20", "campaign_name": "s", "promo_type": "PERCENT_DISCOUNT",
                             "discount_percent": 5, "max_total_uses": 2**40})
    assert assert_error(r, 400, "VALIDATION_ERROR")["details"][0]["field"] == "max_total_uses"


def test_list_filters_by_status_type_and_name(api: Api) -> None:
    a = api.create_campaign("AAAA1111", campaign_name="Spring sale")
    b = api.create_campaign("BBBB2222", campaign_name="Winter gift", promo_type="PREMIUM_GRANT",
                            grant_plan_code="PREMIUM", grant_days=7)
    c = api.create_campaign("CCCC3333", campaign_name="spring partners")
    api.post(f"{CAMPAIGNS}/{c['id']}/status", {"status": "PAUSED"})

    def ids(query: str) -> list[int]:
        r = api.get(f"{CAMPAIGNS}{query}")
        assert r.status_code == 200 and set(r.json) == {"items", "next_cursor"}
        return [item["id"] for item in r.json["items"]]

    assert ids("") == [a["id"], b["id"], c["id"]]
    assert ids("?status=PAUSED") == [c["id"]]
    assert ids("?promo_type=PREMIUM_GRANT") == [b["id"]]
    assert ids("?campaign_name=SPRING") == [a["id"], c["id"]]
    assert ids("?campaign_name=spring&status=ACTIVE") == [a["id"]]


def test_list_pages_with_a_cursor(api: Api) -> None:
    created = [api.create_campaign(f"PAGE{i:04d}")["id"] for i in range(5)]
    seen: list[int] = []
    cursor = None
    for _ in range(3):
        r = api.get(CAMPAIGNS + "?limit=2" + (f"&cursor={cursor}" if cursor is not None else ""))
        assert r.status_code == 200
        seen += [item["id"] for item in r.json["items"]]
        cursor = r.json["next_cursor"]
    assert seen == created and cursor is None


def test_list_refuses_bad_query_parameters_one_entry_each(api: Api) -> None:
    r = api.get(CAMPAIGNS + "?limit=201&status=GONE&promo_type=x&cursor=-1")
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert {d["field"] for d in err["details"]} == {"limit", "status", "promo_type", "cursor"}
    assert_error(api.get(CAMPAIGNS + "?limit=0"), 400, "VALIDATION_ERROR")
    assert api.get(CAMPAIGNS + "?limit=200").status_code == 200


def test_get_one_campaign(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    r = api.get(f"{CAMPAIGNS}/{c['id']}")
    assert r.status_code == 200 and r.json == c


def test_get_unknown_campaign_is_404(api: Api) -> None:
    assert_error(api.get(f"{CAMPAIGNS}/999"), 404, "NOT_FOUND")
    assert_error(api.get(f"{CAMPAIGNS}/{10**30}"), 404, "NOT_FOUND")
    assert_error(api.get(f"{CAMPAIGNS}/abc"), 404, "NOT_FOUND")


def test_pause_and_resume(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    path = f"{CAMPAIGNS}/{c['id']}/status"
    r = api.post(path, {"status": "PAUSED", "reason": "typo in the ad"})
    assert r.status_code == 200 and r.json["status"] == "PAUSED" and r.json["paused_reason"] == "MANUAL"
    again = api.post(path, {"status": "PAUSED"})
    assert again.status_code == 200 and again.json == r.json
    r = api.post(path, {"status": "ACTIVE"})
    assert r.status_code == 200 and r.json["status"] == "ACTIVE" and r.json["paused_reason"] is None


def test_resume_of_a_used_up_campaign_is_409_invalid_transition(api: Api) -> None:
    c = api.create_campaign("SPRING-20", max_total_uses=1)
    assert api.redeem(1, "SPRING20", "k1").status_code == 200
    path = f"{CAMPAIGNS}/{c['id']}/status"
    assert api.post(path, {"status": "PAUSED"}).status_code == 200
    assert_error(api.post(path, {"status": "ACTIVE"}), 409, "INVALID_TRANSITION")


def test_status_of_unknown_campaign_is_404(api: Api) -> None:
    assert_error(api.post(f"{CAMPAIGNS}/999/status", {"status": "PAUSED"}), 404, "NOT_FOUND")


def test_status_must_be_active_or_paused(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    err = assert_error(api.post(f"{CAMPAIGNS}/{c['id']}/status", {"status": "EXPIRED"}), 400, "VALIDATION_ERROR")
    assert err["details"][0]["field"] == "status"
    err = assert_error(api.post(f"{CAMPAIGNS}/{c['id']}/status", {}), 400, "VALIDATION_ERROR")
    assert err["details"][0]["field"] == "status"
