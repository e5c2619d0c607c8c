"""``serve --processes N``: the app on gunicorn, pre-forked workers with threads (``gthread``).

gunicorn's master binds the socket, forks the workers from the app built once (``preload_app``, the heap frozen
before the first fork) and replaces a worker that dies. SIGTERM stops it gracefully: the listening socket
closes, every worker finishes the requests it holds and exits, and a worker still busy after
``graceful_timeout`` seconds is killed; the command then exits 0. SIGINT/SIGQUIT stop at once.

Two additions to stock gunicorn, both for the SIGTERM promise "no client sees a reset":
- ``DrainingThreadWorker`` closes its copy of the listening socket as soon as it stops accepting, after
  accepting what already waits in the backlog. Stock gthread keeps the socket open until it has drained its
  connections; meanwhile the kernel keeps completing handshakes that no one will accept, and closing the socket at
  the end resets them. Closed early, a late client is refused (nothing was sent: safe to retry elsewhere).
- gunicorn's own log lines go to the JSON log like everything else (``JsonLogger``).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.workers import gthread

from adapters.jsonlog import log_event
from adapters.prometheus import mark_process_dead, multiprocess_dir

log = logging.getLogger("starpromo.serve")


class JsonLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger with its handlers removed: its records reach the root JSON-lines handler, named
    ``event: gunicorn``. No access log of gunicorn's: the app writes its own (``http_request``)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            logger.handlers[:] = []
            logger.propagate = True
            if not any(isinstance(f, _EventName) for f in logger.filters):
                logger.addFilter(_EventName())


class _EventName(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "event"):
            record.event = "gunicorn"
        return True


class DrainingThreadWorker(gthread.ThreadWorker):  # type: ignore[misc]
    """gthread that, once told to stop, takes in what waits in the backlog and closes its listening socket."""

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if enabled or self.alive:
            return  # a pause at the connection limit, not the end
        for listener in self.sockets:
            self._accept_backlog(listener)
            listener.close()

    def _accept_backlog(self, listener: Any) -> None:
        while True:
            try:
                client, address = listener.accept()
            except OSError:  # BlockingIOError: the backlog is empty (the listener is non-blocking)
                return
            self.nr_conns += 1
            client.setblocking(True)
            self.enqueue_req(gthread.TConn(self.cfg, client, address, listener.getsockname()))


def _when_ready(server: Any) -> None:
    # Everything built so far (Flask, SQLAlchemy metadata, cattrs converters: hundreds of thousands of objects)
    # lives as long as the process: out of the collector's sight, a full collection no longer walks it in the
    # middle of a request, and the forked workers keep sharing those pages.
    gc.freeze()
    host, port = server.LISTENERS[0].getsockname()[:2]
    log_event(log, "http_server_started", host=host, port=int(port), processes=server.num_workers,
              threads=server.cfg.threads, server="gunicorn", metrics_dir=multiprocess_dir())


def _post_worker_init(worker: Any) -> None:
    log_event(log, "http_worker_started", worker_pid=worker.pid, threads=worker.cfg.threads)
    from entrypoints.bot.process import start_outbox_worker

    # After the fork (threads do not survive one): this worker delivers the bot's replies too (SPEC 9).
    start_outbox_worker(worker.wsgi.extensions["starpromo.container"])


def _child_exit(server: Any, worker: Any) -> None:
    # Its "requests in flight" no longer count; its counters stay (they are totals, summed over every process).
    mark_process_dead(worker.pid)
    log_event(log, "http_worker_exited", worker_pid=worker.pid)


def _on_exit(server: Any) -> None:
    log_event(log, "http_server_stopped")


class PreforkServer(BaseApplication):  # type: ignore[misc]
    """A gunicorn master serving ``app``; ``run()`` returns only through ``SystemExit`` (0 after SIGTERM)."""

    def __init__(self, app: Any, options: Mapping[str, Any]) -> None:
        self._app = app
        self._options = dict(options)
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._app


def gunicorn_options(bind: str, processes: int, threads: int, *, graceful_timeout: int, backlog: int,
                     connections: int) -> dict[str, Any]:
    return {
        "bind": [bind],
        "workers": processes,
        "worker_class": DrainingThreadWorker,
        "threads": threads,
        "worker_connections": connections,
        "backlog": backlog,
        "graceful_timeout": graceful_timeout,
        # A worker whose main loop has not reported for this long is stuck: replaced. Requests run in threads and
        # never hold the main loop, so a slow request is not a stuck worker.
        "timeout": 60,
        # Longer than a load balancer's connection reuse needs, short enough to free a thread-less socket soon.
        "keepalive": 5,
        "preload_app": True,
        "proc_name": "starpromo",
        "logger_class": JsonLogger,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        # Several serve processes on one host would fight over one control socket; nothing uses it.
        "control_socket_disable": True,
        "when_ready": _when_ready,
        "post_worker_init": _post_worker_init,
        "child_exit": _child_exit,
        "on_exit": _on_exit,
    }
