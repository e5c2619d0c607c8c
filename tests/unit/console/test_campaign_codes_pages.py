"""Codes from the campaign page of the ops console (SPEC 14): generate N codes and import a CSV (each answered with
the one report CSV download), and pause or resume one code."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta

import pytest
from dependency_injector import providers
from flask.testing import FlaskClient

from adapters.memory.clock import ManualClock
from domain.model import (
    AuditFilter,
    CampaignStatus,
    RedeemResult,
)
from entrypoints.console.views import campaign_codes
from entrypoints.container import Container
from tests.unit.console.campaign_helpers import (
    campaign_id,
    code_count,
    codes_of,
    error_of,
    generate,
    make_campaign,
    report_rows,
    upload,
)
from tests.unit.console.conftest import ADMIN

# --- generate -----------------------------------------------------------------------------------------


def test_generate_answers_the_report_csv_whose_codes_redeem_and_appear_nowhere_else(
        admin: tuple[FlaskClient, str], container: Container, caplog: pytest.LogCaptureFixture) -> None:
    client, token = admin
    c = make_campaign(container, max_total_uses=1000)
    cid = campaign_id(c)
    caplog.set_level(logging.DEBUG)
    response = client.post(f"/ops/campaigns/{cid}/generate", data={
        "csrf_token": token, "count": "25", "prefix": "SPR", "length": "10", "code_max_total_uses": "1",
        "confirm": "yes"})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="campaign-{cid}-codes.csv"'
    assert response.headers["Cache-Control"] == "no-store"
    rows = report_rows(response.text)
    assert len(rows) == 25
    plain = [r["code"] for r in rows]
    assert len(set(plain)) == 25 and all(p.startswith("SPR") and len(p) == 10 for p in plain)
    assert {r["campaign_id"] for r in rows} == {str(cid)} and {r["max_total_uses"] for r in rows} == {"1"}
    assert len(codes_of(container, cid)) == 25

    redeem = container.redemption_service()
    assert redeem.redeem(1, plain[0], "a").result is RedeemResult.ACCEPTED
    assert redeem.redeem(2, plain[1], "b").result is RedeemResult.ACCEPTED
    assert redeem.redeem(3, plain[0], "c").result is RedeemResult.DEPLETED  # single-use

    after = client.get(f"/ops/campaigns/{cid}").text + client.get("/ops/audit").text
    entries = container.audit_service().list_entries(AuditFilter(), 200).items
    logged = " ".join(str(r.__dict__) for r in caplog.records)
    for code in plain:
        assert code not in after
        assert all(code not in str(e.details) for e in entries)
        assert code not in logged
    [entry] = [e for e in entries if e.action == "codes.generated"]
    assert entry.actor == ADMIN and entry.details["count"] == 25


BAD_GENERATE = [
    ({"count": "0"}, "count", "must be 1..100,000"),
    ({"count": "100001"}, "count", "must be 1..100,000"),
    ({"count": "many"}, "count", "must be a whole number"),
    ({"count": ""}, "count", "required"),
    ({"length": "3"}, "length", "must be 4..32"),
    ({"prefix": "AB-C!"}, "prefix", "A-Z and 0-9"),
    ({"prefix": "ABCDEFGH", "length": "8"}, "prefix", "shorter than the code length"),
    ({"code_max_total_uses": "0"}, "code_max_total_uses", "at least 1"),
    ({"confirm": ""}, "generate-confirm", "tick this box"),
]


def test_bad_generate_input_comes_back_next_to_its_field_and_inserts_nothing(admin: tuple[FlaskClient, str],
                                                                             container: Container) -> None:
    client, token = admin
    cid = campaign_id(make_campaign(container))
    for data, field, message in BAD_GENERATE:
        response = client.post(f"/ops/campaigns/{cid}/generate",
                               data={"csrf_token": token, "count": "5", "confirm": "yes", **data})
        assert response.status_code == 400, data
        assert response.mimetype == "text/html"
        assert message in error_of(response.text, field), (data, response.text)
    assert codes_of(container, cid) == []
    assert container.audit_service().list_entries(AuditFilter(action="codes.generated")).items == []


def test_no_codes_are_added_to_an_expired_campaign(admin: tuple[FlaskClient, str], container: Container) -> None:
    client, token = admin
    clock = ManualClock(datetime.now(UTC))
    container.clock.override(providers.Object(clock))
    c = make_campaign(container, valid_until=clock.now() + timedelta(hours=1))
    clock.advance(hours=2)
    container.maintenance_service().rollover_campaign_statuses()
    assert container.campaign_service().get(campaign_id(c)).campaign.status is CampaignStatus.EXPIRED
    page = client.get(f"/ops/campaigns/{c.id}").text
    assert "no codes can be added" in page and "Generate codes" not in page and "Pause campaign" not in page
    response = client.post(f"/ops/campaigns/{c.id}/generate", data={"csrf_token": token, "count": "5",
                                                                    "confirm": "yes"})
    assert response.status_code == 409 and "has expired" in response.text
    response = upload(client, token, campaign_id(c), "code\nLATE0001\n")
    assert response.status_code == 409 and "has expired" in response.text
    assert codes_of(container, campaign_id(c)) == []


# --- import -------------------------------------------------------------------------------------------


def test_import_of_a_code_list_answers_the_report_and_the_codes_redeem(admin: tuple[FlaskClient, str],
                                                                       container: Container) -> None:
    client, token = admin
    c = make_campaign(container, "Partners")
    cid = campaign_id(c)
    response = upload(client, token, cid, "code,max_total_uses\nPARTNER-0001,1\npartner0002,\n\nPARTNER 0003,5\n")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Disposition"] == f'attachment; filename="campaign-{cid}-import.csv"'
    assert response.headers["Cache-Control"] == "no-store"
    rows = report_rows(response.text)
    assert [r["normalized_code"] for r in rows] == ["PARTNER0001", "PARTNER0002", "PARTNER0003"]
    assert [r["max_total_uses"] for r in rows] == ["1", "", "5"]
    assert {r["campaign_id"] for r in rows} == {str(cid)}
    outcome = container.redemption_service().redeem(11, "partner-0002", "key")
    assert outcome.result is RedeemResult.ACCEPTED and outcome.campaign is not None and outcome.campaign.id == cid
    page = client.get(f"/ops/campaigns/{cid}").text
    assert "PARTNER0001" not in page and "Codes by status (3 in all)" in page
    [entry] = container.audit_service().list_entries(AuditFilter(action="codes.imported")).items
    assert entry.actor == ADMIN and entry.target_id == str(cid) and "PARTNER" not in str(entry.details)


def test_import_takes_the_full_file_format_naming_this_campaign(admin: tuple[FlaskClient, str],
                                                                container: Container) -> None:
    client, token = admin
    cid = campaign_id(make_campaign(container, "Partners"))
    text = ("code,campaign_name,promo_type,discount_percent,target_scope\n"
            "FULL0001,Partners,PERCENT_DISCOUNT,20,ALL\n"
            "FULL0002,,,,\n")
    response = upload(client, token, cid, text)
    assert response.status_code == 200, response.text
    assert len(report_rows(response.text)) == 2 and len(codes_of(container, cid)) == 2


def test_an_import_with_a_bad_row_names_its_line_and_inserts_nothing(admin: tuple[FlaskClient, str],
                                                                     container: Container) -> None:
    client, token = admin
    cid = campaign_id(make_campaign(container, "Partners"))
    make_campaign(container, "Other")
    text = ("code,campaign_name,discount_percent\n"
            "GOOD0001,,\n"
            "no!,,\n"
            "GOOD0002,Other,\n"
            "GOOD0003,,35\n"
            "good-0001,,\n")
    response = upload(client, token, cid, text)
    assert response.status_code == 400 and response.mimetype == "text/html"
    problems = error_of(response.text, "csv")
    assert "line 3: code: must normalize to 4..32 characters A-Z 0-9" in problems
    assert "line 4: campaign_name: must be empty or &#39;Partners&#39;" in problems
    assert "line 5: discount_percent: differs from campaign" in problems
    assert "line 6: code: duplicate of line 2" in problems
    assert "nothing was inserted" in response.text
    assert codes_of(container, cid) == []
    assert container.audit_service().list_entries(AuditFilter(action="codes.imported")).items == []


def test_an_import_of_a_code_already_stored_inserts_nothing(admin: tuple[FlaskClient, str],
                                                            container: Container) -> None:
    client, token = admin
    cid = campaign_id(make_campaign(container))
    assert upload(client, token, cid, "code\nFIRST0001\n").status_code == 200
    response = upload(client, token, cid, "code\nNEW00001\nfirst-0001\n")
    assert response.status_code == 400
    assert "line 3: code: already stored" in error_of(response.text, "csv")
    assert len(codes_of(container, cid)) == 1


BAD_FILES = [
    ("", True, "the file is empty"),
    ("name\nX\n", True, "line 1: header: unknown column(s): name"),
    ("code\nABCD1234\n", False, "tick this box"),
    ("code\n\xff\n", True, "not valid UTF-8"),
]


def test_a_bad_import_file_is_refused(admin: tuple[FlaskClient, str], container: Container) -> None:
    client, token = admin
    cid = campaign_id(make_campaign(container))
    for text, confirm, message in BAD_FILES:
        data: dict[str, object] = {"csrf_token": token, "csv": (io.BytesIO(text.encode("latin-1")), "codes.csv")}
        if confirm:
            data["confirm"] = "yes"
        response = client.post(f"/ops/campaigns/{cid}/import", data=data, content_type="multipart/form-data")
        assert response.status_code == 400, text
        assert message in response.text, text
    assert codes_of(container, cid) == []


def test_an_import_without_a_file_is_refused(admin: tuple[FlaskClient, str], container: Container) -> None:
    client, token = admin
    cid = campaign_id(make_campaign(container))
    response = client.post(f"/ops/campaigns/{cid}/import", data={"csrf_token": token, "confirm": "yes"},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "choose a CSV file" in error_of(response.text, "csv")


def test_import_accepts_files_larger_than_the_api_body_limit_up_to_its_own(
        admin: tuple[FlaskClient, str], container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    client, token = admin
    cid = campaign_id(make_campaign(container))
    def no_temporary_files(*args: object, **kwargs: object) -> None:
        raise AssertionError("an upload went to werkzeug's default (temporary file) stream")

    # The import keeps the upload (plaintext codes) in memory.
    monkeypatch.setattr("werkzeug.wrappers.request.default_stream_factory", no_temporary_files)
    big = "code\n" + "".join(f"BIGFILE{i:025d}\n" for i in range(2100))  # 69 KB: above the API's 64 KiB
    assert len(big) > 64 * 1024
    response = upload(client, token, cid, big)
    assert response.status_code == 200, response.text[:500]
    assert len(report_rows(response.text)) == 2100
    monkeypatch.setattr(campaign_codes, "MAX_UPLOAD_BYTES", 10_000)
    too_big = upload(client, token, cid, "code\n" + "".join(f"MORE{i:06d}\n" for i in range(2000)))
    assert too_big.status_code == 413
    assert "<h1>Upload too large</h1>" in too_big.text
    assert code_count(container, cid) == 2100


def test_other_console_posts_keep_the_small_body_limit(admin: tuple[FlaskClient, str], container: Container) -> None:
    client, token = admin
    cid = campaign_id(make_campaign(container))
    response = client.post(f"/ops/campaigns/{cid}/change", data={"csrf_token": token, "reason": "x" * 100_000})
    assert response.status_code == 413


# --- one code -----------------------------------------------------------------------------------------


def test_admin_pauses_and_resumes_one_code(admin: tuple[FlaskClient, str], container: Container) -> None:
    client, token = admin
    cid = campaign_id(make_campaign(container))
    rows = generate(client, token, cid, 2)
    code_id = int(rows[0]["promo_code_id"])
    page = client.get(f"/ops/campaigns/{cid}").text
    assert page.count("Pause code") == 2
    response = client.post(f"/ops/codes/{code_id}/status", data={
        "csrf_token": token, "status": "PAUSED", "code_status": "ACTIVE", "code_prefix": "", "cursor": ""})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/ops/campaigns/{cid}?code_status=ACTIVE#codes"
    assert container.code_service().get(code_id).status is CampaignStatus.PAUSED
    assert container.redemption_service().redeem(5, rows[0]["code"], "k").result is RedeemResult.PAUSED
    assert "Resume code" in client.get(f"/ops/campaigns/{cid}").text
    resumed = client.post(f"/ops/codes/{code_id}/status", data={"csrf_token": token, "status": "ACTIVE"})
    assert resumed.status_code == 302
    assert container.code_service().get(code_id).status is CampaignStatus.ACTIVE
    entries = container.audit_service().list_entries(AuditFilter(target_type="promo_code",
                                                                 target_id=str(code_id))).items
    assert [e.action for e in entries] == ["code.resumed", "code.paused"] and {e.actor for e in entries} == {ADMIN}


def test_a_refused_code_transition_is_shown(admin: tuple[FlaskClient, str], container: Container) -> None:
    client, token = admin
    cid = campaign_id(make_campaign(container))
    [row] = generate(client, token, cid, 1, code_max_total_uses="1")
    code_id = int(row["promo_code_id"])
    assert container.redemption_service().redeem(5, row["code"], "k").result is RedeemResult.ACCEPTED
    container.code_service().set_status(code_id, CampaignStatus.PAUSED, actor="cli:test")
    response = client.post(f"/ops/codes/{code_id}/status", data={"csrf_token": token, "status": "ACTIVE"})
    assert response.status_code == 409 and "capacity is used up" in response.text
