"""``GET /internal/promo/audit`` and who a change is recorded under: ``api``, or the request's ``X-Actor``."""

from __future__ import annotations

from typing import Any

import pytest

from entrypoints.container import Container
from tests.unit.http.conftest import Api, assert_error

AUDIT = "/internal/promo/audit"
CAMPAIGNS = "/internal/promo/campaigns"


def entries(api: Api, query: str = "") -> list[dict[str, Any]]:
    r = api.get(f"{AUDIT}?{query}")
    assert r.status_code == 200 and set(r.json) == {"items", "next_cursor"}, r.json
    return list(r.json["items"])


def test_entries_are_newest_first_with_every_column(api: Api) -> None:
    c = api.create_campaign("SPRING-20")
    api.post(f"{CAMPAIGNS}/{c['id']}/status", {"status": "PAUSED"})
    items = entries(api)
    assert [e["action"] for e in items] == ["campaign.paused", "code.created", "campaign.created"]
    assert set(items[0]) == {"id", "at", "actor", "action", "target_type", "target_id", "details"}
    assert items[0]["id"] > items[1]["id"] > items[2]["id"]
    assert items[0]["at"].endswith("Z") and items[0]["target_id"] == str(c["id"])


def test_entries_filter_by_actor_action_and_target(api: Api) -> None:
    a = api.create_campaign("AAAA1111")
    api.post(f"{CAMPAIGNS}/{a['id']}/status", {"status": "PAUSED"}, headers={"X-Actor": "ops:anna"})
    b = api.create_campaign("BBBB2222")
    api.post(f"{CAMPAIGNS}/{b['id']}/status", {"status": "PAUSED"}, headers={"X-Actor": "ops:ben"})
    assert [e["target_id"] for e in entries(api, "actor=ops:anna")] == [str(a["id"])]
    assert [e["target_id"] for e in entries(api, "action=campaign.paused")] == [str(b["id"]), str(a["id"])]
    assert len(entries(api, "target_type=promo_code")) == 2
    assert [e["action"] for e in entries(api, f"target_type=campaign&target_id={a['id']}")] == [
        "campaign.paused", "campaign.created"]
    assert entries(api, "actor=nobody") == []


def test_entries_page_with_the_cursor(api: Api) -> None:
    for i in range(5):
        api.create_campaign(name=f"c{i}")
    first = api.get(f"{AUDIT}?limit=2").json
    second = api.get(f"{AUDIT}?limit=2&cursor={first['next_cursor']}").json
    third = api.get(f"{AUDIT}?limit=2&cursor={second['next_cursor']}").json
    ids = [e["id"] for page in (first, second, third) for e in page["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5 and third["next_cursor"] is None


def test_bad_audit_filters_are_400_one_entry_each(api: Api) -> None:
    err = assert_error(api.get(f"{AUDIT}?action=campaign.deleted&target_type=user&limit=0&cursor=abc"
                               f"&actor={'a' * 65}"), 400, "VALIDATION_ERROR")
    assert sorted(d["field"] for d in err["details"]) == ["action", "actor", "cursor", "limit", "target_type"]


# --- X-Actor ------------------------------------------------------------------------------------------------------


def test_without_x_actor_changes_are_recorded_as_api(api: Api) -> None:
    api.create_campaign("SPRING-20")
    assert {e["actor"] for e in entries(api)} == {"api"}


def test_x_actor_lands_in_the_audit_row_of_every_change(api: Api) -> None:
    who = {"X-Actor": "ops:anna"}
    r = api.post(CAMPAIGNS, {"name": "s", "promo_type": "PERCENT_DISCOUNT", "discount_percent": 5, "code": "ANNA-01"},
                 headers=who)
    cid, code_id = r.json["id"], r.json["code"]["id"]
    api.patch(f"{CAMPAIGNS}/{cid}", {"per_user_limit": 2}, headers=who)
    api.post(f"{CAMPAIGNS}/{cid}/status", {"status": "PAUSED"}, headers=who)
    api.post(f"{CAMPAIGNS}/{cid}/codes", {"code": "ANNA-02"}, headers=who)
    api.post(f"{CAMPAIGNS}/{cid}/codes", {"count": 2}, headers=who)
    api.post(f"/internal/promo/codes/{code_id}/status", {"status": "PAUSED"}, headers=who)
    rows = entries(api)
    assert {e["actor"] for e in rows} == {"ops:anna"}
    assert sorted(e["action"] for e in rows) == sorted([
        "campaign.created", "code.created", "campaign.changed", "campaign.paused", "code.created",
        "codes.generated", "code.paused"])


def test_x_actor_is_read_as_utf8(api: Api) -> None:
    name = "Jürgen Müller"
    # A client sends the header as UTF-8 bytes; WSGI hands them over decoded as Latin-1.
    r = api.post(CAMPAIGNS, {"name": "s", "promo_type": "PERCENT_DISCOUNT", "discount_percent": 5},
                 headers={"X-Actor": name.encode().decode("latin-1")})
    assert r.status_code == 201
    assert entries(api)[0]["actor"] == name


@pytest.mark.parametrize("bad", ["", " padded", "padded ", "x" * 65, "tab\there", "\xff\xfe"])
def test_an_invalid_x_actor_is_400_naming_it_and_changes_nothing(api: Api, container: Container, bad: str) -> None:
    r = api.post(CAMPAIGNS, {"name": "s", "promo_type": "PERCENT_DISCOUNT", "discount_percent": 5},
                 headers={"X-Actor": bad})
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert [d["field"] for d in err["details"]] == ["X-Actor"]
    assert container.memory_store().campaigns == {} and container.memory_store().audit == []


def test_x_actor_of_64_characters_is_accepted(api: Api) -> None:
    r = api.post(CAMPAIGNS, {"name": "s", "promo_type": "PERCENT_DISCOUNT", "discount_percent": 5},
                 headers={"X-Actor": "a" * 64})
    assert r.status_code == 201
    assert entries(api)[0]["actor"] == "a" * 64
