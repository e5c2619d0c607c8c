"""The one cattrs converter of the HTTP layer: reads request JSON strictly and writes response JSON.

Reading is strict: a JSON number is not a string, ``true`` is not ``1``, unknown fields are refused,
and every problem becomes one ``{"field", "message"}`` entry (``cattrs.transform_error``).
"""

from __future__ import annotations

import enum
import json
import re
from datetime import UTC, datetime
from typing import Any, TypeVar

import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from domain.model import CampaignStatus, PausedReason, PromoType, TargetScope
from entrypoints.http.errors import validation_error

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

MAX_INT64 = 2**63 - 1
# Counters live in 32-bit columns on every database family.
MAX_INT32 = 2**31 - 1

Problems = list[dict[str, str]]


def _strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    if not -MAX_INT64 - 1 <= value <= MAX_INT64:
        raise ValueError("must fit in 64 bits")
    return value


def check_text(value: str) -> str:
    """``value`` when the database can store it: no NUL, no lone surrogate; else ValueError."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 (no lone surrogates)") from None
    return value


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return check_text(value)


def _strict_str_list(value: Any, _: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("must be a list of strings")
    out: list[str] = []
    for i, item in enumerate(value):
        try:
            out.append(_strict_str(item, str))
        except ValueError as exc:
            raise ValueError(f"item {i}: {exc}") from None
    return out


def _strict_enum(value: Any, cls: type[E]) -> E:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    try:
        return cls(value)
    except ValueError:
        raise ValueError("must be one of " + ", ".join(m.value for m in cls)) from None


def parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("must be an ISO 8601 date-time string with a timezone")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time string with a timezone") from None
    if parsed.utcoffset() is None:
        raise ValueError("must carry a timezone (e.g. 2026-01-31T00:00:00Z)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


def format_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


ENUMS: tuple[type[enum.Enum], ...] = (PromoType, TargetScope, CampaignStatus, PausedReason)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(str, _strict_str)
    # The str hook would also catch these StrEnums (subclasses); the more specific hook wins.
    for enum_cls in ENUMS:
        conv.register_structure_hook(enum_cls, _strict_enum)
    conv.register_structure_hook_func(lambda t: t == list[str], _strict_str_list)
    conv.register_structure_hook(datetime, lambda v, _: parse_datetime(v))
    conv.register_unstructure_hook(datetime, format_datetime)
    return conv


converter = _make_converter()


def field_path(path: str) -> str:
    """``$.applicable_products[2]`` -> ``applicable_products[2]``; ``$`` -> ``body``."""
    return path.removeprefix("$.").removeprefix("$") or "body"


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, ForbiddenExtraKeysError):
        return "extra fields found (" + ", ".join(sorted(exc.extra_fields)) + ")"
    if isinstance(exc, ValueError | TypeError) and str(exc):
        return str(exc)[:200]
    return "invalid value"


_SPLIT_EXTRA = re.compile(r"^extra fields found \((.*)\)$")


def _messages(exc: BaseException, path: str = "$") -> Problems:
    """One entry per bad field of a cattrs structure error (unknown fields one entry each)."""
    if isinstance(exc, ForbiddenExtraKeysError):
        return [{"field": field_path(f"{path}.{k}"), "message": "unknown field"} for k in sorted(exc.extra_fields)]
    if not isinstance(exc, ClassValidationError | IterableValidationError):
        return [{"field": field_path(path), "message": _format_exception(exc, None)}]
    out: Problems = []
    for text in cattrs.transform_error(exc, path=path, format_exception=_format_exception):
        message, _, where = text.rpartition(" @ ")
        extra = _SPLIT_EXTRA.match(message)
        if extra:
            prefix = "" if field_path(where) == "body" else field_path(where) + "."
            out += [{"field": prefix + k.strip(), "message": "unknown field"} for k in extra.group(1).split(",")]
        else:
            out.append({"field": field_path(where), "message": message})
    return out


def read_json(raw: bytes) -> Any:
    """Parse a request body; an empty body is ``{}``. Malformed JSON -> 400 naming ``body``."""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise validation_error([{"field": "body", "message": f"malformed JSON: {exc}"[:200]}]) from None


def try_structure(data: dict[str, Any], cls: type[T]) -> tuple[T | None, Problems]:
    """``data`` as ``cls``, or None and one entry per bad field."""
    try:
        return converter.structure(data, cls), []
    except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as exc:
        return None, _messages(exc)
    except (ValueError, TypeError) as exc:
        return None, [{"field": "body", "message": str(exc)[:200]}]


def structure_value(value: Any, type_: Any, field: str) -> tuple[Any, Problems]:
    """One field's value as ``type_`` (``int | None``, ``datetime``...), or a problem naming ``field``."""
    try:
        return converter.structure(value, type_), []
    except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as exc:
        return None, [{"field": field + p["field"].removeprefix("body"), "message": p["message"]}
                      for p in _messages(exc)]
    except (ValueError, TypeError) as exc:
        return None, [{"field": field, "message": str(exc)[:200] or "invalid value"}]


def unstructure(value: Any) -> Any:
    return converter.unstructure(value)
