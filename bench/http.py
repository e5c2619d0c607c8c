"""Redeem over HTTP: ``starpromo serve`` (a subprocess) under 16 concurrent keep-alive clients.

Load generator: ``wrk`` with a Lua script (installed with apt when missing and running as root),
else a Python generator (threads with ``requests.Session``). Baseline: the same server's ``/healthz``
under the same load — what the server stack costs before the first line of redeem code runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.app import container_for, query, seed_campaigns
from bench.core import (
    REPO,
    TOKEN,
    Check,
    Context,
    LoadRun,
    PeakRss,
    WorkloadResult,
    app_env,
    drive,
    log,
    starpromo_cmd,
)
from bench.redeem import _spec

NAME = "redeem_http"

LUA = r"""
-- Globals on purpose: wrk's thread:get/thread:set only see a thread's globals.
counter = 0
codes = {}
threads = {}
ok = 0
bad = 0
tid = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do table.insert(codes, line) end
  f:close()
  base = tonumber(args[2])
  token = args[3]
  path = args[4]
end

function request()
  if path ~= "/internal/promo/redeem" then
    return wrk.format("GET", path)
  end
  counter = counter + 1
  local code = codes[((counter * 16 + tid) * 7919) % #codes + 1]
  local uid = base + tid * 1000000000 + counter
  local body = string.format('{"user_id": %d, "code": "%s", "idempotency_key": "w-%d-%d-%d"}',
                             uid, code, base, tid, counter)
  return wrk.format("POST", path, {["Content-Type"] = "application/json", ["X-Internal-Token"] = token}, body)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local okt, badt = 0, 0
  for _, t in ipairs(threads) do
    okt = okt + t:get("ok")
    badt = badt + t:get("bad")
  end
  io.write(string.format('BENCHJSON {"requests": %d, "ok": %d, "bad": %d, "duration_us": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "errors_connect": %d, "errors_read": %d, "errors_status": %d, "errors_timeout": %d}\n',
    summary.requests, okt, badt, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect, summary.errors.read, summary.errors.status, summary.errors.timeout))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wrk() -> str | None:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing wrk with apt-get")
        subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, check=False)
        found = shutil.which("wrk")
    return found


class Server:
    def __init__(self, database_url: str, threads: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="bench-serve-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*starpromo_cmd(), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--threads", str(threads)],
            env=app_env(database_url), cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"starpromo serve exited: {Path(self._log.name).read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("starpromo serve did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        os.unlink(self._log.name)


def _run_wrk(wrk: str, server: Server, codes_file: Path, base: int, path: str, clients: int,
             seconds: float) -> LoadRun:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA)
        lua = f.name
    try:
        cmd = [wrk, "-t", "2", "-c", str(clients), "-d", f"{max(1, round(seconds))}s", "--timeout", "5s",
               "-s", lua, server.url, "--", str(codes_file), str(base), TOKEN, path]
        with PeakRss(server.proc.pid) as rss:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=seconds + 60)
        m = re.search(r"BENCHJSON (\{.*\})", done.stdout)
        if done.returncode != 0 or not m:
            raise RuntimeError(f"wrk failed (rc={done.returncode}): {done.stdout[-1500:]} {done.stderr[-1500:]}")
        data: dict[str, Any] = json.loads(m.group(1))
    finally:
        os.unlink(lua)
    secs = data["duration_us"] / 1e6
    ok = data["ok"] if path != "/healthz" else data["requests"] - data["bad"]
    run = LoadRun(ops=data["requests"], ok=ok, seconds=secs, latencies_ms=[], peak_rss_mb=rss.peak_mb,
                  extra={"non_2xx": data["bad"], "socket_errors": data["errors_connect"] + data["errors_read"]
                         + data["errors_timeout"], "generator": "wrk"})
    run.extra["p50_override"] = data["p50_us"] / 1000.0
    run.extra["p99_override"] = data["p99_us"] / 1000.0
    return run


def _run_python(server: Server, codes: list[str], base: int, path: str, clients: int, seconds: float) -> LoadRun:
    sessions = [requests.Session() for _ in range(clients)]
    headers = {"X-Internal-Token": TOKEN}
    n = len(codes)

    def op(w: int, seq: int) -> bool:
        s = sessions[w]
        if path == "/healthz":
            return s.get(server.url + path, timeout=5).status_code == 200
        body = {"user_id": base + w * 10**9 + seq, "code": codes[((seq * clients + w) * 7919) % n],
                "idempotency_key": f"p-{base}-{w}-{seq}"}
        return s.post(server.url + path, json=body, headers=headers, timeout=5).status_code == 200

    with PeakRss(server.proc.pid) as rss:
        run = drive(clients, seconds, op)
    run.peak_rss_mb = rss.peak_mb
    run.extra["generator"] = "python-requests"
    return run


def _summary(run: LoadRun) -> dict[str, Any]:
    s = run.summary()
    if "p50_override" in run.extra:
        s["p50_ms"] = round(s.pop("p50_override"), 3)
        s["p99_ms"] = round(s.pop("p99_override"), 3)
    return s


def run(ctx: Context) -> WorkloadResult:
    cfg = ctx.config
    res = WorkloadResult(NAME, f"Redeem over HTTP (starpromo serve), {cfg.workers} concurrent clients")
    n_codes = 2_000 if cfg.quick else 10_000
    url = ctx.databases.fresh("bench_http")
    container = container_for(url)
    log(f"{NAME}: seeding {n_codes} campaigns")
    codes = [c for _, c in seed_campaigns(container, _spec("bench-http"), n_codes)]
    container.shutdown_resources()
    query(url, "ANALYZE")
    tmp = Path(tempfile.mkdtemp(prefix="bench-http-"))
    codes_file = tmp / "codes.txt"
    codes_file.write_text("\n".join(codes) + "\n")
    server = Server(url, threads=cfg.workers)
    wrk = _wrk()
    generator = f"wrk -t 2 -c {cfg.workers} (Lua script, keep-alive)" if wrk else "Python threads, requests.Session"
    res.notes.append(f"Load generator: {generator}; server: starpromo serve --threads {cfg.workers} (waitress).")
    try:
        server.wait_ready()
        base_counter = [int(time.time()) * 10**6]

        def load(path: str, seconds: float) -> LoadRun:
            base_counter[0] += 10**13
            if wrk:
                return _run_wrk(wrk, server, codes_file, base_counter[0], path, cfg.workers, seconds)
            return _run_python(server, codes, base_counter[0], path, cfg.workers, seconds)

        log(f"{NAME}: warm-up")
        load("/internal/promo/redeem", 2.0)
        tp: list[float] = []
        p50: list[float] = []
        p99: list[float] = []
        htp: list[float] = []
        hp50: list[float] = []
        hp99: list[float] = []
        for i in range(cfg.runs):
            log(f"{NAME}: run {i + 1}/{cfg.runs} redeem")
            r = load("/internal/promo/redeem", cfg.duration)
            s = _summary(r)
            res.runs.append(s)
            tp.append(r.throughput)
            p50.append(s["p50_ms"])
            p99.append(s["p99_ms"])
            log(f"{NAME}: run {i + 1}/{cfg.runs} /healthz")
            h = load("/healthz", max(2.0, cfg.duration / 2))
            hs = _summary(h)
            res.baseline_runs.append(hs)
            htp.append(h.throughput)
            hp50.append(hs["p50_ms"])
            hp99.append(hs["p99_ms"])
        label = "same server, GET /healthz"
        res.checks = [
            Check("throughput", "requests/s", ">=", 600, tp, label, htp),
            Check("p50 latency", "ms", "<=", 5, p50, label, hp50),
            Check("p99 latency", "ms", "<=", 25, p99, label, hp99),
        ]
        bad = sum(r.get("non_2xx", 0) for r in res.runs)
        if bad:
            res.notes.append(f"{bad} redeem responses were not 200 (all requests count toward latency; only 200s "
                             "toward throughput).")
        fives = query(url, "SELECT count(*) FROM promo_redemptions")[0][0]
        res.notes.append(f"Redemptions stored after the runs: {fives}.")
    finally:
        server.stop()
    return res
