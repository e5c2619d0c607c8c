"""SPEC 15 ``/metrics`` and SPEC 7 ``X-Request-Id`` through real processes on PostgreSQL: ``serve --processes 2``
(gunicorn), real HTTP, and the job and alert numbers of other processes sharing the metrics directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue

from adapters.rq.queue import QUEUE_NAME, redis_connection
from tests.conftest import redis_database
from tests.integration.receivers import receiving
from tests.sql import fresh_pg_database
from tests.unit.http.server import AUTH, STARPROMO, Server, migrate, race_redeems, server_env

REDEEM = "/internal/promo/redeem"


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_pg_database("starpromo_metrics") as url:
        migrate(url)
        yield url


def scrape(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """One ``/metrics`` read, on a connection of its own (either worker may answer)."""
    with requests.Session() as session:
        r = session.get(server.url + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def metric(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def create(server: Server, code: str, **fields: Any) -> dict[str, Any]:
    r = server.post("/internal/promo/campaigns", {"code": code, "name": f"metrics {code}",
                                                  "promo_type": "PERCENT_DISCOUNT", "discount_percent": 10, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture(scope="module")
def two_processes(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``serve --processes 2`` with no PROMETHEUS_MULTIPROC_DIR of its own: serve makes (and removes) one."""
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    server = Server(database_url, tmp_path_factory.mktemp("serve-metrics") / "serve.log", "--processes", "2",
                    "--threads", "8")
    try:
        server.wait_for_workers(2)
        yield server
    finally:
        server.stop()


def test_counters_add_up_across_both_processes_and_match_the_requests_sent(two_processes: Server) -> None:
    server = two_processes
    create(server, "MET-CAP-0001", max_total_uses=30)
    create(server, "MET-FREE-001")
    before = scrape(server)
    statuses = race_redeems(server, "METCAP0001", range(1, 121), "cap")
    assert statuses == Counter({200: 30, 422: 90})
    assert race_redeems(server, "METFREE001", range(1, 61), "free") == Counter({200: 60})
    assert race_redeems(server, "METNOSUCH99", range(1, 11), "none") == Counter({404: 10})

    # Every scrape, whichever worker answers it, sums the files of both.
    for _ in range(6):
        after = scrape(server)

        def grew(name: str, **labels: str) -> float:
            return metric(after, name, **labels) - metric(before, name, **labels)  # noqa: B023

        assert grew("starpromo_redeem_total", result="ACCEPTED") == 90
        assert grew("starpromo_redeem_total", result="DEPLETED") == 90
        assert grew("starpromo_redeem_total", result="INVALID") == 10
        assert grew("starpromo_redeem_duration_seconds_count") == 190
        assert grew("starpromo_http_requests_total", route=REDEEM, method="POST", status="200") == 90
        assert grew("starpromo_http_requests_total", route=REDEEM, method="POST", status="422") == 90
        assert grew("starpromo_http_requests_total", route=REDEEM, method="POST", status="404") == 10
        assert grew("starpromo_http_request_duration_seconds_count", route=REDEEM, method="POST") == 190
    # The campaign with a budget shows what is left of it.
    left = [v for (name, _), v in after.items() if name == "starpromo_campaign_budget_remaining"]
    assert left == [0.0]
    assert metric(after, "starpromo_metrics_database_up") == 1

    log = log_lines(server.log_path.read_text(encoding="utf-8"))
    served_by = {line["pid"] for line in log if line.get("route") == REDEEM}
    assert len(served_by) == 2  # both workers answered redeems: the totals above are sums of two processes


def test_a_request_id_comes_back_and_marks_the_server_log_lines_of_that_request(two_processes: Server) -> None:
    server = two_processes
    create(server, "MET-RID-0001")
    mine = requests.post(server.url + REDEEM, headers={**AUTH, "X-Request-Id": "abc-123"}, timeout=10,
                         json={"user_id": 42, "code": "METRID0001", "idempotency_key": "rid-1"})
    assert mine.status_code == 200 and mine.headers["X-Request-Id"] == "abc-123"
    fresh = requests.get(server.url + "/readyz", timeout=10)
    fresh_id = fresh.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", fresh_id)
    refused = requests.post(server.url + REDEEM, json={}, headers={"X-Request-Id": "no-token-1"}, timeout=10)
    assert refused.status_code == 401 and refused.headers["X-Request-Id"] == "no-token-1"

    log = log_lines(server.log_path.read_text(encoding="utf-8"))
    tagged = [line for line in log if line.get("request_id") == "abc-123"]
    assert [(line["event"], line["route"], line["status"]) for line in tagged] == [("http_request", REDEEM, 200)]
    assert [line["route"] for line in log if line.get("request_id") == fresh_id] == ["/readyz"]
    assert [line["status"] for line in log if line.get("request_id") == "no-token-1"] == [401]
    assert all("request_id" in line for line in log if line["event"] == "http_request")


def test_sigterm_exits_0_and_removes_the_metrics_directory_serve_made(two_processes: Server) -> None:
    server = two_processes
    started = [line for line in log_lines(server.log_path.read_text(encoding="utf-8"))
               if line["event"] == "http_server_started"]
    assert len(started) == 1 and started[0]["server"] == "gunicorn"
    metrics_dir = Path(started[0]["metrics_dir"])
    counters = [p.name for p in metrics_dir.iterdir() if p.name.startswith("counter_")]
    assert len(counters) == 2  # one file per worker
    server.proc.terminate()
    assert server.proc.wait(timeout=30) == 0
    assert not metrics_dir.exists()


# --- other processes on the same host: jobs, alerts, RQ work-horses ----------------------------------------


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    url = redis_database(redis_url, 9)
    conn = redis_connection(url)
    conn.flushdb()
    yield url
    conn.flushdb()


def test_job_runs_and_alert_deliveries_of_other_processes_show_up_in_serve_s_metrics(
        database_url: str, redis_db: str, tmp_path: Path) -> None:
    """One PROMETHEUS_MULTIPROC_DIR for the host: ``serve`` reads what ``jobs run`` and an RQ ``worker`` (its
    forked work-horses included) wrote there."""
    shared = tmp_path / "metrics"
    shared.mkdir()
    server = Server(database_url, tmp_path / "serve.log", "--processes", "2", PROMETHEUS_MULTIPROC_DIR=str(shared))
    with receiving() as webhook:
        try:
            create(server, "MET-GUARD-01", code_max_total_uses=1)
            assert server.post(REDEEM, {"user_id": 1, "code": "METGUARD01", "idempotency_key": "g-1"}
                               ).status_code == 200
            for user in range(2, 7):  # five users failing on one code: the guard's hash rule (lowered below)
                assert server.post(REDEEM, {"user_id": user, "code": "METGUARD01", "idempotency_key": f"g-{user}"}
                                   ).status_code == 422
            guard = subprocess.run(
                [STARPROMO, "jobs", "run", "run_promo_bruteforce_guard"], capture_output=True, text=True, timeout=120,
                env=server_env(database_url, PROMETHEUS_MULTIPROC_DIR=str(shared), PROMO_GUARD_MIN_FAILURES="5",
                               PROMO_GUARD_MIN_USERS="5", OPS_ALERT_WEBHOOK_URL=webhook.url))
            assert guard.returncode == 0, guard.stderr
            assert json.loads(guard.stdout)["paused"], guard.stdout
            alerts = webhook.wait_for(1)
            assert {b["event"] for b in alerts} == {"promo_campaign_auto_paused"}

            job = Queue(QUEUE_NAME, connection=redis_connection(redis_db)).enqueue(
                "entrypoints.worker.jobs.run_promo_reservation_expiry")
            worker = subprocess.run([STARPROMO, "worker", "--burst"], capture_output=True, text=True, timeout=120,
                                    env=server_env(database_url, PROMETHEUS_MULTIPROC_DIR=str(shared),
                                                   REDIS_URL=redis_db))
            assert worker.returncode == 0, worker.stderr

            samples = scrape(server)
        finally:
            log = server.stop()
    assert metric(samples, "starpromo_job_runs_total", job="run_promo_bruteforce_guard", outcome="ok") == 1
    assert metric(samples, "starpromo_job_duration_seconds_count", job="run_promo_bruteforce_guard") == 1
    assert metric(samples, "starpromo_alert_deliveries_total", channel="generic", outcome="delivered") == len(alerts)
    assert metric(samples, "starpromo_job_runs_total", job="run_promo_reservation_expiry", outcome="ok") == 1
    assert metric(samples, "starpromo_redeem_total", result="DEPLETED") == 5
    # The work-horse wrote under its worker's name ("<pid>-horse"), not a file per job.
    assert any(p.name.endswith("-horse.db") for p in shared.iterdir())
    assert shared.exists()  # the operator's directory: serve leaves it alone
    # Every line of the RQ job carries its id: the worker's own lines about it and the work-horse's.
    job_lines = [line for line in log_lines(worker.stderr) if line.get("job_id") == job.id]
    assert "job_finished" in {line["event"] for line in job_lines}
    assert any("Job OK" in line.get("message", "") for line in job_lines)  # RQ's own line, in the work-horse
    assert "Traceback" not in log
