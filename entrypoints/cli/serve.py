"""``starpromo serve``: the internal API behind waitress, a production WSGI server (see docs/decisions.md)."""

from __future__ import annotations

import logging

import click
from flask import Flask

from entrypoints.cli._ops import get_container
from entrypoints.http import create_app
from entrypoints.http.logs import configure_json_logging

log = logging.getLogger("starpromo.serve")

DEFAULT_THREADS = 16
CONNECTION_LIMIT = 1000


def register(cli: click.Group) -> None:
    cli.add_command(serve)


def run_server(app: Flask, host: str, port: int, threads: int = DEFAULT_THREADS) -> None:
    """Serve ``app`` until interrupted: ``threads`` workers, many keep-alive connections multiplexed."""
    import waitress

    log.info("serving", extra={"event": "http_server_started", "host": host, "port": port, "threads": threads})
    waitress.serve(
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
        _quiet=True,
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, type=click.IntRange(1, 256),
              help="Worker threads (requests handled at once).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, threads: int) -> None:
    """Serve the internal HTTP API (needs INTERNAL_API_TOKEN and PROMO_SECRET_PEPPER)."""
    configure_json_logging()
    app = create_app(get_container(ctx))
    run_server(app, host, port, threads)
