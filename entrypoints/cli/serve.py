"""``starpromo serve``: the internal API behind waitress, a production WSGI server (see docs/decisions.md)."""

from __future__ import annotations

import logging
from typing import Any

import click
from flask import Flask

from adapters.jsonlog import configure_json_logging
from entrypoints.cli._ops import get_container
from entrypoints.http import create_app

log = logging.getLogger("starpromo.serve")

DEFAULT_THREADS = 16
CONNECTION_LIMIT = 1000


def register(cli: click.Group) -> None:
    cli.add_command(serve)


def make_server(app: Flask, host: str, port: int, threads: int = DEFAULT_THREADS) -> Any:
    """A bound waitress server: ``threads`` workers, many keep-alive connections multiplexed.

    Binding happens here, so a busy port is a clear error before anything is printed."""
    import waitress.server

    try:
        return waitress.server.create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            connection_limit=CONNECTION_LIMIT,
            backlog=2048,
            channel_timeout=60,
            ident="starpromo",
            # The app applies TRUSTED_PROXY_COUNT itself; waitress must hand X-Forwarded-For through untouched.
            clear_untrusted_proxy_headers=False,
        )
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def run_server(server: Any, threads: int) -> None:
    log.info("serving", extra={"event": "http_server_started", "host": server.effective_host,
                               "port": int(server.effective_port), "threads": threads})
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        log.info("stopped", extra={"event": "http_server_stopped"})


def base_url(server: Any) -> str:
    host = str(server.effective_host)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.effective_port}"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="TCP port (0: any).")
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, type=click.IntRange(1, 256),
              help="Worker threads (requests handled at once).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, threads: int) -> None:
    """Serve the internal HTTP API (needs INTERNAL_API_TOKEN and PROMO_SECRET_PEPPER)."""
    configure_json_logging()
    container = get_container(ctx)
    container.alert_policy()  # a bad OPS_ALERT_ESCALATION_POLICY_JSON stops start-up, naming the variable
    app = create_app(container)
    server = make_server(app, host, port, threads)
    run_server(server, threads)
