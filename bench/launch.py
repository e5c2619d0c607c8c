"""A launch burst through the bot (SPEC 12): 2,000 ``/promo`` updates from distinct users into the webhook of
``starpromo serve`` (a subprocess, PostgreSQL, no Redis: each update handled in its request) while the fake Bot
API (tests/fakes/bot_api.py, over real HTTP) enforces a global limit of L messages per second and one per second
per chat, answering 429 + ``retry_after`` beyond them.

Measured: the time from the first update sent to the last reply Telegram (the fake) accepted, beside the physical
limit 2,000 / L (no bot can answer faster); replies lost (users without one) and users answered twice, read from
what the fake delivered. L is Telegram's own 30/s (a run lasts about 67 s): on this 2-core host one ``serve``
process takes a flood in at 40-55 updates/s, so a larger L would measure the webhook's intake rather than the
pacing. ``TELEGRAM_MAX_MESSAGES_PER_SECOND`` is set to the same L, as an operator sets it to the bot's real limit.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench.app import close, container_for
from bench.core import REPO, Check, Context, WorkloadResult, app_env, log, starpromo_cmd, wait_quiet
from domain.campaigns import CampaignSpec
from domain.model import PromoType
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.telegram_updates import Updates

NAME = "launch_burst"
UPDATES = 2000
LIMIT = 30
CODE = "LAUNCH50"
TOKEN = "123456:bench-bot-token"
SECRET = "bench-webhook-secret"
CLIENTS = 32  # concurrent webhook deliveries (Telegram opens up to 40 with its default max_connections)
TARGET_FACTOR = 1.15


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _one_run(ctx: Context, run: int, updates: int, limit: int) -> dict[str, Any]:
    database_url = ctx.databases.fresh(f"bench_launch_{run}")
    container = container_for(database_url)
    try:
        container.campaign_service().create(
            CampaignSpec(name="launch", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=50),
            actor="cli:bench", code=CODE)
    finally:
        close(container)
    with FakeBotApi(token=TOKEN, messages_per_second=limit, chat_interval=1.0) as api:
        port = _free_port()
        serve_log = tempfile.NamedTemporaryFile(prefix="bench-launch-", suffix=".log", delete=False)  # noqa: SIM115
        env = app_env(database_url, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_WEBHOOK_SECRET=SECRET,
                      TELEGRAM_API_URL=api.url, TELEGRAM_MAX_MESSAGES_PER_SECOND=str(limit))
        proc = subprocess.Popen([*starpromo_cmd(), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                cwd=REPO, stdout=serve_log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(proc, url, Path(serve_log.name))
            built = Updates(first_update_id=700_000_000)
            bodies = [built.promo(9_000_000_000 + i, CODE) for i in range(updates)]
            wait_quiet(10)
            local = threading.local()

            def post(update: dict[str, Any]) -> int:
                session = getattr(local, "session", None)
                if session is None:
                    session = local.session = requests.Session()
                response = session.post(url + "/webhook/telegram", json=update, timeout=60,
                                        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
                return response.status_code

            started_wall = time.time()
            started = time.monotonic()
            with ThreadPoolExecutor(CLIENTS) as pool:
                statuses = Counter(pool.map(post, bodies))
            taken = time.monotonic() - started
            deadline = started + 20 * updates / limit + 60
            while len(api.delivered_texts()) < updates and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            time.sleep(2.0)  # a reply sent twice would arrive now
            delivered = [c for c in api.delivered if c.method == "sendMessage"]
            per_chat = Counter(c.params["chat_id"] for c in delivered)
            last = max((c.at for c in delivered), default=started_wall) - started_wall
            return {"updates": updates, "limit_per_s": limit, "webhook_200": statuses.get(200, 0),
                    "ingest_s": round(taken, 3), "last_reply_s": round(last, 3),
                    "physical_limit_s": round(updates / limit, 3), "delivered": len(delivered),
                    "users_answered": len(per_chat), "lost": updates - len(per_chat),
                    "twice": sum(1 for n in per_chat.values() if n > 1),
                    "refused_429": api.flood_refusals}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
            serve_log.close()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"starpromo serve exited: {log_path.read_text()[-2000:]}")
        try:
            if requests.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError("starpromo serve did not become ready")


def run(ctx: Context) -> WorkloadResult:
    cfg = ctx.config
    updates = 400 if cfg.quick else UPDATES
    limit = LIMIT
    res = WorkloadResult(NAME, f"A launch burst through the bot: {updates:,} /promo updates from distinct users into "
                               f"the webhook, the fake Bot API enforcing {limit} messages/s (429 + retry_after)")
    for i in range(cfg.runs):
        one = _one_run(ctx, i + 1, updates, limit)
        log(f"{NAME} run {i + 1}: {one}")
        res.runs.append(one)
        ctx.databases.drop(f"bench_launch_{i + 1}")
    physical = updates / limit
    res.checks = [
        Check("time to the last reply", "s", "<=", round(TARGET_FACTOR * physical, 3),
              [float(r["last_reply_s"]) for r in res.runs], f"physical limit {updates:,} / {limit}/s",
              [physical for _ in res.runs]),
        Check("replies lost", "users", "<=", 0, [float(r["lost"]) for r in res.runs]),
        Check("users answered twice", "users", "<=", 0, [float(r["twice"]) for r in res.runs]),
    ]
    res.notes.append(
        f"starpromo serve (one process, 16 threads, PostgreSQL, no Redis: every update handled in its webhook "
        f"request, its reply written to telegram_outbox in that transaction and delivered by the process's outbox "
        f"threads, paced to TELEGRAM_MAX_MESSAGES_PER_SECOND={limit} and one message per chat per second). "
        f"{CLIENTS} concurrent webhook deliveries. ingest_s: until the webhook had answered every update; "
        f"refused_429: messages the fake answered 429 (the bot's sliding window and the fake's see each send a "
        f"few ms apart, so a send at the edge of a second is now and then refused; it comes again after "
        f"retry_after, once). At Telegram's own limit (30/s) the physical limit of {updates:,} replies is "
        f"{updates / 30:.1f} s.")
    return res
