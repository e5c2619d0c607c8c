"""``starpromo demo``: the whole product on one machine with no other service (SPEC 10).

SQLite file (``DATABASE_URL``, default ``sqlite:///starpromo.db``), migrated on start; three demo campaigns
seeded idempotently, with three days of history the first time (demo_history.py); maintenance jobs in a daemon
thread; the ops console and the API on 127.0.0.1:8080. Prints the console address with the demo operator's
sign-in first, then the demo codes and curl lines that work as pasted.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import secrets
import shlex
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs
import click

from adapters.jsonlog import configure_json_logging
from domain.campaigns import CampaignService, CampaignSpec
from domain.errors import CampaignExists, CodeExists
from domain.model import PromoType
from domain.operators import OperatorRole

if TYPE_CHECKING:
    from entrypoints.container import Container
    from entrypoints.settings import Settings

DEMO_THREADS = 8


@attrs.frozen
class DemoCampaign:
    code: str
    spec: CampaignSpec


# Fixed codes so that a re-run finds (and prints) the same campaigns: plaintext is never stored.
DEMO_CAMPAIGNS: tuple[DemoCampaign, ...] = (
    DemoCampaign("DEMO-20-OFF", CampaignSpec("demo: 20% off", PromoType.PERCENT_DISCOUNT, discount_percent=20)),
    DemoCampaign("DEMO-50-STARS", CampaignSpec("demo: 50 Stars off", PromoType.STARS_DISCOUNT, discount_stars=50,
                                               max_total_uses=1000)),
    DemoCampaign("DEMO-GIFT-30", CampaignSpec("demo: 30 days premium", PromoType.PREMIUM_GRANT,
                                              grant_plan_code="PREMIUM", grant_days=30)),
)
DEMO_ACTOR = "cli:demo"
DEMO_OPERATOR = "demo"


def register(cli: click.Group) -> None:
    cli.add_command(demo)


def sql_available() -> bool:
    """Whether this build wires the SQL adapter family (``DATABASE_URL=sqlite:///...``)."""
    from entrypoints.container import Container

    return "sql" in Container.uow_factory.providers


def demo_settings(environ: Mapping[str, str]) -> tuple[Settings, bool]:
    """Settings of the demo and whether the token was generated here."""
    from entrypoints.settings import Settings

    env = dict(environ)
    generated = not env.get("INTERNAL_API_TOKEN", "").strip()
    if generated:
        env["INTERNAL_API_TOKEN"] = secrets.token_urlsafe(24)
    if not env.get("OPS_SESSION_SECRET", "").strip():
        env["OPS_SESSION_SECRET"] = secrets.token_urlsafe(48)  # sessions of this run only
    if not sql_available() and not env.get("DATABASE_URL", "").startswith("memory:"):
        click.echo("note: the SQL adapters are not part of this build; the demo keeps its data in memory", err=True)
        env["DATABASE_URL"] = "memory://"
    return Settings.from_env(env, require_pepper=False), generated


def seed(campaigns: CampaignService) -> list[tuple[DemoCampaign, bool]]:
    """Create the demo campaigns that do not exist yet; (campaign, created now) each."""
    out = []
    for item in DEMO_CAMPAIGNS:
        try:
            campaigns.create(item.spec, actor=DEMO_ACTOR, code=item.code)
            out.append((item, True))
        except (CampaignExists, CodeExists):
            out.append((item, False))
    return out


def demo_operator(container: Container) -> str:
    """The demo admin with a fresh password for this run (printed once, in the banner)."""
    ops = container.operator_service()
    password = secrets.token_urlsafe(12)
    if ops.get(DEMO_OPERATOR) is None:
        ops.add(DEMO_OPERATOR, OperatorRole.ADMIN, password, actor=DEMO_ACTOR)
    else:
        ops.set_password(DEMO_OPERATOR, password, actor=DEMO_ACTOR)
    return password


def migrate(container: Container) -> None:
    """``starpromo db upgrade`` on the demo's database (the same command ops run)."""
    if container.settings().adapter_family != "sql":
        return
    from entrypoints.cli.main import cli

    if "db" not in cli.commands:
        raise click.ClickException("this build has no `starpromo db upgrade`; set DATABASE_URL=memory://")
    # Quietly: the banner's first lines are the console's address and sign-in.
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(["db", "upgrade"], obj=container, standalone_mode=False)


def has_jobs(container: Container) -> bool:
    if "maintenance_service" not in container.providers:
        click.echo("note: maintenance jobs are not part of this build; none run in the demo", err=True)
        return False
    return True


def start_jobs(container: Container) -> None:
    """The SPEC 6 maintenance jobs on an in-process daemon timer (no Redis in the demo)."""
    from entrypoints.worker.jobs import periodic_jobs, run_job
    from entrypoints.worker.process import use_container
    from entrypoints.worker.timer import InProcessTimer

    use_container(container)
    InProcessTimer(periodic_jobs(), lambda name: run_job(name, container)).start()


def curl_line(url: str, token: str, user_id: int, code: str, key: str) -> str:
    from entrypoints.http.auth import TOKEN_HEADER

    body = f'{{"user_id": {user_id}, "code": "{code}", "idempotency_key": "{key}"}}'
    return (f"curl -s -X POST {shlex.quote(url + '/internal/promo/redeem')} "
            f"-H {shlex.quote(TOKEN_HEADER + ': ' + token)} -H 'Content-Type: application/json' "
            f"-d {shlex.quote(body)}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="TCP port (0: any).")
def demo(host: str, port: int) -> None:
    """Migrate, seed three demo campaigns and serve the API on HOST:PORT (no other service needed)."""
    from entrypoints.cli.demo_history import seed_history
    from entrypoints.cli.serve import base_url, make_server, run_server
    from entrypoints.container import build_container
    from entrypoints.http import create_app
    from entrypoints.http.auth import TOKEN_HEADER

    # Set-up logs errors only (its migrations, the seeded history's guard pause, the operator): the banner comes
    # first on the terminal (SPEC 10); the log goes on at INFO once it is printed.
    configure_json_logging(logging.ERROR)
    settings, generated = demo_settings(os.environ)
    container = build_container(settings)
    migrate(container)
    seeded = seed(container.campaign_service())
    history = seed_history(container, container.clock().now())
    password = demo_operator(container)
    jobs = has_jobs(container)
    app = create_app(container)
    server = make_server(app, host, port, DEMO_THREADS)
    url = base_url(server)
    token = settings.internal_api_token or ""

    lines = [f"starpromo demo: ops console on {url}/ops/  (database: {settings.database_url})",
             f"  sign in as: {DEMO_OPERATOR}  password: {password}  (admin; a new password every run)"]
    if history is not None:
        lines.append(f"  seeded {history.attempts} redeem attempts, {history.accepted} accepted and "
                     f"{history.paid} paid purchases over the last three days")
    lines.append(f"\nThe internal API on {url}/internal/ (token below).")
    lines.append("Maintenance jobs run in-process." if jobs else "No maintenance jobs in this build.")
    if generated:
        lines.append("INTERNAL_API_TOKEN was not set; generated one for this run.")
    for item, created in seeded:
        state = "created" if created else "already there"
        lines.append(f"  {item.spec.promo_type.value:<16} code {item.code:<14} ({item.spec.name}; {state})")
    by_type = {item.spec.promo_type: item.code for item in DEMO_CAMPAIGNS}
    lines.append("\nRedeem the discount code (paste into another terminal):")
    lines.append(curl_line(url, token, 42, by_type[PromoType.PERCENT_DISCOUNT], "demo-1"))
    lines.append("\nRedeem the 50 Stars discount:")
    lines.append(curl_line(url, token, 42, by_type[PromoType.STARS_DISCOUNT], "demo-3"))
    lines.append("\nRedeem the 30-day grant:")
    lines.append(curl_line(url, token, 42, by_type[PromoType.PREMIUM_GRANT], "demo-2"))
    lines.append(f"\nList campaigns:\ncurl -s {shlex.quote(url + '/internal/promo/campaigns')} "
                 f"-H {shlex.quote(TOKEN_HEADER + ': ' + token)}")
    lines.append("\nCtrl+C stops the demo.")
    click.echo("\n".join(lines), nl=True)
    sys.stdout.flush()
    logging.getLogger().setLevel(logging.INFO)
    if jobs:
        start_jobs(container)
    run_server(server, DEMO_THREADS)
