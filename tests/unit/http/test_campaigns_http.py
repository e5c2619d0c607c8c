"""``/internal/promo/campaigns``: create (with or without a chosen code), list, read, change, pause/resume, stats."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from adapters.memory import ManualClock
from domain.codes import hmac_hash
from entrypoints.container import Container
from tests.conftest import PEPPER, T0
from tests.unit.http.conftest import Api, assert_error

CAMPAIGNS = "/internal/promo/campaigns"
CAMPAIGN_FIELDS = {"id", "name", "promo_type", "grant_plan_code", "grant_days", "discount_percent", "discount_stars",
                   "applicable_products", "target_scope", "status", "paused_reason", "valid_from", "valid_until",
                   "max_total_uses", "per_user_limit", "used_total", "created_at", "updated_at", "codes_total",
                   "codes_by_status"}
CODE_FIELDS = {"id", "campaign_id", "code_hash", "code_prefix", "status", "paused_reason", "max_total_uses",
               "used_total", "created_at", "updated_at", "campaign_name", "promo_type", "target_scope", "valid_from",
               "valid_until"}
NO_CODES = {"ACTIVE": 0, "PAUSED": 0, "EXPIRED": 0, "DEPLETED": 0}


def iso(days: float) -> str:
    return (T0 + timedelta(days=days)).isoformat().replace("+00:00", "Z")


def counts(container: Container) -> tuple[int, int, int]:
    """Campaigns, codes and audit entries stored."""
    store = container.memory_store()
    return len(store.campaigns), len(store.codes), len(store.audit)


def audit_rows(api: Api, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    r = api.get(f"/internal/promo/audit?{query}")
    assert r.status_code == 200, r.json
    return list(r.json["items"])


# --- POST /internal/promo/campaigns -------------------------------------------------------------------------------


def test_create_without_a_code_answers_201_with_the_campaign_columns_and_code_null(api: Api) -> None:
    r = api.post(CAMPAIGNS, {"name": "giveaway", "promo_type": "STARS_DISCOUNT", "discount_stars": 40,
                             "applicable_products": ["PREMIUM_30D"], "target_scope": "FIRST_PURCHASE_ONLY",
                             "valid_until": "2026-12-31T23:59:59+01:00", "max_total_uses": 10_000,
                             "per_user_limit": 2})
    assert r.status_code == 201, r.json
    c = r.json
    assert set(c) == CAMPAIGN_FIELDS | {"code"} and c["code"] is None
    assert c["name"] == "giveaway" and c["promo_type"] == "STARS_DISCOUNT" and c["discount_stars"] == 40
    assert c["status"] == "ACTIVE" and c["used_total"] == 0 and c["paused_reason"] is None
    assert c["max_total_uses"] == 10_000 and c["per_user_limit"] == 2
    assert c["applicable_products"] == ["PREMIUM_30D"] and c["target_scope"] == "FIRST_PURCHASE_ONLY"
    assert c["valid_until"] == "2026-12-31T22:59:59Z" and c["valid_from"] == iso(0)
    assert c["codes_total"] == 0 and c["codes_by_status"] == NO_CODES


def test_create_with_a_code_answers_the_code_row_with_its_hash_and_never_the_plaintext(api: Api) -> None:
    r = api.post(CAMPAIGNS, {"name": "influencer anna", "promo_type": "PERCENT_DISCOUNT", "discount_percent": 15,
                             "code": "Anna-2026-Ab", "code_max_total_uses": 500})
    assert r.status_code == 201, r.json
    c = r.json
    assert c["codes_total"] == 1 and c["codes_by_status"] == {**NO_CODES, "ACTIVE": 1}
    code = c["code"]
    assert set(code) == CODE_FIELDS
    assert code["campaign_id"] == c["id"] and code["campaign_name"] == "influencer anna"
    assert code["code_hash"] == hmac_hash(PEPPER, "ANNA2026AB") and code["code_prefix"] == "ANNA"
    assert code["max_total_uses"] == 500 and code["status"] == "ACTIVE"
    text = r.get_data(as_text=True).upper()
    assert "ANNA2026AB" not in text and "ANNA-2026-AB" not in text


def test_create_is_one_audit_entry_by_api_and_one_for_its_code(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    rows = audit_rows(api)
    assert [(e["action"], e["target_type"], e["actor"]) for e in rows] == [
        ("code.created", "promo_code", "api"), ("campaign.created", "campaign", "api")]
    assert rows[1]["target_id"] == str(c["id"]) and rows[0]["target_id"] == str(c["code"]["id"])


def test_a_taken_name_is_409_campaign_exists_and_nothing_is_created(api: Api, container: Container) -> None:
    api.create_campaign("SPRING-20", name="spring")
    before = counts(container)
    err = assert_error(api.post(CAMPAIGNS, {"name": "spring", "promo_type": "PERCENT_DISCOUNT",
                                            "discount_percent": 10, "code": "OTHER-CODE"}), 409, "CAMPAIGN_EXISTS")
    assert err["details"] == {"field": "name"}
    assert counts(container) == before


def test_a_stored_code_is_409_code_exists_and_no_campaign_is_created(api: Api, container: Container) -> None:
    api.create_campaign("SPRING-20")
    before = counts(container)
    err = assert_error(api.post(CAMPAIGNS, {"name": "again", "promo_type": "PERCENT_DISCOUNT",
                                            "discount_percent": 10, "code": "spring 20"}), 409, "CODE_EXISTS")
    assert err["details"] == {"field": "code"}
    assert counts(container) == before
    assert api.get(f"{CAMPAIGNS}?name=again").json["items"] == []


def test_create_names_every_bad_field_in_one_answer(api: Api) -> None:
    r = api.post(CAMPAIGNS, {"code": "x", "name": "", "promo_type": "PERCENT_DISCOUNT", "discount_percent": 120,
                             "grant_days": 3, "per_user_limit": 0})
    err = assert_error(r, 400, "VALIDATION_ERROR")
    fields = [d["field"] for d in err["details"]]
    assert sorted(fields) == ["code", "discount_percent", "grant_days", "name", "per_user_limit"]


def test_create_refuses_wrong_types_and_unknown_fields_one_entry_each(api: Api) -> None:
    r = api.post(CAMPAIGNS, {"name": "s", "promo_type": "FREE_STUFF", "valid_from": "yesterday",
                             "max_total_uses": "10", "colour": "red", "code_max_total_uses": 0})
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert {d["field"] for d in err["details"]} == {"promo_type", "valid_from", "max_total_uses", "colour",
                                                    "code_max_total_uses"}


def test_create_refuses_terms_that_do_not_fit_the_type(api: Api) -> None:
    err = assert_error(api.post(CAMPAIGNS, {"name": "s", "promo_type": "STARS_DISCOUNT", "discount_percent": 5}),
                       400, "VALIDATION_ERROR")
    assert {d["field"] for d in err["details"]} == {"discount_percent", "discount_stars"}


def test_create_refuses_naive_timestamps_huge_counters_and_a_past_end(api: Api) -> None:
    base = {"name": "s", "promo_type": "PERCENT_DISCOUNT", "discount_percent": 5}
    for extra, field in (({"valid_until": "2026-12-31T00:00:00"}, "valid_until"),
                         ({"max_total_uses": 2**40}, "max_total_uses"),
                         ({"valid_until": iso(-1)}, "valid_until"),
                         ({"applicable_products": ["PREMIUM_30D", "PREMIUM_30D"]}, "applicable_products")):
        err = assert_error(api.post(CAMPAIGNS, {**base, **extra}), 400, "VALIDATION_ERROR")
        assert [d["field"] for d in err["details"]] == [field], extra


def test_create_refuses_an_unknown_product(api: Api) -> None:
    err = assert_error(api.post(CAMPAIGNS, {"name": "s", "promo_type": "PERCENT_DISCOUNT", "discount_percent": 5,
                                            "applicable_products": ["PREMIUM_1000D"]}), 400, "VALIDATION_ERROR")
    assert err["details"][0]["field"] == "applicable_products"


# --- GET /internal/promo/campaigns -------------------------------------------------------------------------------


def ids(api: Api, query: str = "") -> list[int]:
    r = api.get(f"{CAMPAIGNS}{query}")
    assert r.status_code == 200 and set(r.json) == {"items", "next_cursor"}, r.json
    return [item["id"] for item in r.json["items"]]


def test_list_is_newest_first_and_filters_by_status_type_and_name_substring(api: Api) -> None:
    a = api.create_campaign("AAAA1111", name="Spring sale")["id"]
    b = api.create_campaign("BBBB2222", name="Winter gift", promo_type="PREMIUM_GRANT", grant_plan_code="PREMIUM",
                            grant_days=7)["id"]
    c = api.create_campaign("CCCC3333", name="spring partners")["id"]
    api.post(f"{CAMPAIGNS}/{c}/status", {"status": "PAUSED"})
    assert ids(api) == [c, b, a]
    assert ids(api, "?status=PAUSED") == [c]
    assert ids(api, "?promo_type=PREMIUM_GRANT") == [b]
    assert ids(api, "?name=SPRING") == [c, a]
    assert ids(api, "?name=spring&status=ACTIVE") == [a]
    assert ids(api, "?name=") == [c, b, a]


def test_list_items_carry_their_code_counts(api: Api) -> None:
    api.create_campaign("AAAA1111")
    api.create_campaign()
    items = api.get(CAMPAIGNS).json["items"]
    assert [(i["codes_total"], i["codes_by_status"]["ACTIVE"]) for i in items] == [(0, 0), (1, 1)]
    assert all(set(i) == CAMPAIGN_FIELDS for i in items)


def test_list_pages_with_the_cursor_until_next_cursor_is_null(api: Api) -> None:
    created = [api.create_campaign(name=f"page {i}")["id"] for i in range(5)]
    seen: list[int] = []
    cursor = None
    for _ in range(3):
        r = api.get(CAMPAIGNS + "?limit=2" + (f"&cursor={cursor}" if cursor is not None else ""))
        assert r.status_code == 200
        seen += [item["id"] for item in r.json["items"]]
        cursor = r.json["next_cursor"]
    assert seen == created[::-1] and cursor is None


def test_list_names_each_bad_query_parameter(api: Api) -> None:
    err = assert_error(api.get(CAMPAIGNS + "?limit=201&status=GONE&promo_type=x&cursor=-1&name=" + "n" * 201),
                       400, "VALIDATION_ERROR")
    assert sorted(d["field"] for d in err["details"]) == ["cursor", "limit", "name", "promo_type", "status"]
    assert_error(api.get(CAMPAIGNS + "?limit=0"), 400, "VALIDATION_ERROR")
    assert_error(api.get(CAMPAIGNS + "?cursor=99999999999999999999"), 400, "VALIDATION_ERROR")
    assert api.get(CAMPAIGNS + "?limit=200").status_code == 200


# --- GET /internal/promo/campaigns/{campaign_id} -----------------------------------------------------------------


def test_get_answers_the_campaign_as_listed(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    r = api.get(f"{CAMPAIGNS}/{c['id']}")
    assert r.status_code == 200
    assert r.json == {k: v for k, v in c.items() if k != "code"}
    assert api.get(CAMPAIGNS).json["items"] == [r.json]


def test_get_of_an_unknown_campaign_is_404(api: Api) -> None:
    assert_error(api.get(f"{CAMPAIGNS}/999"), 404, "NOT_FOUND")
    assert_error(api.get(f"{CAMPAIGNS}/{10**30}"), 404, "NOT_FOUND")
    assert_error(api.get(f"{CAMPAIGNS}/abc"), 404, "NOT_FOUND")


# --- PATCH /internal/promo/campaigns/{campaign_id} ---------------------------------------------------------------


def test_patch_changes_the_given_fields_only(api: Api) -> None:
    c = api.create_campaign("SPRING-20", max_total_uses=100, valid_until=iso(10))
    r = api.patch(f"{CAMPAIGNS}/{c['id']}", {"valid_until": iso(30), "per_user_limit": 3})
    assert r.status_code == 200, r.json
    assert r.json["valid_until"] == iso(30) and r.json["per_user_limit"] == 3
    assert r.json["max_total_uses"] == 100 and r.json["name"] == c["name"]
    assert set(r.json) == CAMPAIGN_FIELDS and r.json["codes_total"] == 1


def test_patch_null_removes_the_end_and_the_budget(api: Api) -> None:
    c = api.create_campaign("SPRING-20", max_total_uses=100, valid_until=iso(10))
    r = api.patch(f"{CAMPAIGNS}/{c['id']}", {"valid_until": None, "max_total_uses": None})
    assert r.status_code == 200, r.json
    assert r.json["valid_until"] is None and r.json["max_total_uses"] is None


def test_patch_of_the_name_and_end_reaches_the_codes_copies(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    api.patch(f"{CAMPAIGNS}/{c['id']}", {"name": "spring, extended", "valid_until": iso(5)})
    code = api.get(f"/internal/promo/codes/{c['code']['id']}").json
    assert code["campaign_name"] == "spring, extended" and code["valid_until"] == iso(5)


def test_patch_writes_exactly_one_audit_entry_with_what_changed(api: Api) -> None:
    c = api.create_campaign("SPRING-20", max_total_uses=100)
    before = len(audit_rows(api))
    api.patch(f"{CAMPAIGNS}/{c['id']}", {"max_total_uses": 200, "per_user_limit": 2})
    rows = audit_rows(api)
    assert len(rows) == before + 1
    entry = rows[0]
    assert (entry["action"], entry["target_type"], entry["target_id"], entry["actor"]) == (
        "campaign.changed", "campaign", str(c["id"]), "api")
    assert entry["details"]["changes"] == {"max_total_uses": {"from": 100, "to": 200},
                                           "per_user_limit": {"from": 1, "to": 2}}


def test_patch_with_an_empty_object_changes_nothing_and_writes_no_audit_entry(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    before = audit_rows(api)
    r = api.patch(f"{CAMPAIGNS}/{c['id']}", {})
    assert r.status_code == 200 and r.json["updated_at"] == c["updated_at"]
    assert audit_rows(api) == before


def test_a_budget_below_used_total_is_409_invalid_change_and_changes_nothing(api: Api) -> None:
    c = api.create_campaign(name="two codes", max_total_uses=10)
    for code in ("CODE-ONE1", "CODE-TWO2"):
        assert api.post(f"{CAMPAIGNS}/{c['id']}/codes", {"code": code}).status_code == 201
    assert api.redeem(1, "CODE-ONE1", "k1").status_code == 200
    assert api.redeem(2, "CODE-TWO2", "k2").status_code == 200
    before = audit_rows(api)
    err = assert_error(api.patch(f"{CAMPAIGNS}/{c['id']}", {"max_total_uses": 1, "name": "renamed"}), 409,
                       "INVALID_CHANGE")
    assert err["details"]["field"] == "max_total_uses" and err["details"]["used_total"] == 2
    after = api.get(f"{CAMPAIGNS}/{c['id']}").json
    assert after["max_total_uses"] == 10 and after["name"] == "two codes"
    assert audit_rows(api) == before


def test_a_valid_until_in_the_past_is_409_invalid_change_and_changes_nothing(api: Api) -> None:
    c = api.create_campaign("SPRING-20", valid_until=iso(10))
    err = assert_error(api.patch(f"{CAMPAIGNS}/{c['id']}", {"valid_until": iso(-1), "per_user_limit": 5}), 409,
                       "INVALID_CHANGE")
    assert err["details"]["field"] == "valid_until"
    after = api.get(f"{CAMPAIGNS}/{c['id']}").json
    assert after["valid_until"] == iso(10) and after["per_user_limit"] == 1


def test_a_taken_name_is_409_invalid_change(api: Api) -> None:
    api.create_campaign(name="first")
    second = api.create_campaign(name="second")
    err = assert_error(api.patch(f"{CAMPAIGNS}/{second['id']}", {"name": "first"}), 409, "INVALID_CHANGE")
    assert err["details"]["field"] == "name"


def test_patch_refuses_terms_unknown_fields_and_null_where_null_means_nothing(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    r = api.patch(f"{CAMPAIGNS}/{c['id']}", {"discount_percent": 50, "name": None, "per_user_limit": None,
                                             "max_total_uses": 0, "valid_until": "soon"})
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert sorted(d["field"] for d in err["details"]) == ["discount_percent", "max_total_uses", "name",
                                                          "per_user_limit", "valid_until"]
    assert_error(api.patch(f"{CAMPAIGNS}/{c['id']}", [1]), 400, "VALIDATION_ERROR")


def test_patch_of_an_unknown_campaign_is_404(api: Api) -> None:
    assert_error(api.patch(f"{CAMPAIGNS}/999", {"per_user_limit": 2}), 404, "NOT_FOUND")
    assert_error(api.patch(f"{CAMPAIGNS}/999", {}), 404, "NOT_FOUND")


# --- POST /internal/promo/campaigns/{campaign_id}/status ---------------------------------------------------------


def test_pause_and_resume_a_campaign(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    path = f"{CAMPAIGNS}/{c['id']}/status"
    r = api.post(path, {"status": "PAUSED", "reason": "typo in the ad"})
    assert r.status_code == 200 and r.json["status"] == "PAUSED" and r.json["paused_reason"] == "MANUAL"
    assert set(r.json) == CAMPAIGN_FIELDS
    again = api.post(path, {"status": "PAUSED"})
    assert again.status_code == 200 and again.json == r.json
    r = api.post(path, {"status": "ACTIVE"})
    assert r.status_code == 200 and r.json["status"] == "ACTIVE" and r.json["paused_reason"] is None
    actions = [e["action"] for e in audit_rows(api, target_type="campaign")]
    assert actions[:2] == ["campaign.resumed", "campaign.paused"]


def test_a_paused_campaign_answers_paused_for_every_one_of_its_codes(api: Api) -> None:
    c = api.create_campaign("CODE-ONE1")
    assert api.post(f"{CAMPAIGNS}/{c['id']}/codes", {"code": "CODE-TWO2"}).status_code == 201
    assert api.post(f"{CAMPAIGNS}/{c['id']}/status", {"status": "PAUSED"}).status_code == 200
    for user, code in ((1, "CODE-ONE1"), (2, "CODE-TWO2")):
        r = api.redeem(user, code, f"k{user}")
        assert r.status_code == 422 and r.json["result"] == "PAUSED", code
    assert api.get(f"/internal/promo/codes?campaign_id={c['id']}&status=ACTIVE").json["items"] != []


def test_resume_of_a_used_up_campaign_is_409_invalid_transition(api: Api) -> None:
    c = api.create_campaign("SPRING-20", max_total_uses=1)
    assert api.redeem(1, "SPRING20", "k1").status_code == 200
    path = f"{CAMPAIGNS}/{c['id']}/status"
    assert api.post(path, {"status": "PAUSED"}).status_code == 200
    assert_error(api.post(path, {"status": "ACTIVE"}), 409, "INVALID_TRANSITION")


def test_status_of_an_unknown_campaign_is_404(api: Api) -> None:
    assert_error(api.post(f"{CAMPAIGNS}/999/status", {"status": "PAUSED"}), 404, "NOT_FOUND")


def test_status_must_be_active_or_paused_and_the_reason_short(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    path = f"{CAMPAIGNS}/{c['id']}/status"
    for body, field in (({"status": "EXPIRED"}, "status"), ({}, "status"),
                        ({"status": "PAUSED", "reason": "r" * 501}, "reason")):
        err = assert_error(api.post(path, body), 400, "VALIDATION_ERROR")
        assert [d["field"] for d in err["details"]] == [field], body


# --- GET /internal/promo/campaigns/{campaign_id}/stats -----------------------------------------------------------


def test_stats_count_the_campaigns_attempts_and_redemptions_in_the_window(api: Api, clock: ManualClock) -> None:
    c = api.create_campaign("SPRING-20", per_user_limit=1)
    other = api.create_campaign("OTHER-30")
    assert api.redeem(1, "SPRING20", "k1").status_code == 200
    assert api.redeem(1, "SPRING20", "k2").status_code == 409
    assert api.redeem(2, "OTHER30", "k3").status_code == 200
    clock.advance(minutes=30)
    r = api.get(f"{CAMPAIGNS}/{c['id']}/stats?window_hours=2")
    assert r.status_code == 200, r.json
    s = r.json
    assert s["campaign_id"] == c["id"] and s["window"]["hours"] == 2
    assert s["attempts_by_result"]["ACCEPTED"] == 1 and s["attempts_by_result"]["ALREADY_USED"] == 1
    assert sum(s["attempts_by_result"].values()) == 2
    assert s["redemptions_by_status"]["RESERVED"] == 1
    assert s["purchases_paid"] == 0 and s["stars_revenue"] == 0
    assert len(s["series"]) == 3 and sum(h["attempts"] for h in s["series"]) == 2
    assert api.get(f"{CAMPAIGNS}/{other['id']}/stats").json["window"]["hours"] == 24


def test_stats_of_an_unknown_campaign_is_404_and_the_window_is_checked(api: Api) -> None:
    assert_error(api.get(f"{CAMPAIGNS}/999/stats"), 404, "NOT_FOUND")
    c = api.create_campaign("SPRING-20")
    for bad in ("0", "721", "x", ""):
        err = assert_error(api.get(f"{CAMPAIGNS}/{c['id']}/stats?window_hours={bad}"), 400, "VALIDATION_ERROR")
        assert err["details"][0]["field"] == "window_hours"
