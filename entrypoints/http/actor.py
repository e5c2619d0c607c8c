"""Who makes a change through the API (SPEC 7 "Audit"): ``api``, or the request's ``X-Actor`` header."""

from __future__ import annotations

from flask import request

from domain.audit import MAX_ACTOR, validate_actor
from domain.errors import ValidationError
from entrypoints.http.errors import validation_error

ACTOR_HEADER = "X-Actor"
DEFAULT_ACTOR = "api"
ACTOR_RULE = f"must be 1..{MAX_ACTOR} printable characters without surrounding spaces"


def request_actor() -> str:
    """The audit actor of this request. ``X-Actor`` is read as UTF-8 (WSGI hands headers over as Latin-1), so an
    operator named ``Jürgen`` is recorded as such; anything else invalid is a 400 naming ``X-Actor``."""
    raw = request.headers.get(ACTOR_HEADER)
    if raw is None:
        return DEFAULT_ACTOR
    try:
        text = raw.encode("latin-1").decode("utf-8")
        return validate_actor(text, ACTOR_HEADER)
    except (UnicodeError, ValidationError):
        raise validation_error([{"field": ACTOR_HEADER, "message": ACTOR_RULE}]) from None
