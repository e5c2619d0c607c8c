"""Local HTTP receivers for alert-channel tests: real sockets on 127.0.0.1, answers scripted per request."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.local_http import base_url, serve_in_background, shut_down


class Receiver:
    """Records every POST (path, headers, parsed JSON body, its size and when it arrived). ``statuses`` are
    answered in order (the last one repeats); ``delay`` seconds pass before each answer; a 429 or 503 answer
    carries ``Retry-After: <retry_after>`` when that is given."""

    def __init__(self, statuses: list[int] | None = None, delay: float = 0.0, retry_after: str | None = None) -> None:
        self.statuses = list(statuses or [200])
        self.delay = delay
        self.retry_after = retry_after
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"{base_url(self._server)}/hook"

    @property
    def bodies(self) -> list[Any]:
        with self._lock:
            return [r["body"] for r in self.requests]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.bodies) >= count:
                return self.bodies
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests, got {len(self.bodies)}")

    def _next_status(self) -> int:
        with self._lock:
            index = min(len(self.requests), len(self.statuses)) - 1
            return self.statuses[max(index, 0)]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "body": json.loads(raw or b"null"), "bytes": len(raw),
                                              "at": time.monotonic()})
                status = receiver._next_status()
                if receiver.delay:
                    time.sleep(receiver.delay)
                payload = b'{"status": "ok"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    if receiver.retry_after is not None and status in (429, 503):
                        self.send_header("Retry-After", receiver.retry_after)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server, self._thread = serve_in_background(Handler)
        return self

    def stop(self) -> None:
        if self._server is not None:
            shut_down(self._server)


@contextmanager
def receiving(statuses: list[int] | None = None, delay: float = 0.0, retry_after: str | None = None
              ) -> Iterator[Receiver]:
    receiver = Receiver(statuses, delay, retry_after).start()
    try:
        yield receiver
    finally:
        receiver.stop()
