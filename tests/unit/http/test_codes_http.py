"""``/internal/promo/codes``: list, read, pause/resume one code, and the support lookup of a typed code."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from dependency_injector import providers

from adapters.memory import ManualClock
from domain.codes import hmac_hash
from entrypoints.container import Container
from entrypoints.http import create_app
from tests.conftest import PEPPER
from tests.unit.http.conftest import Api, assert_error, make_container

CODES = "/internal/promo/codes"
LOOKUP = "/internal/promo/codes/lookup"


def add_code(api: Api, campaign_id: int, code: str) -> dict[str, Any]:
    r = api.post(f"/internal/promo/campaigns/{campaign_id}/codes", {"code": code})
    assert r.status_code == 201, r.json
    return dict(r.json)


def ids(api: Api, query: str) -> list[int]:
    r = api.get(f"{CODES}?{query}")
    assert r.status_code == 200 and set(r.json) == {"items", "next_cursor"}, r.json
    return [c["id"] for c in r.json["items"]]


# --- GET /internal/promo/codes ---------------------------------------------------------------------------------


def test_list_filters_by_campaign_status_and_prefix_oldest_first(api: Api) -> None:
    spring = api.create_campaign("SPRING-01")
    s2 = add_code(api, spring["id"], "SPRING-02")["id"]
    s3 = add_code(api, spring["id"], "SUMMER-03")["id"]
    other = api.create_campaign("SPRING-99")
    s1 = spring["code"]["id"]
    api.post(f"{CODES}/{s2}/status", {"status": "PAUSED"})
    assert ids(api, "") == [s1, s2, s3, other["code"]["id"]]
    assert ids(api, f"campaign_id={spring['id']}") == [s1, s2, s3]
    assert ids(api, f"campaign_id={spring['id']}&status=PAUSED") == [s2]
    assert ids(api, "code_prefix=spr") == [s1, s2, other["code"]["id"]]
    assert ids(api, f"code_prefix=SUMM&campaign_id={spring['id']}") == [s3]
    assert ids(api, "campaign_id=999") == []


def test_list_pages_with_the_cursor(api: Api) -> None:
    c = api.create_campaign("PAGE-0000")
    created = [c["code"]["id"]] + [add_code(api, c["id"], f"PAGE-{i:04d}")["id"] for i in range(1, 5)]
    seen: list[int] = []
    cursor = None
    for _ in range(3):
        r = api.get(f"{CODES}?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        seen += [x["id"] for x in r.json["items"]]
        cursor = r.json["next_cursor"]
    assert seen == created and cursor is None


def test_list_names_each_bad_query_parameter(api: Api) -> None:
    err = assert_error(api.get(f"{CODES}?campaign_id=0&status=NEW&code_prefix=AB-C&limit=500&cursor=x"), 400,
                       "VALIDATION_ERROR")
    assert sorted(d["field"] for d in err["details"]) == ["campaign_id", "code_prefix", "cursor", "limit", "status"]
    assert_error(api.get(f"{CODES}?code_prefix=ABCDE"), 400, "VALIDATION_ERROR")


# --- GET /internal/promo/codes/{promo_code_id} ----------------------------------------------------------------


def test_get_answers_the_code_row_as_listed(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    r = api.get(f"{CODES}/{c['code']['id']}")
    assert r.status_code == 200 and r.json == c["code"]
    assert r.json["code_hash"] == hmac_hash(PEPPER, "SPRING20")


def test_get_of_an_unknown_code_is_404(api: Api) -> None:
    assert_error(api.get(f"{CODES}/999"), 404, "NOT_FOUND")
    assert_error(api.get(f"{CODES}/{10**25}"), 404, "NOT_FOUND")


# --- POST /internal/promo/codes/{promo_code_id}/status ----------------------------------------------------------


def test_pausing_one_code_leaves_the_other_codes_of_its_campaign_redeemable(api: Api) -> None:
    c = api.create_campaign("LEAKED-01")
    add_code(api, c["id"], "FRESH-002")
    r = api.post(f"{CODES}/{c['code']['id']}/status", {"status": "PAUSED", "reason": "posted on a forum"},
                 headers={"X-Actor": "support:kim"})
    assert r.status_code == 200 and r.json["status"] == "PAUSED" and r.json["paused_reason"] == "MANUAL"
    assert api.redeem(1, "LEAKED01", "k1").json["result"] == "PAUSED"
    assert api.redeem(2, "FRESH002", "k2").status_code == 200
    campaign = api.get(f"/internal/promo/campaigns/{c['id']}").json
    assert campaign["status"] == "ACTIVE" and campaign["codes_by_status"]["PAUSED"] == 1
    entry = api.get("/internal/promo/audit?target_type=promo_code").json["items"][0]
    assert entry["action"] == "code.paused" and entry["actor"] == "support:kim"
    assert entry["details"]["reason"] == "posted on a forum"


def test_resuming_a_code_is_idempotent(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    path = f"{CODES}/{c['code']['id']}/status"
    first = api.post(path, {"status": "ACTIVE"})
    assert first.status_code == 200 and first.json == c["code"]
    assert api.post(path, {"status": "PAUSED"}).status_code == 200
    assert api.post(path, {"status": "ACTIVE"}).json["status"] == "ACTIVE"


def test_resuming_a_used_up_code_is_409_invalid_transition(api: Api) -> None:
    c = api.create_campaign("ONCE-ONLY", code_max_total_uses=1)
    assert api.redeem(1, "ONCEONLY", "k1").status_code == 200
    path = f"{CODES}/{c['code']['id']}/status"
    assert api.post(path, {"status": "PAUSED"}).status_code == 200
    assert_error(api.post(path, {"status": "ACTIVE"}), 409, "INVALID_TRANSITION")


def test_code_status_is_404_for_an_unknown_code_and_400_for_a_bad_status(api: Api) -> None:
    assert_error(api.post(f"{CODES}/999/status", {"status": "PAUSED"}), 404, "NOT_FOUND")
    c = api.create_campaign("SPRING-20")
    err = assert_error(api.post(f"{CODES}/{c['code']['id']}/status", {"status": "DEPLETED"}), 400,
                       "VALIDATION_ERROR")
    assert [d["field"] for d in err["details"]] == ["status"]


# --- POST /internal/promo/codes/lookup ---------------------------------------------------------------------------


def test_lookup_finds_a_typed_code_with_its_campaign(api: Api) -> None:
    c = api.create_campaign("Spring-2026", max_total_uses=50)
    r = api.post(LOOKUP, {"code": " spring 2026 "})
    assert r.status_code == 200 and set(r.json) == {"code", "campaign"}
    assert r.json["code"] == c["code"]
    assert r.json["campaign"] == api.get(f"/internal/promo/campaigns/{c['id']}").json
    assert "SPRING2026" not in r.get_data(as_text=True).upper()


def test_lookup_finds_codes_hashed_with_a_previous_pepper(clock: ManualClock) -> None:
    before = make_container(clock, PROMO_SECRET_PEPPER="old-pepper")
    Api(create_app(before).test_client()).create_campaign("ROTATED-1")
    rotated = make_container(clock, PROMO_SECRET_PEPPER="new-pepper", PROMO_SECRET_PEPPER_PREVIOUS="old-pepper")
    rotated.memory_store.override(providers.Object(before.memory_store()))
    r = Api(create_app(rotated).test_client()).post(LOOKUP, {"code": "ROTATED-1"})
    assert r.status_code == 200 and r.json["code"]["code_hash"] == hmac_hash("old-pepper", "ROTATED1")


def test_lookup_of_an_unknown_code_is_404_and_a_malformed_one_400(api: Api) -> None:
    assert_error(api.post(LOOKUP, {"code": "NO-SUCH-CODE"}), 404, "NOT_FOUND")
    for bad in ("x!", "A" * 257, 42, None):
        err = assert_error(api.post(LOOKUP, {"code": bad}), 400, "VALIDATION_ERROR")
        assert [d["field"] for d in err["details"]] == ["code"], bad
    err = assert_error(api.post(LOOKUP, {}), 400, "VALIDATION_ERROR")
    assert [d["field"] for d in err["details"]] == ["code"]


def test_lookup_writes_no_attempt(api: Api, container: Container) -> None:
    api.create_campaign("SPRING-20")
    for _ in range(6):
        api.post(LOOKUP, {"code": "WRONG-CODE"})
    api.post(LOOKUP, {"code": "SPRING-20"})
    assert container.memory_store().attempts == []
    assert api.get("/internal/promo/dashboard").json["conversion"]["attempts_total"] == 0


def test_lookup_never_logs_the_typed_code(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    api.create_campaign("SECRET-2026")
    caplog.set_level(logging.DEBUG)
    for typed in ("secret 2026", "NOTSTORED99", "bad!code"):
        api.post(LOOKUP, {"code": typed})
    logged = "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records).upper()
    assert caplog.records
    for plaintext in ("SECRET 2026", "SECRET2026", "NOTSTORED99", "BAD!CODE"):
        assert plaintext not in logged
