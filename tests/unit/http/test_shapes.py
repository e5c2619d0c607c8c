"""One declaration per request shape gives both its checks and its OpenAPI schema (``entrypoints.http.shapes``)."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs

from domain.model import CampaignStatus
from entrypoints.http.shapes import body_schema, limits, parse_body, parse_partial, parse_query, query_parameters


@attrs.frozen
class Sample:
    """A sample body."""

    count: int = attrs.field(metadata=limits(minimum=1, maximum=10))
    status: CampaignStatus = attrs.field(metadata=limits(enum=["ACTIVE", "PAUSED"]))
    note: str | None = attrs.field(default=None, metadata=limits(maxLength=3, message="short notes only"))
    tags: list[str] = attrs.field(factory=list, metadata=limits(maxItems=2, items={"minLength": 1}))
    until: datetime | None = None


def test_the_schema_says_what_the_checks_enforce() -> None:
    schema = body_schema(Sample)
    assert schema["additionalProperties"] is False and schema["required"] == ["count", "status"]
    assert schema["description"] == "A sample body."
    props = schema["properties"]
    assert props["count"] == {"type": "integer", "minimum": 1, "maximum": 10}
    assert props["status"] == {"type": "string", "enum": ["ACTIVE", "PAUSED"]}
    assert props["note"] == {"type": ["string", "null"], "maxLength": 3, "default": None}
    assert props["tags"] == {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 2,
                             "default": []}
    assert props["until"]["type"] == ["string", "null"] and props["until"]["format"] == "date-time"


def test_a_body_within_the_limits_parses() -> None:
    sample, problems = parse_body({"count": 10, "status": "PAUSED", "until": "2026-01-01T01:00:00+01:00"}, Sample)
    assert problems == [] and sample == Sample(10, CampaignStatus.PAUSED, until=datetime(2026, 1, 1, tzinfo=UTC))


def test_every_bad_field_is_one_problem_whether_it_broke_its_type_or_its_limit() -> None:
    _, problems = parse_body({"count": "3", "status": "EXPIRED", "note": "long", "tags": ["a", ""], "x": 1}, Sample)
    assert {p["field"]: p["message"] for p in problems} == {
        "count": "must be an integer",
        "x": "unknown field",
        "status": "must be one of ACTIVE, PAUSED",
        "note": "short notes only",
        "tags": "item 1: must not be empty",
    }


def test_a_partial_body_tells_an_absent_field_from_null() -> None:
    values, problems = parse_partial({"note": None, "count": 11}, Sample)
    assert values == {"note": None} and problems == [{"field": "count", "message": "must be an integer 1..10"}]
    assert parse_partial({}, Sample) == ({}, [])


def test_a_query_parses_text_into_the_declared_types() -> None:
    sample, problems = parse_query({"count": "7", "status": "ACTIVE", "note": ""}, Sample)
    assert problems == [] and sample is not None and (sample.count, sample.note) == (7, None)
    _, problems = parse_query({"count": "1.5", "status": "GONE"}, Sample)
    assert [p["field"] for p in problems] == ["count", "status"]


def test_query_parameters_are_documented_without_null() -> None:
    params = {p["name"]: p for p in query_parameters(Sample)}
    assert params["note"]["schema"] == {"type": "string", "maxLength": 3}
    assert all(p["in"] == "query" and p["required"] is False for p in params.values())
