"""``starpromo serve`` as a process: refuses to start without its secrets, serves many requests at once."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.unit.http.server import Server, race_redeems, server_env

STARPROMO = str(Path(sys.executable).parent / "starpromo")


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STARPROMO, "serve", *args], env=env, capture_output=True, text=True, timeout=30)


def test_serve_refuses_to_start_without_a_token() -> None:
    env = server_env("memory://")
    env.pop("INTERNAL_API_TOKEN")
    proc = _run(env, "--port", "0")
    assert proc.returncode != 0
    assert "INTERNAL_API_TOKEN" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_refuses_to_start_without_a_pepper() -> None:
    env = server_env("memory://")
    env.pop("PROMO_SECRET_PEPPER")
    proc = _run(env, "--port", "0")
    assert proc.returncode != 0 and "PROMO_SECRET_PEPPER" in proc.stderr


def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = _run(server_env("memory://"), "--port", str(port))
    assert proc.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_answers_many_concurrent_clients(tmp_path: Path) -> None:
    server = Server("memory://", tmp_path / "serve.log")
    try:
        r = server.post("/internal/promo/campaigns", {"code": "RUSH-0001", "name": "rush",
                                                      "promo_type": "PERCENT_DISCOUNT", "discount_percent": 5,
                                                      "max_total_uses": 25})
        assert r.status_code == 201

        assert race_redeems(server, "RUSH0001", range(1, 101), "u") == Counter({200: 25, 422: 75})
    finally:
        log = server.stop()
    # One access-log line per request.
    redeems = [ln for ln in log.splitlines() if '"route": "/internal/promo/redeem"' in ln]
    assert len(redeems) == 100


def test_several_processes_on_memory_storage_are_refused() -> None:
    proc = _run(server_env("memory://"), "--port", "0", "--processes", "2")
    assert proc.returncode == 2
    assert "--processes" in proc.stderr and "memory://" in proc.stderr and "Traceback" not in proc.stderr
