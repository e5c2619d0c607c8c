"""SPEC 7 readiness and SPEC 13 faults for a real ``starpromo serve`` process on PostgreSQL: an unreachable or
dropped database makes ``/readyz`` answer 503 ``NOT_READY`` (JSON, no traceback) while ``/healthz`` stays up,
and Redis being down never stops redeem over HTTP."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import required_env
from tests.sql import fresh_pg_database
from tests.unit.http.server import Server, free_port, migrate

REDEEM = "/internal/promo/redeem"
CAMPAIGNS = "/internal/promo/campaigns"


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_pg_database("starpromo_ready") as url:
        migrate(url)
        yield url


def not_ready(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"error": {"code": "NOT_READY", "message": "database unreachable",
                                         "details": {"database": "unreachable"}}}


def storage_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "STORAGE_UNAVAILABLE"
    assert "Traceback" not in response.text


def campaign(server: Server, code: str, **fields: Any) -> dict[str, Any]:
    r = server.post(CAMPAIGNS, {"code": code, "name": f"fault {code}", "promo_type": "PERCENT_DISCOUNT",
                                "discount_percent": 10, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def redeem(server: Server, user_id: int, code: str, key: str) -> requests.Response:
    return server.post(REDEEM, {"user_id": user_id, "code": code, "idempotency_key": key})


def assert_clean_log(log: str) -> None:
    assert "Traceback" not in log
    assert "http_unhandled_error" not in log  # every failure was an answered, expected error


def test_readyz_is_503_not_ready_when_the_database_port_is_closed(tmp_path: Path) -> None:
    closed = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/starpromo"
    server = Server(closed, tmp_path / "serve.log")
    try:
        assert server.get("/healthz", headers={}).status_code == 200  # alive, just not ready
        not_ready(server.get("/readyz", headers={}))
        storage_unavailable(redeem(server, 1, "FAULTCODE1", "closed-1"))
        storage_unavailable(server.get(CAMPAIGNS))
    finally:
        log = server.stop()
    assert_clean_log(log)
    assert '"event": "http_not_ready"' in log


def test_readyz_turns_503_when_the_database_is_dropped_under_a_running_server(
        database_url: str, tmp_path: Path) -> None:
    server = Server(database_url, tmp_path / "serve.log")
    try:
        assert server.get("/readyz", headers={}).status_code == 200
        campaign(server, "DROP-ME-2026")
        assert redeem(server, 1, "DROPME2026", "drop-1").status_code == 200
        admin = sa.create_engine(required_env("STARPROMO_TEST_PG_ADMIN_URL"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE "{database_url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        finally:
            admin.dispose()
        not_ready(server.get("/readyz", headers={}))
        not_ready(server.get("/readyz", headers={}))  # the pool's dead connections are gone; still not ready
        storage_unavailable(redeem(server, 2, "DROPME2026", "drop-2"))
        assert server.get("/healthz", headers={}).status_code == 200
    finally:
        log = server.stop()
    assert_clean_log(log)


class RedisServer:
    """A private redis-server on a free loopback port, so the test can kill it."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(directory)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                             text=True).stdout.strip() != "PONG":
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.kill()
                pytest.fail("private redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def test_redeem_over_http_keeps_working_when_redis_goes_down(database_url: str, tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    # Alerts configured too: with REDIS_URL set they would be queued on Redis.
    server = Server(database_url, tmp_path / "serve.log", REDIS_URL=redis.url,
                    OPS_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/alerts")
    try:
        campaign(server, "REDIS-DOWN-01", max_total_uses=3)
        assert redeem(server, 1, "REDISDOWN01", "rd-1").status_code == 200
        redis.kill()
        assert redeem(server, 2, "REDISDOWN01", "rd-2").status_code == 200
        assert redeem(server, 2, "REDISDOWN01", "rd-2").json()["replayed"] is True
        assert redeem(server, 2, "REDISDOWN01", "rd-3").status_code == 409
        assert redeem(server, 3, "NOSUCHCODE1", "rd-4").status_code == 404
        assert redeem(server, 4, "REDISDOWN01", "rd-5").status_code == 200
        assert redeem(server, 5, "REDISDOWN01", "rd-6").status_code == 422  # capacity 3 used up
        campaign(server, "REDIS-DOWN-02")
        ready = server.get("/readyz", headers={})
        # Redis is reported, but the server stays in rotation: redeem works without it (SPEC 13).
        assert ready.status_code == 200
        assert ready.json() == {"status": "degraded", "database": "ok", "redis": "down"}
        assert server.get("/internal/promo/dashboard").status_code == 200
    finally:
        log = server.stop()
        redis.kill()
    assert_clean_log(log)


def test_redeem_over_http_works_when_redis_url_points_at_nothing(database_url: str, tmp_path: Path) -> None:
    server = Server(database_url, tmp_path / "serve.log", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    try:
        campaign(server, "NO-REDIS-001")
        r = redeem(server, 1, "NOREDIS001", "nr-1")
        assert r.status_code == 200 and r.json()["result"] == "ACCEPTED"
        assert redeem(server, 1, "NOREDIS001", "nr-2").status_code == 409
    finally:
        log = server.stop()
    assert_clean_log(log)
