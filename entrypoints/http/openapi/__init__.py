"""The OpenAPI 3.1 document of the internal API and its route ``GET /internal/openapi.json``.

Every schema is generated: request bodies and queries from the shapes that validate them
(``entrypoints.http.inputs``), answers from the shapes the handlers write them with (``entrypoints.http.outputs``).
What is written here, one module per resource, is the operations: which route takes which body and answers which
statuses with which shape. schemathesis fuzzes the API from this document (tests/integration/test_schemathesis.py):
every status a route can answer is listed, and every answer is checked against its schema.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from entrypoints.http import outputs
from entrypoints.http.auth import TOKEN_HEADER
from entrypoints.http.openapi import campaigns, codes, ops, promo
from entrypoints.http.shapes import components

bp = Blueprint("openapi", __name__)


def document(features: Collection[str] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document, generated now from the shapes (a changed limit shows at once); ``features``: the
    optional features served (default all)."""
    paths = {**promo.paths(), **campaigns.paths(), **codes.paths(), **ops.paths()}
    for name, extra in promo.feature_paths().items():
        if features is None or name in features:
            paths.update(extra)
    schemas = {**components(*outputs.ANSWERS), **promo.schemas(), **campaigns.schemas(), **codes.schemas(),
               **ops.schemas()}
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {
            "title": "starpromo internal API",
            "version": "2.0.0",
            "description": "Ops API of the starpromo promo-code engine. Every /internal/* call needs "
                           f"{TOKEN_HEADER} and a client address inside INTERNAL_IP_ALLOWLIST. Changes name "
                           "their actor for the audit log with the optional X-Actor header.",
        },
        "servers": [{"url": "/"}],
        "security": [{"internalToken": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"internalToken": {"type": "apiKey", "in": "header", "name": TOKEN_HEADER}},
        },
    })


@bp.get("/internal/openapi.json")
def openapi_json() -> Response:
    return jsonify(document(current_app.extensions.get("starpromo.features", frozenset())))
