"""PLACEHOLDER (being written): user page."""

from __future__ import annotations

from entrypoints.console.blueprint import bp


@bp.route("/users")
def user_search() -> str:
    return "users"
