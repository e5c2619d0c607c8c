"""Reading a request body: at most ``MAX_CONTENT_LENGTH`` bytes of JSON, structured by the converter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import request

from entrypoints.http.errors import ApiError, validation_error
from entrypoints.http.schemas import read_json, structure

T = TypeVar("T")


def body_as(cls: type[T], value_checks: Callable[[dict[str, Any]], list[dict[str, str]]] | None = None) -> T:
    """The body as ``cls``; ``value_checks`` adds value errors of the fields that are present, so one
    answer lists every bad field even when another field is missing or of the wrong type."""
    # get_data raises RequestEntityTooLarge (-> 413 JSON) beyond MAX_CONTENT_LENGTH.
    data = read_json(request.get_data(cache=False))
    try:
        return structure(data, cls)
    except ApiError as exc:
        if value_checks is None or not isinstance(data, dict) or not isinstance(exc.details, list):
            raise
        reported = {e["field"] for e in exc.details}
        extra = [e for e in value_checks(data) if e["field"] not in reported]
        if not extra:
            raise
        raise validation_error([*exc.details, *extra]) from None
