"""How the one-process server (waitress) stops: no client of a stopping server is reset.

Two ways a stop used to reset clients, each shown here on real sockets: connections the kernel had accepted into
the listening socket's backlog (closing that socket resets them), and a keep-alive connection closed with a request
that crossed the close still unread in it (the kernel answers that with a reset instead of an end of stream)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from entrypoints.cli.serve import _close_quietly, make_server, run_server

REQUEST = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    chunks = []
    while chunk := sock.recv(65536):  # a reset raises ConnectionResetError here
        chunks.append(chunk)
    return b"".join(chunks)


def test_connections_waiting_in_the_backlog_are_answered_not_reset() -> None:
    server = make_server(_app, "127.0.0.1", 0, threads=2)  # type: ignore[arg-type]  # any WSGI app
    port = int(server.effective_port)
    # The loop never ran: the kernel completes these handshakes and keeps them in the listening socket's backlog.
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    for client in clients:
        client.sendall(REQUEST)
    server.stopping.set()  # as SIGTERM would, before waitress accepted any of them
    run_server(server, threads=2, graceful_timeout=5)
    for client in clients:
        with client:
            answer = _read_all(client)
        assert answer.startswith(b"HTTP/1.1 200 OK"), answer
        assert b"Connection: close" in answer and answer.endswith(b"ok")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        served, _ = listener.accept()
    served.setblocking(False)
    with client, served:
        yield client, served


class _Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock


def _wait_until_readable(sock: socket.socket) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                return
        except BlockingIOError:
            time.sleep(0.01)
    pytest.fail("the request never arrived")


def test_a_request_that_crosses_the_close_gets_an_end_of_stream_not_a_reset(
        tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    client, served = tcp_pair
    client.sendall(REQUEST)  # sent just as the server decided the connection was idle
    _wait_until_readable(served)

    took: list[float] = []

    def server_side() -> None:
        started = time.monotonic()
        _close_quietly([_Channel(served)], linger=5, hurry=threading.Event())
        took.append(time.monotonic() - started)

    closing = threading.Thread(target=server_side)
    closing.start()
    assert _read_all(client) == b""  # an end of stream (the request is simply not answered), no reset
    client.close()  # what urllib3 does when it finds the connection dropped
    closing.join(timeout=10)
    assert took and took[0] < 2  # the wait ended as soon as the client closed its side, not after the linger
    served.close()


def test_without_the_half_close_the_same_connection_would_be_reset(
        tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    """The counterpart of the test above (why ``_close_quietly`` exists): a plain close resets the client."""
    client, served = tcp_pair
    client.sendall(REQUEST)
    _wait_until_readable(served)
    served.close()
    with pytest.raises(ConnectionResetError):
        _read_all(client)


def test_the_linger_is_bounded_and_a_second_signal_cuts_it(tcp_pair: tuple[socket.socket, socket.socket]) -> None:
    _, served = tcp_pair  # a client that never closes its side
    started = time.monotonic()
    _close_quietly([_Channel(served)], linger=0.3, hurry=threading.Event())
    assert 0.25 < time.monotonic() - started < 2
    hurry = threading.Event()
    hurry.set()
    started = time.monotonic()
    _close_quietly([_Channel(served)], linger=5, hurry=hurry)
    assert time.monotonic() - started < 0.5
