"""Every failure is the SPEC 7 JSON error body: never HTML, never a stack trace."""

from __future__ import annotations

import json

from dependency_injector import providers
from flask import Flask

from adapters.memory import ManualClock
from entrypoints.http import create_app
from tests.unit.http.conftest import AUTH, Api, assert_error, make_container

REDEEM = "/internal/promo/redeem"


def test_malformed_json_is_400_validation_error(api: Api) -> None:
    r = api.client.post(REDEEM, data=b'{"user_id": 1,', headers={**AUTH, "Content-Type": "application/json"})
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert [d["field"] for d in err["details"]] == ["body"]
    assert "malformed JSON" in err["details"][0]["message"]


def test_a_body_that_is_not_an_object_is_400(api: Api) -> None:
    err = assert_error(api.post(REDEEM, [1, 2]), 400, "VALIDATION_ERROR")
    assert err["details"] == [{"field": "body", "message": "must be a JSON object"}]


def test_one_entry_per_bad_field(api: Api) -> None:
    r = api.post(REDEEM, {"user_id": "7", "code": 1234, "idempotency_key": "k", "extra": True})
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert {d["field"]: d["message"] for d in err["details"]} == {
        "user_id": "must be an integer",
        "code": "must be a string",
        "extra": "unknown field",
    }


def test_missing_fields_are_each_named(api: Api) -> None:
    err = assert_error(api.post(REDEEM, {}), 400, "VALIDATION_ERROR")
    assert sorted(d["field"] for d in err["details"]) == ["code", "idempotency_key", "user_id"]


def test_domain_validation_errors_are_per_field_too(api: Api) -> None:
    r = api.post(REDEEM, {"user_id": 0, "code": "ABCD1234", "idempotency_key": "bad key!"})
    err = assert_error(r, 400, "VALIDATION_ERROR")
    assert sorted(d["field"] for d in err["details"]) == ["idempotency_key", "user_id"]


def test_booleans_are_not_integers(api: Api) -> None:
    err = assert_error(api.post(REDEEM, {"user_id": True, "code": "ABCD1234", "idempotency_key": "k"}),
                       400, "VALIDATION_ERROR")
    assert err["details"] == [{"field": "user_id", "message": "must be an integer"}]


def test_lone_surrogates_and_nul_are_refused_not_500(api: Api) -> None:
    raw = b'{"user_id": 1, "code": "\\ud800ABCD", "idempotency_key": "k"}'
    err = assert_error(api.client.post(REDEEM, data=raw, headers=AUTH), 400, "VALIDATION_ERROR")
    assert err["details"][0]["field"] == "code"
    err = assert_error(api.post(REDEEM, {"user_id": 1, "code": "AB\x00CD", "idempotency_key": "k"}),
                       400, "VALIDATION_ERROR")
    assert err["details"][0]["field"] == "code"


def test_a_70_kb_body_is_413_json(api: Api) -> None:
    body = json.dumps({"user_id": 1, "code": "X" * 70_000, "idempotency_key": "k"})
    r = api.client.post(REDEEM, data=body, headers={**AUTH, "Content-Type": "application/json"})
    err = assert_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert "65536" in err["message"]


def test_unknown_route_is_404_json(app: Flask) -> None:
    assert_error(app.test_client().get("/nope"), 404, "NOT_FOUND")


def test_wrong_method_is_405_json_with_allow(api: Api) -> None:
    r = api.client.put("/internal/promo/redeem", headers=AUTH)
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in r.headers["Allow"]


def test_an_unexpected_failure_is_500_json_without_details(clock: ManualClock) -> None:
    class Exploding:
        def redeem(self, *args: object) -> None:
            raise RuntimeError("secret internals PLAINTEXTCODE")

    container = make_container(clock)
    container.redemption_service.override(providers.Object(Exploding()))
    api = Api(create_app(container).test_client())
    r = api.redeem(1, "ABCD1234", "k")
    err = assert_error(r, 500, "INTERNAL_ERROR")
    assert err["message"] == "internal error" and err["details"] is None
    assert "secret internals" not in r.get_data(as_text=True)
