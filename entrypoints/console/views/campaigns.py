"""PLACEHOLDER (being written): campaigns list and campaign page."""

from __future__ import annotations

from entrypoints.console.blueprint import bp


@bp.route("/campaigns")
def campaigns() -> str:
    return "campaigns"


@bp.route("/campaigns/<int:campaign_id>")
def campaign(campaign_id: int) -> str:
    return f"campaign {campaign_id}"
