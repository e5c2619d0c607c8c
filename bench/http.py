"""Redeem over HTTP: ``starpromo serve`` (a subprocess) under 16 concurrent keep-alive clients.

Load generator: ``wrk`` with a Lua script (installed with apt when missing and running as root),
else a Python generator (threads with ``http.client`` keep-alive connections). Baseline: the same server's ``/healthz``
under the same load — what the server stack costs before the first line of redeem code runs.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

from bench.app import close, container_for, execute, query, seed_campaigns
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
    wait_quiet,
)
from bench.redeem import _spec

NAME = "redeem_http"
TARGET_RATE = 600

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
    def __init__(self, database_url: str, threads: int, processes: int = 1) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="bench-serve-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*starpromo_cmd(), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--threads", str(threads),
             "--processes", str(processes)],
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


class _Client:
    """One keep-alive connection (http.client: far cheaper per request than requests on a shared CPU)."""

    def __init__(self, server: Server, codes: list[str], base: int, worker: int, clients: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        self._codes = codes
        self._base = base
        self._w = worker
        self._clients = clients

    def call(self, path: str, seq: int) -> bool:
        if path == "/healthz":
            self._conn.request("GET", path)
        else:
            code = self._codes[((seq * self._clients + self._w) * 7919) % len(self._codes)]
            body = json.dumps({"user_id": self._base + self._w * 10**9 + seq, "code": code,
                               "idempotency_key": f"p-{self._base}-{self._w}-{seq}"})
            self._conn.request("POST", path, body, {"Content-Type": "application/json", "X-Internal-Token": TOKEN})
        resp = self._conn.getresponse()
        resp.read()
        return resp.status == 200

    def close(self) -> None:
        self._conn.close()


def _run_python(server: Server, codes: list[str], base: int, path: str, clients: int, seconds: float) -> LoadRun:
    """Closed loop: each client sends its next request as soon as the previous answer arrives."""
    conns = [_Client(server, codes, base, w, clients) for w in range(clients)]
    with PeakRss(server.proc.pid) as rss:
        run = drive(clients, seconds, lambda w, seq: conns[w].call(path, seq))
    for c in conns:
        c.close()
    run.peak_rss_mb = rss.peak_mb
    run.extra["generator"] = "python http.client"
    return run


def _run_paced(server: Server, codes: list[str], base: int, path: str, clients: int, rate: float,
               seconds: float) -> LoadRun:
    """Open loop at ``rate`` requests/s spread over ``clients`` keep-alive connections. Latency counts
    from each request's *scheduled* send time, so a stalled server is not hidden by a waiting client
    (no coordinated omission)."""
    interval = clients / rate
    lat: list[list[float]] = [[] for _ in range(clients)]
    oks = [0] * clients
    errors: list[BaseException] = []
    start = time.perf_counter() + 0.2
    end = start + seconds

    def worker(w: int) -> None:
        client = _Client(server, codes, base, w, clients)
        i = 0
        try:
            while True:
                sched = start + (w / clients + i) * interval
                if sched >= end:
                    break
                now = time.perf_counter()
                if now < sched:
                    time.sleep(sched - now)
                if client.call(path, i):
                    oks[w] += 1
                lat[w].append((time.perf_counter() - sched) * 1000.0)
                i += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(clients)]
    with PeakRss(server.proc.pid) as rss:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise RuntimeError(f"paced client failed: {errors[0]!r}") from errors[0]
    elapsed = max(time.perf_counter(), end) - start
    all_lat = [x for chunk in lat for x in chunk]
    return LoadRun(ops=len(all_lat), ok=sum(oks), seconds=min(elapsed, seconds + 0.001) if all_lat else seconds,
                   latencies_ms=all_lat, peak_rss_mb=rss.peak_mb,
                   extra={"offered_per_s": rate, "generator": "python http.client, paced"})


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
    log(f"{NAME}: seeding {n_codes} codes of distinct campaigns")
    codes = [c for _, c in seed_campaigns(container, _spec("bench-http"), n_codes)]
    close(container)
    execute(url, "ANALYZE")
    tmp = Path(tempfile.mkdtemp(prefix="bench-http-"))
    codes_file = tmp / "codes.txt"
    codes_file.write_text("\n".join(codes) + "\n")
    threads = cfg.serve_threads or max(1, cfg.workers // cfg.serve_processes)
    server = Server(url, threads=threads, processes=cfg.serve_processes)
    wrk = _wrk()
    generator = f"wrk -t 2 -c {cfg.workers} (Lua script)" if wrk else "Python threads with http.client"
    res.notes.append(
        f"Throughput: closed loop, {cfg.workers} keep-alive clients each sending its next request when the "
        f"previous answer arrives ({generator}), i.e. the saturation rate. Latency: open loop at the target rate "
        f"{TARGET_RATE}/s over {cfg.workers} keep-alive connections, measured from each request's scheduled "
        "send time (no coordinated omission), each paced run started once the machine is quiet again (>= 85 % "
        "idle over 1 s, at most 20 s of waiting) — latency at the required load, not at saturation, where "
        f"p50 = {cfg.workers} clients / throughput by Little's law. Server: starpromo serve --processes "
        f"{cfg.serve_processes} --threads {threads} (gunicorn with threaded workers when more than one process, "
        "waitress in one).")
    try:
        server.wait_ready()
        base_counter = [int(time.time()) * 10**6]

        def next_base() -> int:
            base_counter[0] += 10**13
            return base_counter[0]

        def saturate(path: str, seconds: float) -> LoadRun:
            if wrk:
                return _run_wrk(wrk, server, codes_file, next_base(), path, cfg.workers, seconds)
            return _run_python(server, codes, next_base(), path, cfg.workers, seconds)

        def paced(path: str, seconds: float) -> LoadRun:
            # Latency at the target rate is measured on a quiet machine: the saturating run before it leaves
            # autovacuum work (thousands of new rows in seconds) that a steady 600/s would spread out.
            waited = wait_quiet()
            if waited:
                log(f"{NAME}: waited {waited:.0f} s for the machine to go quiet")
            return _run_paced(server, codes, next_base(), path, cfg.workers, TARGET_RATE, seconds)

        log(f"{NAME}: warm-up")
        saturate("/internal/promo/redeem", 2.0)
        execute(url, "ANALYZE")  # statistics of tables that hold rows, as a live database has
        tp: list[float] = []
        p50: list[float] = []
        p99: list[float] = []
        htp: list[float] = []
        hp50: list[float] = []
        hp99: list[float] = []
        short = max(2.0, cfg.duration / 2)
        for i in range(cfg.runs):
            log(f"{NAME}: run {i + 1}/{cfg.runs} redeem, closed loop")
            r = saturate("/internal/promo/redeem", cfg.duration)
            log(f"{NAME}: run {i + 1}/{cfg.runs} /healthz, closed loop")
            h = saturate("/healthz", short)
            log(f"{NAME}: run {i + 1}/{cfg.runs} redeem at {TARGET_RATE}/s")
            rp = paced("/internal/promo/redeem", cfg.duration)
            log(f"{NAME}: run {i + 1}/{cfg.runs} /healthz at {TARGET_RATE}/s")
            hp = paced("/healthz", short)
            res.runs.append({"mode": "closed loop", **_summary(r)})
            res.runs.append({"mode": f"paced {TARGET_RATE}/s", **_summary(rp)})
            res.baseline_runs.append({"mode": "closed loop, /healthz", **_summary(h)})
            res.baseline_runs.append({"mode": f"paced {TARGET_RATE}/s, /healthz", **_summary(hp)})
            tp.append(r.throughput)
            htp.append(h.throughput)
            ps, hs = _summary(rp), _summary(hp)
            p50.append(ps["p50_ms"])
            p99.append(ps["p99_ms"])
            hp50.append(hs["p50_ms"])
            hp99.append(hs["p99_ms"])
        res.checks = [
            Check("throughput (closed loop)", "requests/s", ">=", TARGET_RATE, tp,
                  "same server, GET /healthz, closed loop", htp),
            Check(f"p50 latency at {TARGET_RATE}/s", "ms", "<=", 5, p50, f"GET /healthz at {TARGET_RATE}/s", hp50),
            Check(f"p99 latency at {TARGET_RATE}/s", "ms", "<=", 25, p99, f"GET /healthz at {TARGET_RATE}/s", hp99),
        ]
        bad = sum(r["ops"] - r["ok"] for r in res.runs)
        if bad:
            res.notes.append(f"{bad} redeem responses were not 200 (they count toward latency, not throughput).")
        stored = query(url, "SELECT count(*) FROM promo_redemptions")[0][0]
        res.notes.append(f"Redemptions stored after the runs: {stored}.")
    finally:
        server.stop()
        codes_file.unlink(missing_ok=True)
        tmp.rmdir()
    return res
