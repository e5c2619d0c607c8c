"""``starpromo serve``: the internal API on a production WSGI server (see docs/decisions.md).

One process (the default): waitress, 16 threads behind an async front that multiplexes many keep-alive
connections; also what ``starpromo demo`` runs. ``--processes N`` (N > 1): gunicorn's pre-fork master with N
threaded workers (``entrypoints.cli.prefork``), the metrics of all of them summed through
``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any

import click

from adapters.jsonlog import configure_json_logging
from entrypoints.cli._ops import get_container

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("starpromo.serve")

DEFAULT_THREADS = 16
CONNECTION_LIMIT = 1000
BACKLOG = 2048
DEFAULT_GRACEFUL_TIMEOUT = 15
QUIET_S = 0.3  # a stopping one-process server waits for this much silence on its idle connections ...
LINGER_S = 1.0  # ... then half-closes them and waits at most this long for their clients to close their side


def register(cli: click.Group) -> None:
    cli.add_command(serve)


def _waitress_options(threads: int) -> dict[str, Any]:
    return {
        "threads": threads,
        "connection_limit": CONNECTION_LIMIT,
        "channel_timeout": 60,
        "ident": "starpromo",
        # The app applies TRUSTED_PROXY_COUNT itself; waitress must hand X-Forwarded-For through untouched.
        "clear_untrusted_proxy_headers": False,
    }


def make_server(app: Flask, host: str, port: int, threads: int = DEFAULT_THREADS) -> Any:
    """A bound waitress server: ``threads`` workers, many keep-alive connections multiplexed.

    Binding happens here, so a busy port is a clear error before anything is printed."""
    import waitress.server

    try:
        server = waitress.server.create_server(app, host=host, port=port, backlog=BACKLOG,
                                               **_waitress_options(threads))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server.channel_class = _stopping_channel_class()
    server.stopping = threading.Event()
    return server


@functools.cache
def _stopping_channel_class() -> type[Any]:
    from waitress.channel import HTTPChannel

    class StoppingChannel(HTTPChannel):  # type: ignore[misc]
        """Once the server is stopping, every answer says ``Connection: close`` (waitress adds it when the request
        asked for it), so a keep-alive client opens a new connection, which is refused, instead of sending its
        next request into a socket about to close."""

        def service(self) -> None:
            if self.server.stopping.is_set():
                for request in list(self.requests):
                    request.headers["CONNECTION"] = "close"
            super().service()

    return StoppingChannel


def check_port(host: str, port: int) -> None:
    """Bind and release ``host:port`` once: a busy port or an unknown host is a clear error before gunicorn starts
    (which would otherwise retry for seconds and exit with its own words)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, socktype, proto, _, address = infos[0]
    with socket.socket(family, socktype, proto) as sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def run_server(server: Any, threads: int, graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT) -> None:
    """Serve until SIGTERM (or Ctrl+C), then stop gracefully, as gunicorn's workers do with ``--processes``: stop
    accepting at once, let the requests in flight finish and their answers go out (at most ``graceful_timeout``
    seconds; a second signal cuts it short), close the idle keep-alive connections, return. Main thread only."""
    from waitress import wasyncore
    from waitress.channel import HTTPChannel

    stopping: threading.Event = server.stopping
    hurry = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        (hurry if stopping.is_set() else stopping).set()
        server.pull_trigger()  # wake the loop out of its poll

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("serving", extra={"event": "http_server_started", "host": server.effective_host,
                               "port": int(server.effective_port), "threads": threads, "server": "waitress"})

    def turn(timeout: float) -> None:
        server.asyncore.loop(timeout=timeout, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1)

    def channels() -> list[Any]:
        return [c for c in list(server._map.values()) if isinstance(c, HTTPChannel)]

    try:
        while not stopping.is_set():
            turn(server.adj.asyncore_loop_timeout)
        in_flight = sum(1 for c in channels() if c.requests)
        log.info("stopping", extra={"event": "http_server_stopping", "in_flight": in_flight,
                                    "graceful_timeout_s": graceful_timeout})
        server.accepting = False
        server.del_channel()  # out of the loop's map: nothing more is accepted ...
        _accept_backlog(server)  # ... but what the kernel already accepted is served (closing would reset it) ...
        server.socket.close()  # ... and from now on a new connection is refused, not left in the backlog
        for channel in channels():  # answers not begun yet say "Connection: close" too
            for request in list(channel.requests):
                request.headers["CONNECTION"] = "close"
        # Until no request is in flight and no connection has been active for QUIET_S (an answer sent just before
        # the signal may still bring its client's next request, which is answered, with "Connection: close").
        deadline = time.monotonic() + graceful_timeout
        while not hurry.is_set() and time.monotonic() < deadline:
            now = time.time()  # waitress stamps last_activity with time.time()
            if not any(c.requests or c.total_outbufs_len or now - c.last_activity < QUIET_S for c in channels()):
                break
            turn(0.05)
        _close_quietly(channels(), min(LINGER_S, max(0.0, deadline - time.monotonic())), hurry)
    finally:
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        server.close()
        wasyncore.close_all(server._map)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("stopped", extra={"event": "http_server_stopped"})


def _accept_backlog(server: Any) -> None:
    """Accept every connection waiting in the listening socket's backlog (waitress accepts one per loop turn): the
    kernel completed their handshakes, their clients may have sent a request already, and closing the listening
    socket would reset them. They become channels like any other and are answered with ``Connection: close``."""
    while True:
        try:
            conn, addr = server.socket.accept()  # non-blocking, as waitress left it
        except OSError:  # BlockingIOError: the backlog is empty
            return
        server.set_socket_options(conn)
        server.channel_class(server, conn, server.fix_addr(addr), server.adj, map=server._map)


def _close_quietly(channels: list[Any], linger: float, hurry: threading.Event) -> None:
    """Close the idle keep-alive connections without resetting a client: send FIN first (a client pool that checks
    a connection before reusing it, as urllib3 does, sees it dropped and opens a new one, which is refused), then
    read and discard until the client closes its side or ``linger`` seconds pass. A socket closed with unread data
    in it, such as a request that crossed the close, would answer the client with a reset."""
    import selectors

    with selectors.DefaultSelector() as selector:
        for channel in channels:
            try:
                channel.socket.shutdown(socket.SHUT_WR)
                selector.register(channel.socket, selectors.EVENT_READ)
            except (OSError, ValueError):  # already gone
                continue
        deadline = time.monotonic() + linger
        while selector.get_map() and not hurry.is_set() and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(timeout=min(left, 0.05)):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:  # the client closed its side: nothing more can arrive
                    selector.unregister(sock)


def base_url(server: Any) -> str:
    host = str(server.effective_host)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.effective_port}"


def _bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="TCP port (0: any).")
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, type=click.IntRange(1, 256),
              help="Worker threads per process (requests handled at once).")
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (gunicorn, pre-fork) sharing the socket; one per core spreads the Python work "
                   "over more than one GIL. Needs a database (not memory://).")
@click.option("--graceful-timeout", default=DEFAULT_GRACEFUL_TIMEOUT, show_default=True,
              type=click.IntRange(1, 600),
              help="Seconds SIGTERM waits for the requests in flight to finish (then they are cut).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, threads: int, processes: int, graceful_timeout: int) -> None:
    """Serve the internal HTTP API (needs INTERNAL_API_TOKEN and PROMO_SECRET_PEPPER)."""
    from adapters.prometheus import multiprocess_dir, use_multiprocess_dir

    configure_json_logging()
    owner = os.getpid()
    own_metrics_dir: str | None = None
    if processes > 1 and multiprocess_dir() is None:
        # Before any metric exists: the workers forked later inherit the directory and write their files there.
        own_metrics_dir = tempfile.mkdtemp(prefix="starpromo-metrics-")
        use_multiprocess_dir(own_metrics_dir)
    try:
        _serve(ctx, host, port, threads, processes, graceful_timeout)
    finally:
        # gunicorn's workers leave through SystemExit too, up this very stack: only the master cleans up.
        if own_metrics_dir is not None and os.getpid() == owner:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)


def _serve(ctx: click.Context, host: str, port: int, threads: int, processes: int, graceful_timeout: int) -> None:
    from entrypoints.http import create_app

    container = get_container(ctx)
    container.alert_policy()  # a bad OPS_ALERT_ESCALATION_POLICY_JSON stops start-up, naming the variable
    container.products()  # so does a products file Telegram's sendInvoice would refuse, naming product and field
    if processes > 1 and container.settings().adapter_family == "memory":
        raise click.BadParameter("memory:// keeps its data inside one process; use one process or a database",
                                 param_hint="--processes")
    app = create_app(container)
    if processes == 1:
        server = make_server(app, host, port, threads)
        # See prefork._when_ready: the start-up heap, out of the collector's sight for the process's life.
        gc.freeze()
        from entrypoints.bot.process import start_outbox_worker

        start_outbox_worker(container)  # the bot's replies (SPEC 9), when the bot is configured
        run_server(server, threads, graceful_timeout)
        return
    check_port(host, port)
    from entrypoints.cli.prefork import PreforkServer, gunicorn_options

    options = gunicorn_options(_bind_address(host, port), processes, threads, graceful_timeout=graceful_timeout,
                               backlog=BACKLOG, connections=CONNECTION_LIMIT)
    PreforkServer(app, options).run()  # exits the process (0 after SIGTERM)
