"""A threaded HTTP server on 127.0.0.1 (a free port) serving from a daemon thread: the fake Bot API
(tests/fakes/bot_api.py) and the alert receivers (tests/integration/receivers.py) both run on one."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve_in_background(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start serving ``handler`` on a free loopback port; the server and the thread serving it.

    Answers go out with ``TCP_NODELAY``: a handler writes the headers and the body apart, and Nagle's algorithm
    would hold the body back for the client's delayed ACK (~50 ms per call over loopback)."""
    handler.disable_nagle_algorithm = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, thread


def base_url(server: ThreadingHTTPServer) -> str:
    """``http://127.0.0.1:<port>`` of a running server."""
    host, port = server.server_address[:2]
    assert isinstance(host, str)  # an AF_INET server: (host, port)
    return f"http://{host}:{port}"


def shut_down(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()
