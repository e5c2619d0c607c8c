"""The OpenAPI document is generated from the classes that check the requests (``inputs``) and write the answers
(``outputs``): it is valid OpenAPI 3.1, a limit changed on its field changes the checks and the document together,
and an answer has exactly the members its class (and so its schema) declares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from adapters.memory import ManualClock
from domain.model import CampaignStatus
from entrypoints.http import create_app, inputs, outputs
from entrypoints.http.openapi import document
from entrypoints.http.shapes import dump, limits, response_schema
from tests.unit.http.conftest import Api, assert_error, make_container


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises on any error


def test_the_validator_would_catch_a_broken_document() -> None:
    """So the test above can fail: a schema with a type JSON Schema does not know is refused."""
    doc = document()
    doc["components"]["schemas"]["Campaign"]["properties"]["id"]["type"] = "int64"
    with pytest.raises(OpenAPIValidationError, match="int64"):
        validate(doc)


def test_the_served_document_is_the_generated_one(clock: ManualClock) -> None:
    served = Api(create_app(make_container(clock)).test_client()).get("/internal/openapi.json").json
    validate(served)
    assert served["components"]["schemas"] == document()["components"]["schemas"]


# --- one place per field and rule ----------------------------------------------------------------------------


def _with_limits(monkeypatch: pytest.MonkeyPatch, cls: type, field: str, **schema: Any) -> None:
    """Change ``cls.field``'s declared limits, the one place they are written (the attrs field's metadata)."""
    def changed(a: attrs.Attribute[Any]) -> attrs.Attribute[Any]:
        if a.name != field:
            return a
        return a.evolve(metadata={**a.metadata, "schema": {**a.metadata["schema"], **schema}})

    monkeypatch.setattr(cls, "__attrs_attrs__", tuple(changed(a) for a in attrs.fields(cls)))


def test_a_query_limit_changed_in_one_place_changes_the_checks_and_the_document(
        monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> None:
    before = {p["name"]: p for p in document()["paths"]["/internal/promo/codes"]["get"]["parameters"]}
    assert before["limit"]["schema"]["maximum"] == 200
    _with_limits(monkeypatch, inputs.CodeQuery, "limit", maximum=7)
    api = Api(create_app(make_container(clock)).test_client())

    params = {p["name"]: p for p in api.get("/internal/openapi.json").json["paths"]["/internal/promo/codes"]["get"][
        "parameters"]}
    assert params["limit"]["schema"]["maximum"] == 7
    assert api.get("/internal/promo/codes?limit=7").status_code == 200
    err = assert_error(api.get("/internal/promo/codes?limit=8"), 400, "VALIDATION_ERROR")
    assert err["details"] == [{"field": "limit", "message": "must be an integer 1..7"}]


def test_a_body_limit_changed_in_one_place_changes_the_checks_and_the_document(
        monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> None:
    _with_limits(monkeypatch, inputs.RedeemRequest, "user_id", maximum=1000)
    api = Api(create_app(make_container(clock)).test_client())

    user_id = api.get("/internal/openapi.json").json["components"]["schemas"]["RedeemRequest"]["properties"][
        "user_id"]
    assert user_id["maximum"] == 1000
    assert api.redeem(1000, "NOSUCHCODE", "k-1000").status_code == 404  # within the limit: checked, not found
    err = assert_error(api.redeem(1001, "NOSUCHCODE", "k-1001"), 400, "VALIDATION_ERROR")
    assert [d["field"] for d in err["details"]] == ["user_id"]


# --- answers: the class is the member list and the schema ---------------------------------------------------


@attrs.frozen
class Shown:
    """A sample answer."""

    id: int = attrs.field(metadata=limits(minimum=1))
    at: datetime
    status: CampaignStatus
    note: str | None = attrs.field(metadata=limits(description="may be null"))
    window: outputs.Window
    tags: list[str]
    by_status: dict[str, int] = attrs.field(metadata=outputs.counts(CampaignStatus))


@attrs.frozen
class Row:
    """What a domain object looks like: more attributes than the answer shows."""

    id: int
    at: datetime
    status: CampaignStatus
    note: str | None
    tags: tuple[str, ...]
    secret: str = "never shown"


T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = {"from": "2026-03-01T11:00:00Z", "to": "2026-03-01T12:00:00Z", "hours": 1}
BY_STATUS = {CampaignStatus.ACTIVE: 2, CampaignStatus.PAUSED: 0, CampaignStatus.EXPIRED: 1,
             CampaignStatus.DEPLETED: 0}


def test_an_answer_has_exactly_its_declared_members_written_as_json() -> None:
    shown = dump(Shown, Row(7, T, CampaignStatus.PAUSED, None, ("a", "b")), window=WINDOW, by_status=BY_STATUS)
    assert shown == {"id": 7, "at": "2026-03-01T12:00:00Z", "status": "PAUSED", "note": None, "window": WINDOW,
                     "tags": ["a", "b"], "by_status": {"ACTIVE": 2, "PAUSED": 0, "EXPIRED": 1, "DEPLETED": 0}}


def test_the_schema_of_an_answer_accepts_what_dump_writes_and_lists_every_member() -> None:
    schema = response_schema(Shown)
    assert schema["required"] == ["id", "at", "status", "note", "window", "tags", "by_status"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["window"] == {"$ref": "#/components/schemas/Window"}
    assert schema["properties"]["by_status"]["required"] == ["ACTIVE", "PAUSED", "EXPIRED", "DEPLETED"]
    schema["properties"]["window"] = response_schema(outputs.Window)
    validator = Draft202012Validator(schema)
    shown = dump(Shown, Row(7, T, CampaignStatus.PAUSED, None, ()), window=WINDOW, by_status=BY_STATUS)
    assert list(validator.iter_errors(shown)) == []
    assert list(validator.iter_errors({**shown, "secret": "x"}))  # a member the class does not declare
    assert list(validator.iter_errors({**shown, "id": 0}))  # a declared limit


def test_a_mapping_with_a_member_the_answer_does_not_declare_is_refused() -> None:
    """Domain documents (the dashboard) are dicts: a key added there without adding it to the answer's class is a
    mistake the tests see, never a member sent undocumented."""
    with pytest.raises(TypeError, match="Window does not declare"):
        dump(outputs.Window, {**WINDOW, "days": 0})
    with pytest.raises(KeyError):
        dump(outputs.Window, {"from": WINDOW["from"], "hours": 1})
