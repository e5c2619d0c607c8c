"""Building blocks of the operations of the OpenAPI document: references, errors every operation can answer, and
``op`` for one operation (its request body named after a shape of ``entrypoints.http.inputs``, its answers shapes of
``entrypoints.http.outputs``). No schema of a body or an answer is written here: they are generated from the classes
that check the requests and write the answers."""

from __future__ import annotations

from typing import Any

from domain.audit import MAX_ACTOR
from entrypoints.http import outputs
from entrypoints.http.actor import ACTOR_HEADER, ACTOR_RULE, DEFAULT_ACTOR
from entrypoints.http.convert import MAX_INT64
from entrypoints.http.shapes import query_parameters, schema_name

JSON = "application/json"
CSV = "text/csv"

ID: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_INT64}


def ref(target: str | type) -> dict[str, str]:
    """A reference to a component: a request schema by name, or an answer by its ``outputs`` class."""
    return {"$ref": f"#/components/schemas/{target if isinstance(target, str) else schema_name(target)}"}


def as_json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def error(description: str) -> dict[str, Any]:
    return as_json(ref(outputs.Error), description)


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
