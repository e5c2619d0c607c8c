"""PLACEHOLDER (being written): code lookup."""

from __future__ import annotations

from entrypoints.console.blueprint import bp


@bp.route("/codes/lookup", methods=["GET", "POST"])
def code_lookup() -> str:
    return "lookup"
