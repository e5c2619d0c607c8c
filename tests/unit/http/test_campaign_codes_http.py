"""``POST /internal/promo/campaigns/{campaign_id}/codes``: a generated batch answered as the report CSV (the only
place the plaintext codes appear), or one chosen code answered as its row."""

from __future__ import annotations

import csv
import io
import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from dependency_injector import providers

from adapters.memory import ManualClock
from domain.batch import BatchResult, ReportSink
from domain.code_files import REPORT_COLUMNS
from domain.codes import hmac_hash
from entrypoints.container import Container
from tests.conftest import PEPPER, T0
from tests.unit.http.conftest import Api, assert_error


def codes_path(campaign_id: int) -> str:
    return f"/internal/promo/campaigns/{campaign_id}/codes"


def report_rows(body: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(body))
    assert tuple(reader.fieldnames or ()) == REPORT_COLUMNS
    return list(reader)


def stored_counts(container: Container) -> tuple[int, int]:
    store = container.memory_store()
    return len(store.codes), len(store.audit)


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record: its message and every attribute a JSON formatter could write."""
    return "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records)


@pytest.fixture
def campaign(api: Api) -> dict[str, Any]:
    return api.create_campaign(name="giveaway", promo_type="PREMIUM_GRANT", grant_plan_code="PREMIUM", grant_days=7,
                               max_total_uses=1000)


# --- count: generated codes ----------------------------------------------------------------------------------


def test_generate_answers_201_csv_with_one_row_per_code_and_no_store(api: Api, campaign: dict[str, Any]) -> None:
    r = api.post(codes_path(campaign["id"]), {"count": 25, "prefix": "gift-", "length": 10, "max_total_uses": 1})
    assert r.status_code == 201, r.data[:300]
    assert r.mimetype == "text/csv" and r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Disposition"] == f'attachment; filename="campaign-{campaign["id"]}-codes.csv"'
    assert r.headers["X-Codes-Generated"] == "25"
    rows = report_rows(r.get_data(as_text=True))
    assert len(rows) == 25 and len({row["code"] for row in rows}) == 25
    for row in rows:
        assert re.fullmatch(r"GIFT[2-9A-HJ-NP-Z]{6}", row["code"]) and row["normalized_code"] == row["code"]
        assert row["code_prefix"] == "GIFT" and row["campaign_id"] == str(campaign["id"])
        assert row["campaign_name"] == "giveaway" and row["promo_type"] == "PREMIUM_GRANT"
        assert row["grant_days"] == "7" and row["max_total_uses"] == "1" and row["per_user_limit"] == "1"


def test_generated_codes_are_stored_as_their_hash_and_redeem(api: Api, campaign: dict[str, Any]) -> None:
    rows = report_rows(api.post(codes_path(campaign["id"]), {"count": 3, "max_total_uses": 1}).get_data(as_text=True))
    for row in rows:
        code = api.get(f"/internal/promo/codes/{row['promo_code_id']}").json
        assert code["code_hash"] == hmac_hash(PEPPER, row["normalized_code"])
        assert code["campaign_id"] == campaign["id"] and code["max_total_uses"] == 1
    assert api.redeem(1, rows[0]["code"], "k1").status_code == 200
    # Single use: the code's own cap is reached.
    assert api.redeem(2, rows[0]["code"], "k2").json["result"] == "DEPLETED"
    after = api.get(f"/internal/promo/campaigns/{campaign['id']}").json
    assert after["codes_total"] == 3 and after["used_total"] == 1


def test_the_plaintext_of_generated_codes_appears_nowhere_but_the_report(
    api: Api, campaign: dict[str, Any], container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    r = api.post(codes_path(campaign["id"]), {"count": 20}, headers={"X-Actor": "ops:anna"})
    codes = [row["code"] for row in report_rows(r.get_data(as_text=True))]
    elsewhere = "\n".join([
        api.get("/internal/promo/audit").get_data(as_text=True),
        api.get(f"/internal/promo/codes?campaign_id={campaign['id']}&limit=200").get_data(as_text=True),
        api.get(f"/internal/promo/campaigns/{campaign['id']}").get_data(as_text=True),
        repr(list(container.memory_store().codes.values())),
        repr(container.memory_store().audit),
        log_text(caplog),
    ])
    assert caplog.records, "the request was logged"
    assert not [c for c in codes if c in elsewhere]


def test_generation_is_one_audit_entry_naming_the_actor(api: Api, campaign: dict[str, Any]) -> None:
    api.post(codes_path(campaign["id"]), {"count": 4, "prefix": "GIFT", "length": 8},
             headers={"X-Actor": "ops:anna"})
    entry = api.get("/internal/promo/audit?action=codes.generated").json["items"]
    assert len(entry) == 1
    assert entry[0]["actor"] == "ops:anna" and entry[0]["target_id"] == str(campaign["id"])
    assert entry[0]["details"]["count"] == 4 and entry[0]["details"]["prefix"] == "GIFT"


class CountingBatches:
    """Stands in for ``BatchService.generate_into`` where only the HTTP side is under test: writes ``count``
    report rows (the in-memory store takes ~0.1-0.3 ms per stored code, too slow for 100,000 in a unit test)."""

    def __init__(self) -> None:
        self.counts: list[int] = []

    def generate_into(self, campaign_id: int, count: int, sink: ReportSink, **_: Any) -> BatchResult:
        self.counts.append(count)
        shared = dict.fromkeys(REPORT_COLUMNS, "x")
        sink.write_generated(shared, [(str(i), f"CODE{i:08d}", f"CODE{i:08d}", "CODE") for i in range(count)])
        sink.close()
        return BatchResult(inserted=count)


def test_the_largest_batch_is_100000_codes_in_one_answer(api: Api, container: Container,
                                                           campaign: dict[str, Any]) -> None:
    batches = CountingBatches()
    container.batch_service.override(providers.Object(batches))
    r = api.post(codes_path(campaign["id"]), {"count": 100_000})
    assert r.status_code == 201 and batches.counts == [100_000]
    assert r.get_data().count(b"\n") == 100_001 and r.headers["X-Codes-Generated"] == "100000"
    assert_error(api.post(codes_path(campaign["id"]), {"count": 100_001}), 400, "VALIDATION_ERROR")
    assert batches.counts == [100_000]


@pytest.mark.parametrize(("body", "field"), [
    ({"count": 0}, "count"),
    ({"count": 100_001}, "count"),
    ({"count": "5"}, "count"),
    ({"count": 5, "length": 3}, "length"),
    ({"count": 5, "length": 33}, "length"),
    ({"count": 5, "prefix": "ABCDEFGHIJKL", "length": 12}, "prefix"),
    ({"count": 5, "prefix": "AB!"}, "prefix"),
    ({"count": 5, "max_total_uses": 0}, "max_total_uses"),
    ({"count": 5, "code": "CHOSEN-CODE"}, "code"),
    ({}, "count"),
    ({"prefix": "AB"}, "count"),
    ({"count": 5, "colour": "red"}, "colour"),
])
def test_a_bad_generation_request_is_400_naming_the_field_and_inserts_nothing(
    api: Api, campaign: dict[str, Any], container: Container, body: dict[str, Any], field: str
) -> None:
    before = stored_counts(container)
    err = assert_error(api.post(codes_path(campaign["id"]), body), 400, "VALIDATION_ERROR")
    assert [d["field"] for d in err["details"]] == [field]
    assert stored_counts(container) == before


def test_a_body_that_is_not_an_object_is_400(api: Api, campaign: dict[str, Any]) -> None:
    err = assert_error(api.post(codes_path(campaign["id"]), [1]), 400, "VALIDATION_ERROR")
    assert err["details"] == [{"field": "body", "message": "must be a JSON object"}]


def test_codes_into_an_unknown_campaign_are_404(api: Api) -> None:
    assert_error(api.post(codes_path(999), {"count": 2}), 404, "NOT_FOUND")
    assert_error(api.post(codes_path(999), {"code": "CHOSEN-CODE"}), 404, "NOT_FOUND")
    assert_error(api.post(codes_path(10**30), {"count": 2}), 404, "NOT_FOUND")


def test_codes_into_an_expired_campaign_are_409_invalid_transition(api: Api, clock: ManualClock,
                                                                   container: Container) -> None:
    c = api.create_campaign(valid_until=(T0 + timedelta(days=1)).isoformat())
    clock.advance(days=2)
    container.maintenance_service().rollover_campaign_statuses()
    assert api.get(f"/internal/promo/campaigns/{c['id']}").json["status"] == "EXPIRED"
    assert_error(api.post(codes_path(c["id"]), {"count": 2}), 409, "INVALID_TRANSITION")
    assert_error(api.post(codes_path(c["id"]), {"code": "LATE-CODE"}), 409, "INVALID_TRANSITION")


# --- code: one chosen code -----------------------------------------------------------------------------------


def test_one_chosen_code_answers_201_with_its_row(api: Api, campaign: dict[str, Any]) -> None:
    r = api.post(codes_path(campaign["id"]), {"code": "Anna-Loves-Stars", "max_total_uses": 50},
                 headers={"X-Actor": "ops:ben"})
    assert r.status_code == 201 and r.mimetype == "application/json"
    code = r.json
    assert code["campaign_id"] == campaign["id"] and code["max_total_uses"] == 50
    assert code["code_hash"] == hmac_hash(PEPPER, "ANNALOVESSTARS") and code["code_prefix"] == "ANNA"
    assert "ANNALOVESSTARS" not in r.get_data(as_text=True).upper().replace("-", "")
    assert api.redeem(5, "anna loves stars", "k5").status_code == 200
    entry = api.get("/internal/promo/audit?action=code.created").json["items"][0]
    assert entry["actor"] == "ops:ben" and entry["target_id"] == str(code["id"])
    assert "ANNA" in entry["details"]["code_prefix"] and "LOVES" not in repr(entry).upper()


def test_a_chosen_code_that_exists_is_409_code_exists_and_nothing_is_added(
    api: Api, campaign: dict[str, Any], container: Container
) -> None:
    api.create_campaign("TAKEN-CODE")
    before = stored_counts(container)
    err = assert_error(api.post(codes_path(campaign["id"]), {"code": "taken code"}), 409, "CODE_EXISTS")
    assert err["details"] == {"field": "code"}
    assert stored_counts(container) == before


@pytest.mark.parametrize(("body", "field"), [
    ({"code": "x!"}, "code"),
    ({"code": "A" * 257}, "code"),
    ({"code": 1234}, "code"),
    ({"code": "GOOD-CODE", "max_total_uses": 0}, "max_total_uses"),
    ({"code": "GOOD-CODE", "prefix": "AB"}, "prefix"),
])
def test_a_bad_chosen_code_is_400_naming_the_field(api: Api, campaign: dict[str, Any], body: dict[str, Any],
                                                   field: str) -> None:
    err = assert_error(api.post(codes_path(campaign["id"]), body), 400, "VALIDATION_ERROR")
    assert [d["field"] for d in err["details"]] == [field]
