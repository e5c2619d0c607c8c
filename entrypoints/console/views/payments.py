"""PLACEHOLDER (being written): payment reviews."""

from __future__ import annotations

from entrypoints.console.blueprint import bp


@bp.route("/payment-reviews")
def payment_reviews() -> str:
    return "reviews"
