"""``starpromo serve --processes 2`` (gunicorn) on PostgreSQL: pre-forked workers share one socket, the capacity
stays exact under concurrent clients spread over both, a worker that dies is replaced, and SIGTERM under load lets
every request in flight finish, resets no client and exits 0 within the graceful timeout (so does the one-process
server)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests
import sqlalchemy as sa
from urllib3.exceptions import NewConnectionError

from adapters.sql.engine import EngineHolder
from tests.sql import fresh_pg_database, live_units_mismatch
from tests.unit.http.server import AUTH, Server, migrate, race_redeems


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_pg_database("starpromo_procs") as url:
        migrate(url)
        yield url


def _workers(server: Server) -> list[int]:
    return sorted(child.pid for child in psutil.Process(server.proc.pid).children())


def _wait_for(predicate: object, timeout: float = 15.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail("condition not reached in time")


def test_two_processes_share_the_load_and_keep_the_capacity_exact(database_url: str, tmp_path: Path) -> None:
    server = Server(database_url, tmp_path / "serve.log", "--processes", "2", "--threads", "8")
    try:
        assert len(server.wait_for_workers(2)) == 2
        # A budget of 40 over two codes: one capped at 30, the other only by the budget.
        r = server.post("/internal/promo/campaigns", {"code": "PROC-RUSH-01", "name": "procs",
                                                      "promo_type": "PERCENT_DISCOUNT", "discount_percent": 10,
                                                      "max_total_uses": 40, "code_max_total_uses": 30})
        assert r.status_code == 201, r.text
        second = server.post(f"/internal/promo/campaigns/{r.json()['id']}/codes", {"code": "PROC-RUSH-02"})
        assert second.status_code == 201, second.text

        # Both codes at once, a new connection per call, so the kernel hands the calls to both workers.
        with ThreadPoolExecutor(max_workers=2) as pool:
            one = pool.submit(race_redeems, server, "PROCRUSH01", range(1, 201), "p")
            two = pool.submit(race_redeems, server, "PROCRUSH02", range(201, 301), "q")
            first, second_code = one.result(), two.result()
        assert set(first) | set(second_code) <= {200, 422}
        assert first[200] + second_code[200] == 40 and first[200] <= 30
    finally:
        log = server.stop()
    engines = EngineHolder(database_url, 1)
    try:
        assert live_units_mismatch(engines) == []
    finally:
        engines.dispose()
    assert log.count('"event": "http_worker_started"') == 2
    assert "Traceback" not in log
    redeems = [json.loads(ln) for ln in log.splitlines() if '"route": "/internal/promo/redeem"' in ln]
    assert len(redeems) == 300
    assert len({line["pid"] for line in redeems}) == 2  # both workers served


def test_a_dead_worker_is_replaced_and_sigterm_stops_every_process(database_url: str, tmp_path: Path) -> None:
    server = Server(database_url, tmp_path / "serve.log", "--processes", "2")
    try:
        first = server.wait_for_workers(2)
        os.kill(first[0], signal.SIGKILL)
        _wait_for(lambda: len(_workers(server)) == 2 and first[0] not in _workers(server))
        assert first[1] in _workers(server)
        for _ in range(20):
            assert server.get("/healthz", headers={}).status_code == 200
        workers = _workers(server)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=20) == 0
        assert not [pid for pid in workers if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    finally:
        log = server.stop()
    exited = [json.loads(ln) for ln in log.splitlines() if '"event": "http_worker_exited"' in ln]
    assert first[0] in {line["worker_pid"] for line in exited}
    assert f"Worker (pid:{first[0]}) was sent SIGKILL!" in log  # gunicorn's own line, in the JSON log
    assert log.count('"event": "http_worker_started"') == 3
    assert '"event": "http_server_stopped"' in log


def _refused(exc: requests.ConnectionError) -> bool:
    """The connection was never made (nothing was sent): what a client of a stopped server may see."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


@pytest.mark.parametrize("processes", [1, 2])
def test_sigterm_under_load_finishes_the_requests_in_flight_and_resets_no_client(
        database_url: str, tmp_path: Path, processes: int) -> None:
    """With gunicorn (``--processes 2``) and with the one-process waitress server alike."""
    graceful = 10
    server = Server(database_url, tmp_path / "serve.log", "--processes", str(processes), "--threads", "8",
                    "--graceful-timeout", str(graceful))
    if processes > 1:
        server.wait_for_workers(processes)
    answered: list[tuple[float, float, int]] = []  # (sent, answered, status)
    refused: list[float] = []
    broken: list[str] = []
    stop = threading.Event()
    try:
        r = server.post("/internal/promo/campaigns", {"code": f"PROC-TERM-0{processes}", "name": f"sigterm {processes}",
                                                      "promo_type": "PERCENT_DISCOUNT", "discount_percent": 5})
        assert r.status_code == 201, r.text

        def client(number: int) -> None:
            with requests.Session() as session:  # keep-alive, as a real client pool
                for i in itertools.count():
                    if stop.is_set():
                        return
                    sent = time.monotonic()
                    try:
                        reply = session.post(server.url + "/internal/promo/redeem", headers=AUTH, timeout=30,
                                             json={"user_id": number * 100_000 + i + 1,
                                                   "code": f"PROCTERM0{processes}",
                                                   "idempotency_key": f"term{processes}-{number}-{i}"})
                        answered.append((sent, time.monotonic(), reply.status_code))
                    except requests.ConnectionError as exc:
                        if not _refused(exc):
                            broken.append(repr(exc))
                        refused.append(time.monotonic())
                        time.sleep(0.02)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        time.sleep(2.0)  # under load
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=graceful + 15)
        stopped = time.monotonic()
        stop.set()
        for t in threads:
            t.join(timeout=60)
    finally:
        stop.set()
        log = server.stop()
    assert code == 0
    assert stopped - signalled < graceful + 5
    assert broken == []  # no reset, no half-answered request: only answers and, once stopped, refused connects
    assert {status for _, _, status in answered} == {200}
    assert any(sent < signalled < done for sent, done, _ in answered)  # requests in flight at SIGTERM finished
    assert refused  # ... and new connections were refused once the workers had stopped accepting
    engines = EngineHolder(database_url, 1)
    try:
        with engines.engine.connect() as conn:
            made = conn.execute(sa.text("SELECT count(*) FROM promo_redemptions WHERE idempotency_key LIKE :keys"),
                                {"keys": f"term{processes}-%"}).scalar_one()
    finally:
        engines.dispose()
    assert made == len(answered)  # every redemption the server made was answered to its client
    assert "Traceback" not in log and '"event": "http_server_stopped"' in log
