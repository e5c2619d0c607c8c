"""Request and response shapes declared once: an attrs class per body, query or answer whose fields carry their
JSON Schema limits and descriptions (``limits``).

The same declaration
- validates a request (types through the converter, then the declared limits: one entry per bad field),
- writes an answer (``dump``: each field by name from the domain object or mapping it comes from),
- produces its OpenAPI schema (``body_schema``, ``response_schema``, ``components``) or its query parameters
  (``query_parameters``).

So the document schemathesis fuzzes is, by construction, what the API checks and what it answers: a field or a
limit is written in one place. The domain still owns the rules that need more than one field or the store (terms
by promo type, names taken, budgets below ``used_total``).
"""

from __future__ import annotations

import enum
import functools
import re
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import attrs

from entrypoints.http.convert import MAX_INT64, Problems, check_text, format_datetime, structure_value, try_structure

T = TypeVar("T")

# JSON Schema keywords a field may carry; ``message`` (ours) replaces the generated error message. ``keys`` (ours):
# a ``dict`` field's object has exactly these keys (counts by status: every status, zeros included), each value as
# ``values`` (ours) says.
_SCHEMA_KEYS = ("description", "minimum", "maximum", "minLength", "maxLength", "pattern", "maxItems",
                "uniqueItems", "items", "enum", "const", "default", "examples", "format", "keys", "values")


def limits(*, message: str | None = None, json_name: str | None = None, **schema: Any) -> dict[str, Any]:
    """An attrs field's metadata: JSON Schema limits (``minimum=1``, ``maxLength=200``, ``pattern=...``,
    ``enum=[...]`` to narrow an enum, ``items={...}`` for list items, ``const``, ``description``). ``message`` is
    the error text for any limit the value breaks (default: one made from the limits); ``json_name`` the member's
    name when it cannot be a Python name (``from``).
    ``attrs.field(default=None, metadata=limits(minimum=1))``."""
    unknown = set(schema) - set(_SCHEMA_KEYS)
    if unknown:
        raise TypeError(f"unknown schema keywords: {sorted(unknown)}")
    return {"schema": schema, "message": message, "json_name": json_name}


def json_name(attribute: attrs.Attribute[Any]) -> str:
    name: str | None = attribute.metadata.get("json_name")
    return name or attribute.name


def schema_name(cls: type) -> str:
    """The name of ``cls``'s schema under ``components/schemas``: ``SCHEMA_NAME`` when it sets one, else its own."""
    name: str = cls.__dict__.get("SCHEMA_NAME", cls.__name__)
    return name


def ref(cls: type) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema_name(cls)}"}


# --- types -> JSON Schema ------------------------------------------------------------------------


def _is_optional(type_: Any) -> tuple[bool, Any]:
    args = typing.get_args(type_)
    if typing.get_origin(type_) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return True, rest[0]
    return False, type_


def _base_schema(type_: Any) -> dict[str, Any]:
    if type_ is bool:
        return {"type": "boolean"}
    if type_ is int:
        return {"type": "integer", "minimum": -MAX_INT64 - 1, "maximum": MAX_INT64}
    if type_ is float:
        return {"type": "number"}
    if type_ is str:
        return {"type": "string"}
    if type_ is datetime:
        return {"type": "string", "format": "date-time"}
    if type_ is Any:
        return {}
    if isinstance(type_, type) and issubclass(type_, enum.Enum):
        return {"type": "string", "enum": [m.value for m in type_]}
    if isinstance(type_, type) and attrs.has(type_):
        return ref(type_)
    if typing.get_origin(type_) is list:
        (item,) = typing.get_args(type_)
        return {"type": "array", "items": _base_schema(item)}
    if typing.get_origin(type_) is dict:
        _, value = typing.get_args(type_)
        return {"type": "object", "additionalProperties": _base_schema(value)}
    raise TypeError(f"no JSON Schema for {type_!r}")


def _field_schema(attribute: attrs.Attribute[Any]) -> dict[str, Any]:
    optional, inner = _is_optional(attribute.type)
    schema = _base_schema(inner)
    declared: dict[str, Any] = dict(attribute.metadata.get("schema", {}))
    if "items" in declared:
        schema["items"] = {**schema["items"], **declared.pop("items")}
    values = {**schema.get("additionalProperties", {}), **declared.pop("values", {})}
    if "keys" in declared:  # every key present, none other
        keys = [getattr(k, "value", k) for k in declared.pop("keys")]
        schema.update(additionalProperties=False, required=keys, properties=dict.fromkeys(keys, values))
    elif "additionalProperties" in schema:
        schema["additionalProperties"] = values
    schema.update(declared)
    if optional and ("type" not in schema or "$ref" in schema):
        described = {"description": schema.pop("description")} if "description" in schema else {}
        schema = {"anyOf": [schema, {"type": "null"}], **described}
    elif optional:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    if attribute.default is not attrs.NOTHING and "default" not in schema:
        default = attribute.default
        factory = getattr(default, "factory", None)
        if factory is not None:
            default = factory()
        if isinstance(default, enum.Enum):
            default = default.value
        if default is None or isinstance(default, int | str | list):
            schema["default"] = default
    return schema


def _fields(cls: type) -> tuple[attrs.Attribute[Any], ...]:
    attrs.resolve_types(cls)
    fields: tuple[attrs.Attribute[Any], ...] = attrs.fields(cls)
    return fields


def body_schema(cls: type, *, all_optional: bool = False) -> dict[str, Any]:
    """The OpenAPI schema of a JSON body shaped as ``cls``: unknown fields refused, as the converter does."""
    fields = _fields(cls)
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False}
    if cls.__doc__:
        schema["description"] = " ".join(cls.__doc__.split())
    required = [] if all_optional else [json_name(a) for a in fields if a.default is attrs.NOTHING]
    if required:
        schema["required"] = required
    schema["properties"] = {json_name(a): _field_schema(a) for a in fields}
    examples = getattr(cls, "EXAMPLES", None)
    if examples:
        schema["examples"] = examples
    return schema


def response_schema(cls: type) -> dict[str, Any]:
    """The OpenAPI schema of an answer shaped as ``cls`` (``dump``): every field without a default is always there
    (null where its type allows), and nothing else is; a field with a default is there when the handler gives it."""
    schema = body_schema(cls)
    for member in schema["properties"].values():
        member.pop("default", None)
    return schema


def components(*classes: type) -> dict[str, dict[str, Any]]:
    """``components/schemas`` for ``classes`` and every attrs class their fields refer to, by ``schema_name``."""
    out: dict[str, dict[str, Any]] = {}
    todo = list(classes)
    while todo:
        cls = todo.pop(0)
        name = schema_name(cls)
        if name in out:
            continue
        out[name] = response_schema(cls)
        todo += [t for a in _fields(cls) for t in _attrs_classes(a.type)]
    return out


def _attrs_classes(type_: Any) -> list[type]:
    if isinstance(type_, type) and attrs.has(type_):
        return [type_]
    return [c for arg in typing.get_args(type_) for c in _attrs_classes(arg)]


# --- answers: an attrs class's fields, by name, from what the domain returns ---------------------------------


def dump(cls: type, source: object = None, /, **given: Any) -> dict[str, Any]:
    """The JSON object of an answer shaped as ``cls``: each field from ``given``, else the attribute (or, for a
    mapping, the key) of ``source`` with the field's JSON name; datetimes as ISO 8601 UTC, enums as their values,
    nested shapes dumped the same way. A field with a default that neither gives is left out; a mapping with a
    key ``cls`` does not declare is a mistake (TypeError), never passed on undocumented."""
    names, plan = _dump_plan(cls)
    mapping = source if isinstance(source, Mapping) else None
    if mapping is not None and not names.issuperset(mapping):
        raise TypeError(f"{schema_name(cls)} does not declare {sorted(set(mapping) - names)}")
    out: dict[str, Any] = {}
    for name, write, optional in plan:
        if name in given:
            value = given[name]
        elif mapping is not None:
            if optional and name not in mapping:
                continue
            value = mapping[name]
        elif optional and not hasattr(source, name):
            continue
        else:
            value = getattr(source, name)
        out[name] = value if write is None or value is None else write(value)
    return out


Writer = Callable[[Any], Any]


@functools.cache
def _dump_plan(cls: type) -> tuple[frozenset[str], list[tuple[str, Writer | None, bool]]]:
    """The member names of ``cls`` and, per member, its name, how its value is written (None: as it is) and
    whether it may be left out. Built once per class: the redeem answer is written on the hot path."""
    plan = [(json_name(a), _writer(a.type), a.default is not attrs.NOTHING) for a in _fields(cls)]
    return frozenset(name for name, _, _ in plan), plan


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _writer(type_: Any) -> Writer | None:
    """How a non-null value of ``type_`` becomes JSON (built once per field); None: it is JSON already."""
    _, inner = _is_optional(type_)
    if inner in (int, bool, float, Any):
        return None
    if isinstance(inner, type) and attrs.has(inner):
        nested = inner
        return lambda value: dump(nested, value)
    origin = typing.get_origin(inner)
    if origin is list:
        item = _writer(typing.get_args(inner)[0]) or _same
        return lambda value: [None if v is None else item(v) for v in value]
    if origin is dict:
        each = _writer(typing.get_args(inner)[1]) or _same
        return lambda value: {str(_plain(k)): None if v is None else each(v) for k, v in value.items()}
    return _plain  # text, date-times, enums (a str member may be given a StrEnum)


def _same(value: Any) -> Any:
    return value


def query_parameters(cls: type) -> list[dict[str, Any]]:
    """The OpenAPI query parameters of a query shaped as ``cls`` (every one optional)."""
    out = []
    for a in _fields(cls):
        schema = _field_schema(a)
        _, inner = _is_optional(a.type)
        schema["type"] = _base_schema(inner)["type"]
        if "enum" in schema:
            schema["enum"] = [v for v in schema["enum"] if v is not None]
        if schema.get("default", 0) is None:
            del schema["default"]
        param: dict[str, Any] = {"name": a.name, "in": "query", "required": False}
        if "description" in schema:
            param["description"] = schema.pop("description")
        param["schema"] = schema
        out.append(param)
    return out


# --- the declared limits, checked ----------------------------------------------------------------


def _range_text(schema: Mapping[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f"must be an integer {low}..{high}"
    return f"must be at least {low}" if low is not None else f"must be at most {high}"


def _length_text(schema: Mapping[str, Any], what: str = "characters") -> str:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if high is None:
        return "must not be empty" if low == 1 else f"must be at least {low} {what}"
    return f"must be {low}..{high} {what}" if low else f"must be at most {high} {what}"


def _limit_problem(value: Any, schema: Mapping[str, Any]) -> str | None:
    """What ``value`` (already of the field's type) breaks of ``schema``'s limits, or None."""
    if value is None:
        return None
    if "enum" in schema:
        allowed = [v for v in schema["enum"] if v is not None]
        plain = value.value if isinstance(value, enum.Enum) else value
        return None if plain in allowed else "must be one of " + ", ".join(map(str, allowed))
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            return _range_text(schema)
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            return _length_text(schema)
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return f"must match {schema['pattern']}"
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"at most {schema['maxItems']} items"
        if schema.get("uniqueItems") and len(set(map(repr, value))) != len(value):
            return "must not repeat an item"
        for i, item in enumerate(value):
            problem = _limit_problem(item, schema.get("items", {}))
            if problem:
                return f"item {i}: {problem}"
    return None


def limit_problems(instance: object) -> Problems:
    """One entry per field of ``instance`` whose value breaks its declared limits."""
    out: Problems = []
    for a in _fields(type(instance)):
        problem = _limit_problem(getattr(instance, a.name), _field_schema(a))
        if problem:
            out.append({"field": a.name, "message": a.metadata.get("message") or problem})
    return out


def _raw_limit_problems(cls: type, data: Mapping[str, Any], skip: set[str]) -> Problems:
    """Limits of the fields of ``data`` that did parse, when another field did not (so one answer lists all)."""
    out: Problems = []
    for a in _fields(cls):
        if a.name in skip or a.name not in data:
            continue
        value, bad = structure_value(data[a.name], a.type, a.name)
        problem = None if bad else _limit_problem(value, _field_schema(a))
        if problem:
            out.append({"field": a.name, "message": a.metadata.get("message") or problem})
    return out


def merge(*groups: Problems) -> Problems:
    """The problems of every group, each field once (the first group's word wins)."""
    seen: set[str] = set()
    out: Problems = []
    for group in groups:
        for p in group:
            if p["field"] not in seen:
                seen.add(p["field"])
                out.append(p)
    return out


def parse_body(data: Any, cls: type[T]) -> tuple[T | None, Problems]:
    """``data`` (parsed JSON) as ``cls`` and the problems (one per field): the instance is None when a field did
    not parse; with only broken limits it is there too (for further checks), but the request is still bad."""
    if not isinstance(data, dict):
        return None, [{"field": "body", "message": "must be a JSON object"}]
    instance, problems = try_structure(data, cls)
    if instance is None:
        reported = {p["field"] for p in problems}
        return None, merge(problems, _raw_limit_problems(cls, data, reported))
    return instance, limit_problems(instance)


def parse_partial(data: Any, cls: type) -> tuple[dict[str, Any], Problems]:
    """The fields ``data`` gives, each as its ``cls`` field's type and within its limits: a PATCH body, where an
    absent field stays as it is and ``null`` is a value."""
    if not isinstance(data, dict):
        return {}, [{"field": "body", "message": "must be a JSON object"}]
    fields = {a.name: a for a in _fields(cls)}
    values: dict[str, Any] = {}
    problems: Problems = [{"field": k, "message": "unknown field"} for k in data if k not in fields]
    for name, value in data.items():
        a = fields.get(name)
        if a is None:
            continue
        parsed, bad = structure_value(value, a.type, name)
        problem = None if bad else _limit_problem(parsed, _field_schema(a))
        if bad:
            problems += bad
        elif problem:
            problems.append({"field": name, "message": a.metadata.get("message") or problem})
        else:
            values[name] = parsed
    return values, problems


_INTEGER = re.compile(r"^-?[0-9]{1,19}$")


def _query_value(raw: str, type_: Any) -> Any:
    """A query string value as ``type_``; ValueError with the message otherwise."""
    if type_ is int:
        if not raw.isascii() or not _INTEGER.fullmatch(raw):
            raise ValueError("must be an integer")
        return int(raw)
    if isinstance(type_, type) and issubclass(type_, enum.Enum):
        try:
            return type_(raw)
        except ValueError:
            raise ValueError("must be one of " + ", ".join(m.value for m in type_)) from None
    return check_text(raw)


def parse_query(args: Mapping[str, str], cls: type[T]) -> tuple[T | None, Problems]:
    """A query shaped as ``cls`` (unknown parameters ignored; an empty string is an absent text filter)."""
    values: dict[str, Any] = {}
    problems: Problems = []
    for a in _fields(cls):
        raw = args.get(a.name)
        if raw is None:
            continue
        _, inner = _is_optional(a.type)
        if raw == "" and inner is str:
            continue
        try:
            value = _query_value(raw, inner)
        except ValueError as exc:
            problems.append({"field": a.name, "message": a.metadata.get("message") or str(exc)})
            continue
        problem = _limit_problem(value, _field_schema(a))
        if problem:
            problems.append({"field": a.name, "message": a.metadata.get("message") or problem})
        else:
            values[a.name] = value
    if problems:
        return None, problems
    return cls(**values), []
