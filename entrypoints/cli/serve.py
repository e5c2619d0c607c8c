"""``starpromo serve``: the internal API behind waitress, a production WSGI server (see docs/decisions.md)."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import time
from typing import Any

import click
from flask import Flask

from adapters.jsonlog import configure_json_logging
from entrypoints.cli._ops import get_container
from entrypoints.http import create_app

log = logging.getLogger("starpromo.serve")

DEFAULT_THREADS = 16
CONNECTION_LIMIT = 1000
BACKLOG = 2048


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
        return waitress.server.create_server(app, host=host, port=port, backlog=BACKLOG, **_waitress_options(threads))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket the pre-forked processes share (bound before any of them starts)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, socktype, proto, _, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def server_on_socket(app: Flask, sock: socket.socket, threads: int) -> Any:
    import waitress.server

    return waitress.server.create_server(app, sockets=[sock], **_waitress_options(threads))


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


class _Supervisor:
    """The parent of ``serve --processes N``: forks N workers that each serve the shared socket with their own
    waitress threads (one GIL per process) and forwards SIGTERM/SIGINT to them. A worker that dies is replaced;
    more than ``RESPAWN_LIMIT`` deaths within ``RESPAWN_WINDOW`` seconds is a crash loop: the others are
    stopped and the command exits 1 for the service manager to see (see docs/decisions.md)."""

    RESPAWN_LIMIT = 5
    RESPAWN_WINDOW = 60.0
    STOP_TIMEOUT = 15

    def __init__(self, app: Flask, sock: socket.socket, processes: int, threads: int) -> None:
        self.app, self.sock, self.processes, self.threads = app, sock, processes, threads
        self.children: dict[int, int] = {}
        self.deaths: list[float] = []
        self.stopping = False

    def _spawn(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker: default signal handling, a server of its own on the inherited socket
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                server = server_on_socket(self.app, self.sock, self.threads)
                log.info("worker serving", extra={"event": "http_worker_started", "worker": index,
                                                  "threads": self.threads})
                server.run()
            except KeyboardInterrupt:
                pass
            except BaseException:  # the worker must never fall back into the supervisor's code
                log.exception("worker crashed", extra={"event": "http_worker_crashed", "worker": index})
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = index

    def _stop(self, signum: int, _frame: Any) -> None:
        self.stopping = True
        self._signal_children(signal.SIGTERM)
        # Workers finish their requests in flight; one that has not exited in time is killed.
        signal.signal(signal.SIGALRM, lambda *_: self._signal_children(signal.SIGKILL))
        signal.alarm(self.STOP_TIMEOUT)

    def _signal_children(self, signum: int) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _crash_loop(self) -> bool:
        now = time.monotonic()
        self.deaths = [t for t in self.deaths if now - t < self.RESPAWN_WINDOW] + [now]
        return len(self.deaths) > self.RESPAWN_LIMIT

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for index in range(self.processes):
            self._spawn(index)
        status = 0
        while self.children:
            try:
                pid, raw = os.wait()
            except ChildProcessError:
                break
            index = self.children.pop(pid, -1)
            if self.stopping or index < 0:
                continue
            code = os.waitstatus_to_exitcode(raw)
            if self._crash_loop():
                log.error("workers keep dying; stopping", extra={
                    "event": "http_worker_crash_loop", "worker_pid": pid, "exit_code": code,
                    "deaths": len(self.deaths), "window_seconds": self.RESPAWN_WINDOW})
                status = 1
                self._stop(signal.SIGTERM, None)
            else:
                log.error("worker exited unexpectedly; starting a new one",
                          extra={"event": "http_worker_died", "worker": index, "worker_pid": pid, "exit_code": code})
                self._spawn(index)
        self.sock.close()
        return status


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="TCP port (0: any).")
@click.option("--threads", default=DEFAULT_THREADS, show_default=True, type=click.IntRange(1, 256),
              help="Worker threads per process (requests handled at once).")
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes sharing the socket (pre-fork); one per core spreads the Python work over "
                   "more than one GIL. Needs a database (not memory://).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, threads: int, processes: int) -> None:
    """Serve the internal HTTP API (needs INTERNAL_API_TOKEN and PROMO_SECRET_PEPPER)."""
    configure_json_logging()
    container = get_container(ctx)
    container.alert_policy()  # a bad OPS_ALERT_ESCALATION_POLICY_JSON stops start-up, naming the variable
    if processes > 1 and container.settings().adapter_family == "memory":
        raise click.BadParameter("memory:// keeps its data inside one process; use one process or a database",
                                 param_hint="--processes")
    app = create_app(container)
    # Everything built so far (Flask, SQLAlchemy metadata, cattrs converters: hundreds of thousands of objects)
    # lives as long as the process: out of the collector's sight, a full collection no longer walks it in the
    # middle of a request, and forked workers keep sharing those pages.
    gc.freeze()
    if processes == 1:
        server = make_server(app, host, port, threads)
        run_server(server, threads)
        return
    sock = bind_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    log.info("serving", extra={"event": "http_server_started", "host": bound_host, "port": int(bound_port),
                               "threads": threads, "processes": processes})
    status = _Supervisor(app, sock, processes, threads).run()
    log.info("stopped", extra={"event": "http_server_stopped"})
    sys.exit(status)
