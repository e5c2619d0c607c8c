"""A real ``starpromo serve`` process for tests that talk HTTP to it (unit: memory://; integration: SQL)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

STARPROMO = str(Path(sys.executable).parent / "starpromo")
PEPPER = "serve-smoke-pepper"
TOKEN = "serve-smoke-token-0123456789abcdef"
AUTH = {"X-Internal-Token": TOKEN}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERNAL_", "PROMO_", "TRUSTED_", "REDIS_"))}
    env.update({"DATABASE_URL": database_url, "PROMO_SECRET_PEPPER": PEPPER, "INTERNAL_API_TOKEN": TOKEN})
    env.update(extra)
    return env


def migrate(database_url: str) -> None:
    proc = subprocess.run([STARPROMO, "db", "upgrade"], env=server_env(database_url), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def answers_healthz(url: str) -> bool:
    """Whether a starting server at ``url`` answers ``/healthz`` 200 yet. Not listening yet and slow to answer (its
    first request on a loaded host) both mean "not yet"; the caller's own deadline decides when to give up."""
    try:
        return requests.get(url + "/healthz", timeout=5).status_code == 200
    except (requests.ConnectionError, requests.Timeout):
        return False


class Server:
    """A ``starpromo serve`` subprocess; its stderr (the JSON log) goes to ``log_path``. ``args`` are added to
    its command line (e.g. ``--processes 2``), ``extra_env`` to its environment (e.g. ``REDIS_URL``)."""

    def __init__(self, database_url: str, log_path: Path, *args: str, **extra_env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("w", encoding="utf-8")
        self.proc = subprocess.Popen([STARPROMO, "serve", "--host", "127.0.0.1", "--port", str(self.port), *args],
                                     env=server_env(database_url, **extra_env), stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"serve exited with {self.proc.returncode}: {log_path.read_text()}")
            if answers_healthz(self.url):
                return
            time.sleep(0.1)
        self.stop()
        pytest.fail("serve did not answer /healthz within 30 s")

    def wait_for_workers(self, count: int, timeout: float = 30.0) -> list[int]:
        """With ``--processes N``: wait until the master has forked ``count`` workers (it forks them one after
        another, so the first can answer ``/healthz`` before the last exists); their pids."""
        import psutil

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = sorted(child.pid for child in psutil.Process(self.proc.pid).children())
            if len(workers) == count:
                return workers
            time.sleep(0.05)
        pytest.fail(f"serve did not fork {count} workers within {timeout} s")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.log_path.read_text(encoding="utf-8")

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return requests.post(self.url + path, json=body, headers=headers if headers is not None else AUTH,
                             timeout=10)

    def get(self, path: str, headers: dict[str, str] | None = None) -> requests.Response:
        return requests.get(self.url + path, headers=headers if headers is not None else AUTH, timeout=10)


def race_redeems(server: Server, code: str, users: range, key_prefix: str) -> Counter[int]:
    """One redeem of ``code`` per user, 32 at once, each on a connection of its own; the HTTP statuses."""
    def redeem(user: int) -> int:
        with requests.Session() as session:
            return session.post(server.url + "/internal/promo/redeem", headers=AUTH, timeout=30,
                                json={"user_id": user, "code": code, "idempotency_key": f"{key_prefix}{user}"}
                                ).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        return Counter(pool.map(redeem, users))
