"""RQ's forking worker builds the container once, in the worker, and its work-horses reuse it safely.

Each job runs in a horse forked from ``starpromo worker``; the horse inherits the container the worker prepared
before its first fork instead of building one per job (entrypoints/worker/process.py). Inheriting is safe only if a
horse never uses a database connection of its parent: the engine's inherited pool is dropped in the child without
closing it (``dispose(close=False)``, adapters/sql/engine.py) and the worker holds no connection while it forks.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
import sqlalchemy as sa
from rq import Queue

from adapters.rq.queue import QUEUE_NAME, redis_connection
from adapters.sql.engine import EngineHolder
from domain.campaigns import CampaignSpec
from domain.model import PromoType
from entrypoints.container import build_container
from entrypoints.settings import Settings
from entrypoints.worker.process import container_origin, process_container, use_container
from tests.conftest import PEPPER, redis_database
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.telegram_updates import Updates
from tests.sql import pg_engines

ROOT = str(Path(__file__).resolve().parents[2])
STARPROMO = str(Path(sys.executable).parent / "starpromo")
BOT_TOKEN = "123456789:warm-horse-token"
CODE = "WARM50"
JOBS = 6  # of each kind: Telegram updates and probes
FIRST_USER = 7_300_000


def _socket_inodes(pid: int | str) -> set[int]:
    """The inodes of the sockets process ``pid`` has open (a socket shared by two processes has one inode)."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(f"{fd_dir}/{fd}")
        except FileNotFoundError:  # closed meanwhile
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[len("socket:["):-1]))
    return inodes


def _tcp_peers(inodes: set[int]) -> list[int]:
    """The remote ports of those of ``inodes`` that are IPv4 TCP connections (/proc/net/tcp)."""
    ports = []
    with open("/proc/net/tcp", encoding="ascii") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[9]) in inodes:
                ports.append(int(fields[2].split(":")[1], 16))
    return ports


def probe(tag: str) -> dict[str, Any]:
    """An RQ job for the worker under test: records where it ran, which container it used and which database
    connection, in ``horse_probe`` (written through the container's engine: the job's database write)."""
    engine = process_container().sql_engines().engine
    parent = os.getppid()
    parent_sockets = _socket_inodes(parent)
    with engine.begin() as db:
        raw = cast(psycopg.Connection[Any], db.connection.dbapi_connection)
        own_socket = os.fstat(raw.pgconn.socket).st_ino
        row = {"tag": tag, "pid": os.getpid(), "parent": parent, "origin": container_origin(),
               "backend_pid": db.execute(sa.text("SELECT pg_backend_pid()")).scalar_one(),
               "socket_shared_with_parent": own_socket in parent_sockets,
               "parent_db_connections": _tcp_peers(parent_sockets).count(engine.url.port or 5432)}
        db.execute(sa.text("INSERT INTO horse_probe (tag, pid, parent, origin, backend_pid, socket_shared_with_parent,"
                           " parent_db_connections) VALUES (:tag, :pid, :parent, :origin, :backend_pid,"
                           " :socket_shared_with_parent, :parent_db_connections)"), row)
    return row


@pytest.fixture
def database() -> Iterator[EngineHolder]:
    with pg_engines("starpromo_warm") as engines:
        with engines.engine.begin() as db:
            db.execute(sa.text("CREATE TABLE horse_probe (tag text PRIMARY KEY, pid int, parent int, origin int,"
                               " backend_pid int, socket_shared_with_parent bool, parent_db_connections int)"))
        yield engines


def _json_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_the_horses_of_a_forking_worker_reuse_its_container_and_open_their_own_connections(
        redis_url: str, database: EngineHolder) -> None:
    redis_db = redis_database(redis_url, 8)  # a database of its own (test_rq_alert_delivery uses 6)
    conn = redis_connection(redis_db)
    conn.flushdb()
    setup = build_container(Settings(database_url=database.url, promo_secret_pepper=PEPPER))
    setup.campaign_service().create(CampaignSpec(name="warm", promo_type=PromoType.PERCENT_DISCOUNT,
                                                 discount_percent=50), actor="test", code=CODE)
    setup.sql_engines().dispose()
    queue = Queue(QUEUE_NAME, connection=conn)
    updates = Updates()
    users = range(FIRST_USER, FIRST_USER + JOBS)
    for i, user in enumerate(users):  # Telegram updates (the launch-burst path) and probes, interleaved
        queue.enqueue_call("entrypoints.bot.jobs.process_update", args=(updates.promo(user, CODE),))
        queue.enqueue_call(f"{__name__}.probe", args=(f"probe-{i}",))
    try:
        with FakeBotApi() as api:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMO_", "OPS_ALERT_", "REDIS_",
                                                                             "TELEGRAM_"))}
            env.update({"REDIS_URL": redis_db, "DATABASE_URL": database.url, "PROMO_SECRET_PEPPER": PEPPER,
                        "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_API_URL": api.url, "PYTHONPATH": ROOT})
            worker = subprocess.Popen([STARPROMO, "worker", "--burst"], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
            try:
                _, stderr = worker.communicate(timeout=180)
            finally:
                if worker.poll() is None:
                    worker.kill()
            replies = {user: api.delivered_texts(user) for user in users}
        assert worker.returncode == 0, stderr
        assert queue.failed_job_registry.count == 0, stderr
        assert queue.finished_job_registry.count == 2 * JOBS
    finally:
        conn.flushdb()

    # (a) Every job did its work: one redemption and one reply per update, one row per probe.
    with database.engine.connect() as db:
        redeemed = db.execute(sa.text("SELECT count(*) FROM promo_redemptions WHERE user_id BETWEEN :a AND :b"),
                              {"a": users[0], "b": users[-1]}).scalar_one()
        probes = [dict(r._mapping) for r in db.execute(sa.text("SELECT * FROM horse_probe ORDER BY tag"))]
    assert redeemed == JOBS
    assert all(len(texts) == 1 for texts in replies.values()), replies
    assert [p["tag"] for p in probes] == [f"probe-{i}" for i in range(JOBS)]

    # (b) Each job ran in a horse of its own, on the container the worker built: prepared once, never rebuilt.
    lines = _json_lines(stderr)
    prepared = [line for line in lines if line.get("event") == "container_prepared_for_forks"]
    assert [line["pid"] for line in prepared] == [worker.pid]
    # No thread of the container's in the worker: its main thread and RQ's command listener only.
    assert {thread.split(":")[0] for thread in prepared[0]["threads"]} <= {"_MainThread", "PubSubWorkerThread"}
    assert [line for line in lines if line.get("event") == "container_built"] == []
    assert {p["parent"] for p in probes} == {worker.pid}
    assert {p["origin"] for p in probes} == {worker.pid}
    assert len({p["pid"] for p in probes} | {worker.pid}) == JOBS + 1

    # (c) No database connection shared: the worker held none while its horses ran, and each horse used its own.
    assert [p["parent_db_connections"] for p in probes] == [0] * JOBS
    assert not any(p["socket_shared_with_parent"] for p in probes)
    assert len({p["backend_pid"] for p in probes}) == JOBS


def test_a_forked_child_opens_its_own_connection_and_leaves_its_parents_open() -> None:
    """The engine hook alone: the parent keeps a pooled connection across the fork; the child neither uses it nor
    closes it (``dispose(close=False)``), even after collecting the pool it dropped."""
    use_container(None)  # no container of another test to prepare at the fork
    with pg_engines("starpromo_forkpool", pool_size=2) as engines:
        engine = engines.engine
        with engine.connect() as db:
            parent_backend = db.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        assert cast(sa.QueuePool, engine.pool).checkedin() == 1  # pooled and open: inherited by the child
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through the pipe and never returns
            code = 1
            try:
                with engines.engine.connect() as db:
                    backend = db.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
                gc.collect()  # whatever the child dropped is gone now
                os.write(write, str(backend).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        _, status = os.waitpid(child, 0)
        child_backend = int(os.read(read, 64).decode() or 0)
        os.close(read)
        assert os.waitstatus_to_exitcode(status) == 0
        assert child_backend not in (0, parent_backend)
        with engine.connect() as db:  # the parent's pooled connection, still alive
            assert db.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() == parent_backend
