"""The campaign pages of the ops console (SPEC 14): the list, a new campaign, the campaign page, pausing, resuming
and changing a campaign, what a viewer may not do, and the audit of every console change."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from domain.model import (
    AuditFilter,
    CampaignFilter,
    CampaignStatus,
    PromoType,
    RedeemResult,
)
from entrypoints.console.views import campaigns
from entrypoints.container import Container
from tests.unit.console.campaign_helpers import (
    CHANGE_CONTROLS,
    campaign_id,
    codes_of,
    error_of,
    generate,
    make_campaign,
    upload,
)
from tests.unit.console.conftest import ADMIN, VIEWER, signed_in

# --- the list -----------------------------------------------------------------------------------------


def test_list_shows_each_campaign_with_its_budget_and_limits(admin: tuple[FlaskClient, str],
                                                             container: Container) -> None:
    client, _ = admin
    c = make_campaign(container, "Spring sale", max_total_uses=500, per_user_limit=3)
    page = client.get("/ops/campaigns")
    assert page.status_code == 200
    assert f'href="/ops/campaigns/{c.id}">Spring sale</a>' in page.text
    assert "Percent discount" in page.text and "0 / 500 (0%)" in page.text
    assert 'aria-label="Budget used by Spring sale: 0 of 500"' in page.text
    assert "New campaign" in page.text


def test_list_searches_by_name_and_filters_by_status_and_type(admin: tuple[FlaskClient, str],
                                                              container: Container) -> None:
    client, _ = admin
    make_campaign(container, "Spring sale")
    make_campaign(container, "Summer grant", promo_type=PromoType.PREMIUM_GRANT, discount_percent=None,
                  grant_plan_code="PREMIUM", grant_days=7)
    paused = make_campaign(container, "Autumn sale")
    container.campaign_service().set_status(campaign_id(paused), CampaignStatus.PAUSED, actor="cli:test")

    def names(query: str) -> list[str]:
        response = client.get("/ops/campaigns?" + query)
        assert response.status_code == 200
        return re.findall(r'href="/ops/campaigns/\d+">([^<]+)</a>', response.text)

    assert names("name=SALE") == ["Autumn sale", "Spring sale"]
    assert names("status=PAUSED") == ["Autumn sale"]
    assert names("promo_type=PREMIUM_GRANT") == ["Summer grant"]
    assert names("name=sale&status=ACTIVE") == ["Spring sale"]
    assert names("name=nothing-like-it") == []


def test_list_pages_with_a_cursor(admin: tuple[FlaskClient, str], container: Container,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = admin
    monkeypatch.setattr(campaigns, "PAGE_SIZE", 2)
    for i in range(5):
        make_campaign(container, f"Campaign {i}")
    seen: list[str] = []
    url: str | None = "/ops/campaigns?name=Campaign"
    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += re.findall(r'href="/ops/campaigns/\d+">([^<]+)</a>', response.text)
        nxt = re.search(r'<a href="([^"]+)" rel="next">', response.text)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
        if url:
            assert "name=Campaign" in url
    assert seen == [f"Campaign {i}" for i in reversed(range(5))]


def test_list_refuses_a_bad_filter_with_the_error_next_to_it(admin: tuple[FlaskClient, str]) -> None:
    client, _ = admin
    response = client.get("/ops/campaigns?status=BOGUS")
    assert response.status_code == 400
    assert "Not a valid choice" in error_of(response.text, "status")


# --- create -------------------------------------------------------------------------------------------


def test_admin_creates_a_campaign(admin: tuple[FlaskClient, str], container: Container) -> None:
    client, token = admin
    assert client.get("/ops/campaigns/new").status_code == 200
    response = client.post("/ops/campaigns/new", data={
        "csrf_token": token, "name": "Launch week", "promo_type": "STARS_DISCOUNT", "discount_stars": "25",
        "target_scope": "FIRST_PURCHASE_ONLY", "valid_until": "2099-01-31T12:00", "applicable_products":
        ["PREMIUM_30D", "PREMIUM_90D"], "max_total_uses": "1000", "per_user_limit": "2"})
    assert response.status_code == 302
    [view] = container.campaign_service().list_campaigns(CampaignFilter()).items
    c = view.campaign
    assert response.headers["Location"] == f"/ops/campaigns/{c.id}"
    assert (c.name, c.promo_type, c.discount_stars, c.target_scope.value) == (
        "Launch week", PromoType.STARS_DISCOUNT, 25, "FIRST_PURCHASE_ONLY")
    assert c.valid_until == datetime(2099, 1, 31, 12, 0, tzinfo=UTC)
    assert c.applicable_products == ("PREMIUM_30D", "PREMIUM_90D")
    assert (c.max_total_uses, c.per_user_limit) == (1000, 2)
    page = client.get(response.headers["Location"])
    assert "Launch week" in page.text and "created" in page.text
    [entry] = container.audit_service().list_entries(AuditFilter(action="campaign.created")).items
    assert entry.actor == ADMIN


BAD_CREATE = [
    ({"name": ""}, "name", "required"),
    ({"discount_percent": "150"}, "discount_percent", "1..99"),
    ({"discount_percent": "ten"}, "discount_percent", "must be an integer"),
    ({"grant_days": "7"}, "grant_days", "only for PREMIUM_GRANT"),
    ({"promo_type": ""}, "promo_type", "required"),
    ({"valid_until": "next tuesday"}, "valid_until", "must be a date and time"),
    ({"valid_until": "2001-01-01T00:00"}, "valid_until", "must be in the future"),
    ({"max_total_uses": "0"}, "max_total_uses", "must be 1.."),
    ({"per_user_limit": "5000"}, "per_user_limit", "1..1000"),
    ({"applicable_products": "NO_SUCH_PRODUCT"}, "applicable_products", "unknown product(s): NO_SUCH_PRODUCT"),
]


def test_bad_input_comes_back_next_to_its_field_and_creates_nothing(admin: tuple[FlaskClient, str],
                                                                    container: Container) -> None:
    client, token = admin
    for data, field, message in BAD_CREATE:
        form = {"csrf_token": token, "name": "Bad one", "promo_type": "PERCENT_DISCOUNT", "discount_percent": "10",
                "target_scope": "ALL", "per_user_limit": "1", **data}
        response = client.post("/ops/campaigns/new", data=form)
        assert response.status_code == 400, data
        error_id = "products" if field == "applicable_products" else field
        assert message in error_of(response.text, error_id), (data, response.text)
    assert container.campaign_service().list_campaigns(CampaignFilter()).items == []
    assert container.audit_service().list_entries(AuditFilter(action="campaign.created")).items == []


def test_a_taken_name_is_refused_next_to_the_name(admin: tuple[FlaskClient, str], container: Container) -> None:
    client, token = admin
    make_campaign(container, "Taken")
    response = client.post("/ops/campaigns/new", data={"csrf_token": token, "name": "Taken", "promo_type":
                                                       "PERCENT_DISCOUNT", "discount_percent": "10",
                                                       "target_scope": "ALL", "per_user_limit": "1"})
    assert response.status_code == 400
    assert "exists" in error_of(response.text, "name")
    assert len(container.campaign_service().list_campaigns(CampaignFilter()).items) == 1


# --- the campaign page --------------------------------------------------------------------------------


def test_campaign_page_shows_terms_budget_codes_and_metrics(admin: tuple[FlaskClient, str],
                                                            container: Container) -> None:
    client, token = admin
    c = make_campaign(container, "Giveaway", max_total_uses=10, per_user_limit=2,
                      valid_until=datetime.now(UTC) + timedelta(days=30))
    rows = generate(client, token, campaign_id(c), 3)
    outcome = container.redemption_service().redeem(4242, rows[0]["code"], "key-1")
    assert outcome.result is RedeemResult.ACCEPTED
    page = client.get(f"/ops/campaigns/{c.id}?window_hours=72")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Giveaway</h1>" in text
    assert "20 %" in text and "every product" in text and "Per-user limit</dt><dd>2</dd>" in text
    assert 'aria-label="Budget used: 1 of 10"' in text
    assert "Codes by status (3 in all)" in text
    assert "Metrics, 72 hours" in text and text.count('<svg class="chart"') == 3
    assert "Attempts by result" in text and "Stars revenue" in text
    assert text.count('<td><code>') == 3  # three code rows, prefixes only
    assert 'selected value="72"' in text or 'value="72" selected' in text
    bad_window = client.get(f"/ops/campaigns/{c.id}?window_hours=5")
    assert bad_window.status_code == 400 and "Not a valid choice" in error_of(bad_window.text, "window_hours")


def test_codes_are_listed_by_prefix_and_status_and_paged(admin: tuple[FlaskClient, str], container: Container,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    client, token = admin
    c = make_campaign(container)
    cid = campaign_id(c)
    generate(client, token, cid, 3, prefix="AAA", length="8")
    generate(client, token, cid, 2, prefix="BBB", length="8")
    first = codes_of(container, cid)[0]
    container.code_service().set_status(first.id or 0, CampaignStatus.PAUSED, actor="cli:test")

    def prefixes(query: str) -> list[str]:
        response = client.get(f"/ops/campaigns/{cid}?{query}")
        assert response.status_code == 200
        return re.findall(r"<td><code>(\w+)…</code></td>", response.text)

    only_b = prefixes("code_prefix=BBB")
    assert len(only_b) == 2 and all(p.startswith("BBB") for p in only_b)
    assert prefixes("code_status=PAUSED") == [first.code_prefix]
    assert len(prefixes("code_prefix=aaa&code_status=ACTIVE")) == 2
    bad = client.get(f"/ops/campaigns/{cid}?code_prefix=A-B!")
    assert bad.status_code == 400 and "1..4 characters" in error_of(bad.text, "code_prefix")

    monkeypatch.setattr(campaigns, "CODES_PAGE_SIZE", 2)
    seen: list[str] = []
    url: str | None = f"/ops/campaigns/{cid}?code_status=ACTIVE"
    while url:
        response = client.get(url)
        seen += re.findall(r"<td><code>(\w+)…</code></td>", response.text)
        nxt = re.search(r'<a href="([^"]+)" rel="next">', response.text)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
        if url:
            assert "code_status=ACTIVE" in url
    assert len(seen) == 4


def test_a_campaign_that_does_not_exist_is_the_404_page(admin: tuple[FlaskClient, str]) -> None:
    client, token = admin
    response = client.get("/ops/campaigns/999")
    assert response.status_code == 404
    assert "<h1>Not found</h1>" in response.text and "There is no campaign 999" in response.text
    assert client.post("/ops/campaigns/999/status", data={"csrf_token": token, "status": "PAUSED"}).status_code == 404
    assert client.post("/ops/codes/999/status", data={"csrf_token": token, "status": "PAUSED"}).status_code == 404
    assert client.get("/ops/campaigns/99999999999999999999999").status_code == 404
    huge = client.post("/ops/codes/99999999999999999999999/status", data={"csrf_token": token, "status": "PAUSED"})
    assert huge.status_code == 404


# --- pause / resume / change --------------------------------------------------------------------------


def test_admin_pauses_and_resumes_the_campaign(admin: tuple[FlaskClient, str], container: Container) -> None:
    client, token = admin
    c = make_campaign(container)
    cid = campaign_id(c)
    assert "Pause campaign" in client.get(f"/ops/campaigns/{cid}").text
    response = client.post(f"/ops/campaigns/{cid}/status",
                           data={"csrf_token": token, "status": "PAUSED", "reason": "leaked on a forum"})
    assert response.status_code == 302 and response.headers["Location"] == f"/ops/campaigns/{cid}"
    assert container.campaign_service().get(cid).campaign.status is CampaignStatus.PAUSED
    page = client.get(f"/ops/campaigns/{cid}").text
    assert "Resume campaign" in page and "Pause campaign" not in page and "is paused now" in page
    resumed = client.post(f"/ops/campaigns/{cid}/status", data={"csrf_token": token, "status": "ACTIVE"})
    assert resumed.status_code == 302
    assert container.campaign_service().get(cid).campaign.status is CampaignStatus.ACTIVE
    entries = container.audit_service().list_entries(AuditFilter(target_type="campaign", target_id=str(cid))).items
    paused = [e for e in entries if e.action == "campaign.paused"]
    assert paused[0].details["reason"] == "leaked on a forum"
    assert {e.actor for e in entries if e.action in ("campaign.paused", "campaign.resumed")} == {ADMIN}


def test_a_refused_resume_is_shown_and_changes_nothing(admin: tuple[FlaskClient, str], container: Container) -> None:
    client, token = admin
    c = make_campaign(container, max_total_uses=1)
    cid = campaign_id(c)
    [row] = generate(client, token, cid, 1)
    assert container.redemption_service().redeem(7, row["code"], "k").result is RedeemResult.ACCEPTED
    container.campaign_service().set_status(cid, CampaignStatus.PAUSED, actor="cli:test")
    response = client.post(f"/ops/campaigns/{cid}/status", data={"csrf_token": token, "status": "ACTIVE"})
    assert response.status_code == 409 and "capacity is used up" in response.text
    assert container.campaign_service().get(cid).campaign.status is CampaignStatus.PAUSED
    forged = client.post(f"/ops/campaigns/{cid}/status", data={"csrf_token": token, "status": "EXPIRED"})
    assert forged.status_code == 400 and "must be ACTIVE or PAUSED" in forged.text


def test_admin_changes_validity_budget_and_per_user_limit(admin: tuple[FlaskClient, str],
                                                          container: Container) -> None:
    client, token = admin
    c = make_campaign(container, max_total_uses=100, valid_until=datetime.now(UTC) + timedelta(days=3))
    cid = campaign_id(c)
    response = client.post(f"/ops/campaigns/{cid}/change", data={
        "csrf_token": token, "valid_until": "2099-06-30T18:00", "max_total_uses": "250", "per_user_limit": "4"})
    assert response.status_code == 302
    changed = container.campaign_service().get(cid).campaign
    assert changed.valid_until == datetime(2099, 6, 30, 18, 0, tzinfo=UTC)
    assert (changed.max_total_uses, changed.per_user_limit) == (250, 4)
    page = client.get(f"/ops/campaigns/{cid}").text
    assert "Saved: valid until 2099-06-30 18:00 UTC, budget 250, per-user limit 4" in page
    # Empty fields stay as they are; the boxes clear the end date and the budget.
    only_limit = client.post(f"/ops/campaigns/{cid}/change", data={"csrf_token": token, "per_user_limit": "5"})
    assert only_limit.status_code == 302
    kept = container.campaign_service().get(cid).campaign
    assert (kept.valid_until, kept.max_total_uses, kept.per_user_limit) == (changed.valid_until, 250, 5)
    cleared = client.post(f"/ops/campaigns/{cid}/change", data={"csrf_token": token, "no_end": "y", "no_limit": "y"})
    assert cleared.status_code == 302
    final = container.campaign_service().get(cid).campaign
    assert (final.valid_until, final.max_total_uses, final.per_user_limit) == (None, None, 5)
    entries = container.audit_service().list_entries(AuditFilter(action="campaign.changed")).items
    assert len(entries) == 3 and {e.actor for e in entries} == {ADMIN}


BAD_CHANGES = [
    ({"max_total_uses": "lots"}, "max_total_uses", 400, "must be a whole number"),
    ({"max_total_uses": "0"}, "max_total_uses", 400, "must be 1.."),
    ({"max_total_uses": "1"}, "max_total_uses", 409, "below the 2 units used"),
    ({"max_total_uses": "9", "no_limit": "y"}, "max_total_uses", 400, "not both"),
    ({"valid_until": "2001-01-01T00:00"}, "valid_until", 409, "must be in the future"),
    ({"valid_until": "soon"}, "valid_until", 400, "must be a date and time"),
    ({"per_user_limit": "0"}, "per_user_limit", 400, "1..1000"),
]


def test_a_bad_change_comes_back_next_to_its_field_and_changes_nothing(admin: tuple[FlaskClient, str],
                                                                       container: Container) -> None:
    client, token = admin
    c = make_campaign(container, max_total_uses=100, per_user_limit=2)
    cid = campaign_id(c)
    for i, row in enumerate(generate(client, token, cid, 2)):
        assert container.redemption_service().redeem(100 + i, row["code"], f"k{i}").result is RedeemResult.ACCEPTED
    before = container.campaign_service().get(cid).campaign
    for data, field, status, message in BAD_CHANGES:
        response = client.post(f"/ops/campaigns/{cid}/change", data={"csrf_token": token, **data})
        assert response.status_code == status, data
        assert message in error_of(response.text, field), (data, response.text)
    assert container.campaign_service().get(cid).campaign == before
    assert container.audit_service().list_entries(AuditFilter(action="campaign.changed")).items == []


def test_an_empty_change_is_refused(admin: tuple[FlaskClient, str], container: Container) -> None:
    client, token = admin
    cid = campaign_id(make_campaign(container))
    response = client.post(f"/ops/campaigns/{cid}/change", data={"csrf_token": token})
    assert response.status_code == 400 and "Nothing to change" in response.text


# --- viewers ------------------------------------------------------------------------------------------


def test_viewer_sees_the_pages_without_any_change_control(console_app: Flask, container: Container) -> None:
    c = make_campaign(container)
    container.code_service().add(campaign_id(c), "VIEWME01", actor="cli:test")
    client = console_app.test_client()
    signed_in(client, VIEWER)
    for path in ("/ops/campaigns", f"/ops/campaigns/{c.id}"):
        page = client.get(path)
        assert page.status_code == 200
        for control in CHANGE_CONTROLS:
            assert control not in page.text, (path, control)
        assert 'method="post" action="/ops/campaigns' not in page.text and '/status"' not in page.text
    assert "VIEW…" in client.get(f"/ops/campaigns/{c.id}").text


def test_viewer_is_refused_every_change_with_403(console_app: Flask, container: Container) -> None:
    c = make_campaign(container)
    code = container.code_service().add(campaign_id(c), "VIEWME01", actor="cli:test")
    client = console_app.test_client()
    token = signed_in(client, VIEWER)
    posts = {
        "/ops/campaigns/new": {"name": "x", "promo_type": "PERCENT_DISCOUNT", "discount_percent": "5"},
        f"/ops/campaigns/{c.id}/status": {"status": "PAUSED"},
        f"/ops/campaigns/{c.id}/change": {"per_user_limit": "9"},
        f"/ops/campaigns/{c.id}/generate": {"count": "5", "confirm": "yes"},
        f"/ops/campaigns/{c.id}/import": {"confirm": "yes"},
        f"/ops/codes/{code.id}/status": {"status": "PAUSED"},
    }
    for path, data in posts.items():
        response = client.post(path, data={"csrf_token": token, **data})
        assert response.status_code == 403, path
    assert client.post(f"/ops/campaigns/{c.id}/import", data={
        "csrf_token": token, "confirm": "yes", "csv": (io.BytesIO(b"code\nNOPE0001\n"), "x.csv")},
        content_type="multipart/form-data").status_code == 403
    view = container.campaign_service().get(campaign_id(c))
    assert view.campaign.status is CampaignStatus.ACTIVE and view.campaign.per_user_limit == 1
    assert view.codes_total == 1
    assert len(container.campaign_service().list_campaigns(CampaignFilter()).items) == 1
    assert {e.actor for e in container.audit_service().list_entries(AuditFilter(), 200).items} <= {"cli:test"}


def test_every_change_made_in_the_console_is_audited_under_the_operators_name(
        admin: tuple[FlaskClient, str], container: Container) -> None:
    client, token = admin
    response = client.post("/ops/campaigns/new", data={
        "csrf_token": token, "name": "Audited", "promo_type": "PREMIUM_GRANT", "grant_plan_code": "PREMIUM",
        "grant_days": "7", "target_scope": "ALL", "per_user_limit": "1"})
    cid = int(response.headers["Location"].rsplit("/", 1)[1])
    rows = generate(client, token, cid, 2)
    assert upload(client, token, cid, "code\nAUDIT0001\n").status_code == 200
    client.post(f"/ops/campaigns/{cid}/change", data={"csrf_token": token, "max_total_uses": "50"})
    client.post(f"/ops/campaigns/{cid}/status", data={"csrf_token": token, "status": "PAUSED"})
    client.post(f"/ops/codes/{rows[0]['promo_code_id']}/status", data={"csrf_token": token, "status": "PAUSED"})
    entries = [e for e in container.audit_service().list_entries(AuditFilter(), 200).items
               if e.target_type in ("campaign", "promo_code")]
    assert sorted(e.action for e in entries) == sorted([
        "campaign.created", "codes.generated", "codes.imported", "campaign.changed", "campaign.paused", "code.paused"])
    assert {e.actor for e in entries} == {ADMIN}
