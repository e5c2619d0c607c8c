"""The database's limit: capture the statements one call issues, replay them raw (pgbench or psycopg).

``StatementCapture`` records, through SQLAlchemy's ``before_cursor_execute``/``begin``/``commit``
events, exactly what the application sends for one call on the current thread. ``pgbench_script``
turns one captured redeem into a pgbench custom script that issues the same statements, in the same
transactions, with the per-call values (user id, idempotency key, campaign) drawn by ``\\set``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.core import LoadRun, Services, libpq_url, pg_conn_args

_PARAM = re.compile(r"%\((\w+)\)s")


@dataclass
class Statement:
    sql: str
    params: Mapping[str, Any] | Sequence[Any] | None
    many: bool


@dataclass
class Capture:
    """What one call sent: ``items`` are ``"BEGIN"``/``"COMMIT"``/``"ROLLBACK"`` or a ``Statement``."""

    items: list[str | Statement] = field(default_factory=list)

    @property
    def statements(self) -> list[Statement]:
        return [i for i in self.items if isinstance(i, Statement)]

    @property
    def transactions(self) -> int:
        return sum(1 for i in self.items if i == "BEGIN")

    def round_trips(self) -> int:
        """Statements plus transaction control (psycopg sends BEGIN and COMMIT as their own round trips)."""
        return len(self.items)

    def describe(self) -> list[str]:
        out = []
        for i in self.items:
            if isinstance(i, Statement):
                out.append(" ".join(i.sql.split())[:160])
            else:
                out.append(i)
        return out


class StatementCapture:
    """Record what every SQLAlchemy engine sends from the current thread while the block runs."""

    def __init__(self) -> None:
        self.capture = Capture()
        self._thread = threading.get_ident()

    def _mine(self) -> bool:
        return threading.get_ident() == self._thread

    def _on_exec(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if self._mine():
            self.capture.items.append(Statement(statement, parameters, executemany))

    def _on_begin(self, conn: Any) -> None:
        if self._mine():
            self.capture.items.append("BEGIN")

    def _on_commit(self, conn: Any) -> None:
        if self._mine():
            self.capture.items.append("COMMIT")

    def _on_rollback(self, conn: Any) -> None:
        # SQLAlchemy resets pooled connections with a rollback; only one inside a transaction matters.
        if self._mine() and self.capture.items and self.capture.items[-1] != "COMMIT" \
                and "BEGIN" in self.capture.items and self._open():
            self.capture.items.append("ROLLBACK")

    def _open(self) -> bool:
        depth = 0
        for i in self.capture.items:
            if i == "BEGIN":
                depth += 1
            elif i in ("COMMIT", "ROLLBACK"):
                depth -= 1
        return depth > 0

    def __enter__(self) -> Capture:
        event.listen(Engine, "before_cursor_execute", self._on_exec)
        event.listen(Engine, "begin", self._on_begin)
        event.listen(Engine, "commit", self._on_commit)
        event.listen(Engine, "rollback", self._on_rollback)
        return self.capture

    def __exit__(self, *exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self._on_exec)
        event.remove(Engine, "begin", self._on_begin)
        event.remove(Engine, "commit", self._on_commit)
        event.remove(Engine, "rollback", self._on_rollback)


def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, date):
        return f"'{value.isoformat()}'::date"
    if isinstance(value, list | tuple):
        return "ARRAY[" + ",".join(sql_literal(v) for v in value) + "]" if value else "'{}'"
    if isinstance(value, dict):
        import json

        return "'" + json.dumps(value).replace("'", "''") + "'"
    text = str(value)
    return "'" + text.replace("'", "''") + "'"


def render(stmt: Statement, substitute: Mapping[Any, str]) -> str:
    """The statement with every bound value inlined: values found in ``substitute`` (by value and
    type) become the given pgbench expression, the rest SQL literals."""
    if stmt.many:
        raise ValueError("executemany statements cannot be rendered for pgbench")
    params = stmt.params or {}
    if not isinstance(params, Mapping):
        raise ValueError(f"positional parameters are not supported: {stmt.sql[:80]}")

    def one(m: re.Match[str]) -> str:
        value = params[m.group(1)]
        found = key(value) if not isinstance(value, dict) else None
        if found is not None and found in substitute:
            return substitute[found]
        return sql_literal(value)

    sql = _PARAM.sub(one, stmt.sql).replace("%%", "%")
    return " ".join(sql.split())


def pgbench_script(capture: Capture, substitute: Mapping[Any, str], preamble: Sequence[str]) -> str:
    """A custom script: ``preamble`` (``\\set`` lines), then each captured item on its own line."""
    lines = list(preamble)
    for item in capture.items:
        if isinstance(item, Statement):
            lines.append(render(item, substitute) + ";")
        else:
            lines.append(item + ";")
    return "\n".join(lines) + "\n"


def key(value: Any) -> tuple[str, Any]:
    """The substitution key of a bound value: its type and value (a list by its items, e.g. a code hash list)."""
    if isinstance(value, list | tuple):
        return ("list", tuple(value))
    return (type(value).__name__, value)


@dataclass
class PgbenchRun:
    run: LoadRun
    per_statement_ms: list[tuple[float, str]]
    output: str


def run_pgbench(services: Services, db_url: str, script: str, clients: int, seconds: float,
                threads: int = 2, defines: Mapping[str, int] | None = None) -> PgbenchRun:
    """pgbench -M prepared -c clients -j threads -T seconds with per-transaction latency logs; ``defines``:
    ``-D name=value`` (a client's variables persist across its transactions: a per-client counter)."""
    exe = services.tool("pgbench")
    if shutil.which(exe) is None and not Path(exe).exists():
        raise RuntimeError("pgbench not found (apt-get install -y postgresql-client)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-pgbench-"))
    try:
        script_path = tmp / "script.sql"
        script_path.write_text(script)
        duration = max(1, round(seconds))
        cmd = [exe, "-n", "-M", "prepared", "-r", "-c", str(clients), "-j", str(threads), "-T", str(duration),
               *(f"-D{name}={value}" for name, value in (defines or {}).items()),
               "-f", str(script_path), "-l", f"--log-prefix={tmp}/tx", *pg_conn_args(db_url)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=seconds + 120)
        out = done.stdout + done.stderr
        if done.returncode != 0 or ("aborted" in done.stdout.lower() and "number of failed" not in out):
            raise RuntimeError(f"pgbench failed (rc={done.returncode}):\n{out[-3000:]}")
        failed = re.search(r"number of failed transactions: (\d+)", out)
        if failed and int(failed.group(1)) > 0:
            raise RuntimeError(f"pgbench: failed transactions:\n{out[-3000:]}")
        tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
        processed = re.search(r"number of transactions actually processed: (\d+)", out)
        if not tps or not processed:
            raise RuntimeError(f"cannot parse pgbench output:\n{out[-3000:]}")
        latencies: list[float] = []
        for f in tmp.glob("tx.*"):
            for line in f.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    latencies.append(int(parts[2]) / 1000.0)
        count = int(processed.group(1))
        rate = float(tps.group(1))
        per_stmt = []
        in_block = False
        for line in out.splitlines():
            if "statement latencies in milliseconds" in line:
                in_block = True
                continue
            if in_block:
                m = re.match(r"\s+([\d.]+)\s+(?:\d+\s+)?(.*)", line)
                if m:
                    per_stmt.append((float(m.group(1)), m.group(2)[:120]))
        run = LoadRun(ops=count, ok=count, seconds=count / rate if rate else float(duration), latencies_ms=latencies)
        return PgbenchRun(run, per_stmt, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replay_raw(db_url: str, capture: Capture) -> float:
    """Execute the captured statements once through a bare psycopg connection; milliseconds.

    The raw-SQL limit of a job or query: the same statements without the application around them."""
    import time

    with psycopg.connect(libpq_url(db_url)) as conn:
        t0 = time.perf_counter()
        for item in capture.items:
            if isinstance(item, Statement):
                conn.execute(item.sql, item.params)
            elif item == "COMMIT":
                conn.commit()
            elif item == "ROLLBACK":
                conn.rollback()
        conn.commit()
        return (time.perf_counter() - t0) * 1000.0


def replay_timed(db_url: str, capture: Capture, reps: int = 3) -> list[tuple[float, str]]:
    """Each captured statement through a bare psycopg connection, timed (the median of ``reps`` replays, ms),
    slowest first: where a job's or a query's time goes."""
    import statistics
    import time

    per: dict[int, list[float]] = {}
    text: dict[int, str] = {}
    with psycopg.connect(libpq_url(db_url)) as conn:
        for _ in range(reps):
            for i, item in enumerate(capture.items):
                if isinstance(item, Statement):
                    t0 = time.perf_counter()
                    conn.execute(item.sql, item.params)
                    per.setdefault(i, []).append((time.perf_counter() - t0) * 1000.0)
                    text[i] = " ".join(item.sql.split())
            conn.rollback()
    return sorted(((statistics.median(v), text[i]) for i, v in per.items()), reverse=True)
