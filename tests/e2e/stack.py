"""The bot stack as a user meets it: a real ``starpromo serve`` process (webhook + internal API) whose
telebot talks to a fake Bot API over real HTTP, on a SQLite file the test can also read."""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from adapters.sql.engine import EngineHolder
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.telegram_updates import Updates
from tests.unit.http.server import answers_healthz

STARPROMO = str(Path(sys.executable).parent / "starpromo")
PEPPER = "e2e-pepper"
INTERNAL_TOKEN = "e2e-internal-token-0123456789abcdef"
BOT_TOKEN = "123456789:e2e-bot-token"
WEBHOOK_SECRET = "e2e-webhook-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
AUTH = {"X-Internal-Token": INTERNAL_TOKEN}
_campaign_numbers = itertools.count(1)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stack_env(database_url: str, api_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("INTERNAL_", "PROMO_", "TRUSTED_", "REDIS_", "TELEGRAM_", "OPS_ALERT_"))}
    env.update({"DATABASE_URL": database_url, "PROMO_SECRET_PEPPER": PEPPER, "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
                "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "TELEGRAM_API_URL": api_url})
    env.update(extra)
    return env


def starpromo(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STARPROMO, *args], env=env, capture_output=True, text=True, timeout=timeout)


# Telegram's per-chat turn (TELEGRAM_CHAT_INTERVAL_SECONDS, 1 s by default) shortened for the stacks whose tests
# send a chat several messages in a row: they test what the bot says, and would otherwise wait a second for each
# reply after a chat's first. tests/e2e/test_bot_pacing.py runs the default against a fake that enforces it.
QUICK_CHATS = {"TELEGRAM_CHAT_INTERVAL_SECONDS": "0.05"}


def migrated_sqlite(tmp: Path) -> Path:
    """A SQLite file at the newest schema, by ``starpromo db upgrade`` (each test copies it: :func:`sqlite_db`)."""
    path = tmp / "migrated.db"
    proc = starpromo(stack_env(f"sqlite:///{path}", "http://127.0.0.1:9"), "db", "upgrade")
    assert proc.returncode == 0, proc.stderr
    assert "database migrated from empty to revision" in proc.stdout, proc.stdout
    return path


def sqlite_db(tmp: Path, migrated: Path) -> str:
    """A fresh database in ``tmp``: a copy of the ``migrated`` one (SQLite's backup API, so a copy is consistent)."""
    path = tmp / "starpromo.db"
    with closing(sqlite3.connect(migrated)) as source, closing(sqlite3.connect(path)) as target:
        source.backup(target)
    return f"sqlite:///{path}"


class Stack:
    """``starpromo serve`` with the bot's webhook. ``send(update)`` delivers like Telegram does."""

    def __init__(self, database_url: str, api: FakeBotApi, log_path: Path, **extra_env: str) -> None:
        self.api = api
        self.database_url = database_url
        self.env = stack_env(database_url, api.url, **extra_env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("w", encoding="utf-8")
        self.proc = subprocess.Popen([STARPROMO, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                     env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        self.updates = Updates()
        self._engines: EngineHolder | None = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"serve exited with {self.proc.returncode}: {log_path.read_text()}")
            if answers_healthz(self.url):
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail("serve did not answer /healthz within 30 s")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        if self._engines is not None:
            self._engines.dispose()
        return self.log_path.read_text(encoding="utf-8")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    # --- Telegram's side -----------------------------------------------------------------------------

    def send(self, update: Any, secret: str | None = WEBHOOK_SECRET, raw: bytes | None = None) -> requests.Response:
        headers = {} if secret is None else {SECRET_HEADER: secret}
        if raw is not None:
            headers["Content-Type"] = "application/json"
            return requests.post(self.url + "/webhook/telegram", data=raw, headers=headers, timeout=10)
        return requests.post(self.url + "/webhook/telegram", json=update, headers=headers, timeout=10)

    def deliver(self, update: dict[str, Any]) -> dict[str, Any]:
        response = self.send(update)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    # --- ops' side -----------------------------------------------------------------------------------

    def post(self, path: str, body: Any) -> requests.Response:
        return requests.post(self.url + path, json=body, headers=AUTH, timeout=10)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, headers=AUTH, timeout=10)

    def create_campaign(self, code: str, **fields: Any) -> dict[str, Any]:
        """A campaign (a numbered name unless ``name`` is given: names are unique, and never carry a code) with
        ``code`` as its one code; the campaign JSON, whose ``code`` member is that code's row."""
        body = {"name": f"e2e campaign {next(_campaign_numbers)}", "code": code, "target_scope": "ALL",
                "valid_from": (datetime.now(UTC) - timedelta(days=1)).isoformat(), **fields}
        response = self.post("/internal/promo/campaigns", body)
        assert response.status_code == 201, response.text
        campaign: dict[str, Any] = response.json()
        assert campaign["code"] is not None and campaign["code"]["campaign_id"] == campaign["id"], campaign
        return campaign

    def discount_campaign(self, code: str, percent: int, **fields: Any) -> dict[str, Any]:
        return self.create_campaign(code, promo_type="PERCENT_DISCOUNT", discount_percent=percent, **fields)

    def stars_campaign(self, code: str, stars: int, **fields: Any) -> dict[str, Any]:
        return self.create_campaign(code, promo_type="STARS_DISCOUNT", discount_stars=stars, **fields)

    def run_job(self, name: str) -> subprocess.CompletedProcess[str]:
        proc = starpromo(self.env, "jobs", "run", name)
        assert proc.returncode == 0, proc.stderr
        return proc

    def uow(self) -> Any:
        """A unit of work on the stack's database, to look at what the stack wrote."""
        if self._engines is None:
            self._engines = EngineHolder(self.database_url, 2)
        return SqlUnitOfWorkFactory(self._engines)()
