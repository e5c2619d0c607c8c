"""The other ways updates arrive: `starpromo bot --polling`, and the webhook handing work to RQ."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.conftest import redis_database
from tests.e2e.stack import STARPROMO, Stack, stack_env, starpromo
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.telegram_updates import Updates


def test_polling_answers_updates_and_confirms_them(tmp_path: Path, sqlite_url: str) -> None:
    with FakeBotApi() as api:
        env = stack_env(sqlite_url, api.url)
        updates = Updates()
        first = updates.promo(801, None)
        api.push_update(first)
        log = (tmp_path / "bot.log").open("w")
        proc = subprocess.Popen([STARPROMO, "bot", "--polling", "--poll-timeout", "1"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            api.wait_for("sendMessage", 1, timeout=30)
            api.push_update(updates.promo(802, "NOSUCHCODE", language_code="en"))
            api.wait_for("sendMessage", 2, timeout=10)
            # the next poll confirms both updates (offset = last update_id + 1)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                    c.params.get("offset") == str(first["update_id"] + 2) for c in api.calls_to("getUpdates")):
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
            log.close()
        output = (tmp_path / "bot.log").read_text()
        assert proc.returncode == 0, output
        assert api.calls_to("deleteWebhook"), "polling removes a webhook first"
        assert api.texts(801) == ["Sende deinen Promo-Code so: /promo DEINCODE (zum Beispiel /promo SOMMER20)."]
        assert api.texts(802) == ["I don't know this code. Check the spelling and send /promo CODE again."]
        assert any(c.params.get("offset") == str(first["update_id"] + 2) for c in api.calls_to("getUpdates"))
        assert '"event": "telegram_polling_stopped"' in output


def test_bot_command_needs_a_mode_and_a_token(tmp_path: Path) -> None:
    with FakeBotApi() as api:
        env = stack_env("memory://", api.url)
        no_mode = starpromo(env, "bot")
        assert no_mode.returncode == 2 and "--polling" in no_mode.stderr
        no_token = starpromo({**env, "TELEGRAM_BOT_TOKEN": ""}, "bot", "--polling")
        assert no_token.returncode == 2 and "TELEGRAM_BOT_TOKEN" in no_token.stderr
        webhook = starpromo(env, "bot", "--webhook-url", "https://bot.example.com/webhook/telegram")
        assert webhook.returncode == 0, webhook.stderr
        assert api.last("setWebhook").params["url"] == "https://bot.example.com/webhook/telegram"
        assert api.last("setWebhook").params["secret_token"] == env["TELEGRAM_WEBHOOK_SECRET"]


def test_with_redis_the_webhook_answers_fast_and_a_worker_processes_the_update(
        tmp_path: Path, sqlite_url: str, redis_url: str) -> None:
    with FakeBotApi() as api:
        database_url = sqlite_url
        # A database of its own on the shared Redis server, so no other test's queue is touched.
        own_redis = redis_database(redis_url, 11)
        redis.Redis.from_url(own_redis).flushdb()
        stack = Stack(database_url, api, tmp_path / "serve.log", REDIS_URL=own_redis)
        try:
            update = stack.updates.promo(901, "QUEUEDSECRET7")
            assert stack.deliver(update)["result"] == "queued"
            # Telegram's redelivery before a worker took the first: queued too, and dropped by the handling
            # (the update id is marked in the transaction of its change, so only one of the two can commit).
            assert stack.deliver(update)["result"] == "queued"
            assert api.calls_to("sendMessage") == []  # nothing happens until a worker runs the job
            worker = starpromo(stack.env, "worker", "--burst", timeout=120)
            assert worker.returncode == 0, worker.stderr
            assert api.texts(901) == [
                "Diesen Code kenne ich nicht. Prüfe die Schreibweise und sende /promo CODE erneut."]
            assert stack.deliver(update)["result"] == "duplicate"  # handled: dropped at the door
            # the worker logs each job's call string: the update inside never shows its code
            assert f"<telegram update {update['update_id']}>" in worker.stdout + worker.stderr
            assert "QUEUEDSECRET7" not in worker.stdout + worker.stderr
            # a pre-checkout query is answered at once, never queued (Telegram waits 10 s at most)
            pre_checkout = stack.updates.pre_checkout(901, "purchase:777", 50, query_id="pcq-inline")
            assert stack.deliver(pre_checkout)["result"] == "processed"
            assert api.last("answerPreCheckoutQuery").params["pre_checkout_query_id"] == "pcq-inline"
        finally:
            log = stack.stop()
        assert "QUEUEDSECRET7" not in log


def test_with_redis_down_the_webhook_still_processes_the_update(tmp_path: Path, sqlite_url: str) -> None:
    with FakeBotApi() as api:
        database_url = sqlite_url
        stack = Stack(database_url, api, tmp_path / "serve.log", REDIS_URL="redis://127.0.0.1:9/0")
        try:
            assert stack.deliver(stack.updates.promo(902, None))["result"] == "processed"
            assert len(api.texts(902)) == 1
        finally:
            log = stack.stop()
        assert '"event": "telegram_update_enqueue_failed"' in log
