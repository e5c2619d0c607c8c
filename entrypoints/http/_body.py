"""Reading a request body: at most ``MAX_CONTENT_LENGTH`` bytes of JSON, structured by the converter."""

from __future__ import annotations

from typing import TypeVar

from flask import request

from entrypoints.http.schemas import read_json, structure

T = TypeVar("T")


def body_as(cls: type[T]) -> T:
    # get_data raises RequestEntityTooLarge (-> 413 JSON) beyond MAX_CONTENT_LENGTH.
    return structure(read_json(request.get_data(cache=False)), cls)
