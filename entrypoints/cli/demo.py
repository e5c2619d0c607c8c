"""``starpromo demo``: the product on one machine with no other service."""

from __future__ import annotations

import secrets
from typing import Any

import click
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from domain.campaigns import CampaignSpec
from domain.errors import ValidationError
from domain.model import PromoType
from entrypoints.container import build_container
from entrypoints.settings import Settings


def register(cli: click.Group) -> None:
    cli.add_command(demo)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def demo(host: str, port: int) -> None:
    """Seed demo campaigns and serve the API on HOST:PORT (no other service needed)."""
    import waitress

    settings = Settings.from_env({"DATABASE_URL": "memory://"}, require_pepper=False)
    container = build_container(settings)
    campaigns = container.campaign_service()
    token = secrets.token_urlsafe(24)
    discount = "DEMO-" + secrets.token_hex(3).upper()
    grant = "GIFT-" + secrets.token_hex(3).upper()
    campaigns.create(CampaignSpec("demo discount 20%", PromoType.PERCENT_DISCOUNT, discount_percent=20), discount)
    campaigns.create(CampaignSpec("demo premium 30 days", PromoType.PREMIUM_GRANT, grant_plan_code="PREMIUM",
                                  grant_days=30), grant)
    service = container.redemption_service()
    app = Flask("starpromo-demo")

    @app.post("/internal/promo/redeem")
    def redeem() -> ResponseReturnValue:
        if not secrets.compare_digest(request.headers.get("X-Internal-Token", ""), token):
            return jsonify(error={"code": "UNAUTHORIZED", "message": "missing or wrong X-Internal-Token"}), 401
        body: dict[str, Any] = request.get_json(silent=True) or {}
        try:
            out = service.redeem(body["user_id"], body["code"], body["idempotency_key"])
        except (KeyError, ValidationError) as exc:
            return jsonify(error={"code": "VALIDATION_ERROR", "message": str(exc)}), 400
        return jsonify(result=out.result.value, replayed=out.replayed)

    url = f"http://{host}:{port}"
    click.echo(f"starpromo demo on {url}\n  discount code: {discount}\n  grant code:    {grant}\n")
    click.echo(f"curl -s -X POST {url}/internal/promo/redeem -H 'X-Internal-Token: {token}' "
               f"-H 'Content-Type: application/json' "
               f"-d '{{\"user_id\": 42, \"code\": \"{discount}\", \"idempotency_key\": \"demo-1\"}}'")
    waitress.serve(app, host=host, port=port, threads=8, _quiet=True)
