"""The console as an operator meets it: a real ``starpromo serve`` process on a free loopback port over a SQLite file
the tests can read, operators added with ``starpromo ops add-operator``, Telegram pointed at a fake Bot API (refunds
go through it) and the server's whole output captured in a file the tests grep."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from tests.fakes.bot_api import FakeBotApi
from tests.unit.http.server import answers_healthz

STARPROMO = str(Path(sys.executable).parent / "starpromo")
PEPPER = "browser-test-pepper-0123456789abcdef"
INTERNAL_TOKEN = "browser-test-internal-token-0123456789"
SESSION_SECRET = "browser-test-session-secret-0123456789abcdef"
BOT_TOKEN = "123456789:browser-test-bot-token"
PASSWORD = "correct horse battery staple"
ADMIN, VIEWER = "alice", "victor"
# Signs in wrongly on purpose (the throttling test): its own name, so no other test is throttled by it.
THROTTLED = "tess"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, api_url: str) -> dict[str, str]:
    """This machine's environment without any starpromo setting of its own, plus the test server's."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("INTERNAL_", "PROMO_", "TRUSTED_", "REDIS_", "TELEGRAM_", "OPS_", "DATABASE_",
                                "PAYMENT"))}
    env.update({"DATABASE_URL": database_url, "PROMO_SECRET_PEPPER": PEPPER, "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
                "OPS_SESSION_SECRET": SESSION_SECRET, "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
                "TELEGRAM_API_URL": api_url})
    return env


class ConsoleServer:
    """``starpromo serve`` with the console on, started by :meth:`start` after the database is migrated and
    seeded (``seed`` runs in this process, on the same file, before the server starts)."""

    def __init__(self, workdir: Path, bot_api: FakeBotApi) -> None:
        self.workdir = workdir
        self.bot_api = bot_api
        self.db_path = workdir / "console.db"
        self.database_url = f"sqlite:///{self.db_path}"
        self.env = server_env(self.database_url, bot_api.url)
        self.log_path = workdir / "serve.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    # --- the command line ------------------------------------------------------------------------------

    def cli(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([STARPROMO, *args], env=self.env, input=stdin, capture_output=True, text=True,
                              timeout=120)
        if check:
            assert proc.returncode == 0, f"starpromo {' '.join(args)}: {proc.returncode}\n{proc.stderr}"
        return proc

    def prepare(self) -> None:
        """Migrate the database and add the operators, as an operator would on a new machine."""
        self.cli("db", "upgrade")
        for name, role in ((ADMIN, "admin"), (VIEWER, "viewer"), (THROTTLED, "admin")):
            self.cli("ops", "add-operator", name, "--role", role, stdin=PASSWORD + "\n")

    # --- the server ------------------------------------------------------------------------------------

    def start(self) -> None:
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen([STARPROMO, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.log()}")
            if answers_healthz(self.url):
                return
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"serve did not answer /healthz within 30 s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # --- what the tests look at ------------------------------------------------------------------------

    def log(self) -> str:
        """Everything the server wrote so far (JSON log lines, and anything else on stdout/stderr)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def database_text(self) -> str:
        """The database as text: an SQL dump of every table, and the raw bytes of the file and its WAL (decoded
        as Latin-1, so any ASCII string stored anywhere, even in a freed page, is found by ``in``)."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as db:
            dump = "\n".join(db.iterdump())
        raw = "".join(p.read_bytes().decode("latin-1") for p in
                      (self.db_path, self.db_path.with_name(self.db_path.name + "-wal")) if p.exists())
        return dump + "\n" + raw

    def query(self, sql: str, params: Mapping[str, object] | tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as db:
            return list(db.execute(sql, params))
