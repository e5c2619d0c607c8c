"""Building blocks of the OpenAPI document: references, nullable types, errors every operation can answer, and
``op`` for one operation (its request body named after a shape of ``entrypoints.http.inputs``)."""

from __future__ import annotations

from typing import Any

from domain.audit import MAX_ACTOR
from entrypoints.http.actor import ACTOR_HEADER, ACTOR_RULE, DEFAULT_ACTOR
from entrypoints.http.convert import MAX_INT64
from entrypoints.http.shapes import query_parameters

JSON = "application/json"
CSV = "text/csv"

DATE_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
RATE: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1}
ID: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_INT64}
HASH: dict[str, Any] = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null (a ``$ref`` becomes ``anyOf``)."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = dict(schema)
    out["type"] = [out.pop("type"), "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def enum_of(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": [getattr(v, "value", v) for v in values]}


def obj(properties: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    """An object with exactly these properties, every one present."""
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "required": list(properties),
                           "properties": properties}
    if description:
        out["description"] = description
    return out


def counts_by(keys: Any, description: str | None = None) -> dict[str, Any]:
    """``{key: count}`` with every key present, zeros included."""
    return obj({getattr(k, "value", k): COUNT for k in keys}, description)


def page_of(item: str) -> dict[str, Any]:
    return obj({"items": {"type": "array", "items": ref(item)},
                "next_cursor": nullable({**ID, "description": "pass as cursor for the next page; null: last page"})})


def as_json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def error(description: str) -> dict[str, Any]:
    return as_json(ref("Error"), description)


# Every /internal/* operation can answer these.
INTERNAL_ERRORS: dict[str, Any] = {
    "401": error("Missing or wrong X-Internal-Token"),
    "403": error("Client address outside INTERNAL_IP_ALLOWLIST"),
    "500": error("Internal error (never a stack trace)"),
}
BODY_ERRORS: dict[str, Any] = {
    "400": error("VALIDATION_ERROR: malformed JSON or fields; one details entry per bad field"),
    "413": error("Body larger than 64 KiB"),
}
QUERY_ERROR: dict[str, Any] = {"400": error("VALIDATION_ERROR: a bad query parameter; one details entry each")}

ACTOR_PARAM: dict[str, Any] = {
    "name": ACTOR_HEADER, "in": "header", "required": False,
    "description": f"who makes the change, for the audit log (default {DEFAULT_ACTOR!r}); {ACTOR_RULE}, UTF-8",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ACTOR},
}


def path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {**ID, "examples": [1]}}


def op(summary: str, responses: dict[str, Any], *, op_id: str, tags: list[str], body: str | None = None,
       body_required: bool = True, query: type | None = None, params: list[Any] | None = None,
       changes: bool = False, description: str | None = None) -> dict[str, Any]:
    """One operation. ``body``: the name of its request schema; ``query``: the shape of its query string;
    ``changes``: it changes something (the ``X-Actor`` header names who, for the audit log)."""
    out: dict[str, Any] = {"summary": summary, "operationId": op_id, "tags": tags}
    if description:
        out["description"] = description
    parameters = [*(params or []), *(query_parameters(query) if query else []), *([ACTOR_PARAM] if changes else [])]
    if parameters:
        out["parameters"] = parameters
    out["responses"] = {}
    if body:
        out["requestBody"] = {"required": body_required, "content": {JSON: {"schema": ref(body)}}}
        out["responses"].update(BODY_ERRORS)
    if query or changes:
        out["responses"].update(QUERY_ERROR if not body else {})
    out["responses"].update(responses)
    out["responses"].update(INTERNAL_ERRORS)
    return out
