"""Reading a request: a JSON body of at most ``MAX_CONTENT_LENGTH`` bytes, or the query string, as a declared shape
(``entrypoints.http.inputs``); any problem is a 400 VALIDATION_ERROR with one entry per bad field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import request

from entrypoints.http.convert import Problems, read_json
from entrypoints.http.errors import validation_error
from entrypoints.http.shapes import merge, parse_body, parse_partial, parse_query

T = TypeVar("T")


def request_json() -> Any:
    # get_data raises RequestEntityTooLarge (-> 413 JSON) beyond MAX_CONTENT_LENGTH.
    return read_json(request.get_data(cache=False))


def body_as(cls: type[T], rules: Callable[[T], Problems] | None = None) -> T:
    """The body as ``cls``. ``rules`` adds the domain's own checks of a body whose fields all parsed, so one answer
    names a bad type, a broken limit and a broken rule together."""
    return shaped(request_json(), cls, rules)


def shaped(data: Any, cls: type[T], rules: Callable[[T], Problems] | None = None) -> T:
    """``data`` (a body read already) as ``cls``, as ``body_as``."""
    instance, problems = parse_body(data, cls)
    if instance is not None and rules is not None:
        problems = merge(problems, rules(instance))
    if problems or instance is None:
        raise validation_error(problems)
    return instance


def partial_body(cls: type) -> dict[str, Any]:
    """The fields a PATCH body gives, parsed as ``cls`` declares them (absent: unchanged; null: a value)."""
    values, problems = parse_partial(request_json(), cls)
    if problems:
        raise validation_error(problems)
    return values


def query_as(cls: type[T]) -> T:
    instance, problems = parse_query(request.args, cls)
    if problems or instance is None:
        raise validation_error(problems)
    return instance
