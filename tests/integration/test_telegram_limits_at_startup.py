"""Telegram's own limits checked before Telegram is asked (SPEC 5 and 9, issue 17): a products file whose title
``sendInvoice`` would refuse stops ``serve`` and the worker at start-up, naming the product and the field; a
``TELEGRAM_WEBHOOK_SECRET`` with ``+`` stops start-up naming the variable (and never echoing the secret);
``bot --webhook-url http://...`` is refused naming the option. Nothing reaches the Bot API in any of them. The
start-up paths run as real ``starpromo`` processes; the rest through the CLI in this process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.telegram.rules import check_webhook_secret, check_webhook_url
from domain.errors import ConfigurationError
from entrypoints.cli.main import cli
from entrypoints.container import build_container
from entrypoints.settings import Settings
from tests.conftest import PEPPER
from tests.fakes.bot_api import FakeBotApi

STARPROMO = str(Path(sys.executable).parent / "starpromo")
TITLE_33 = "Premium Gold: 14 days, all extras"  # one character more than sendInvoice takes


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PROMO_", "TELEGRAM_", "OPS_ALERT_", "REDIS_", "DATABASE_", "STARPROMO_"))}
    env.update(DATABASE_URL="memory://", PROMO_SECRET_PEPPER=PEPPER, **extra)
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STARPROMO, *args], env=env, capture_output=True, text=True, timeout=60)


def test_a_products_file_with_a_33_character_title_stops_start_up_naming_product_and_field(tmp_path: Path) -> None:
    assert len(TITLE_33) == 33
    path = tmp_path / "products.json"
    path.write_text(json.dumps({"products": [
        {"code": "PREMIUM_7D", "stars": 50, "days": 7, "title": "Premium 7 days"},
        {"code": "GOLD_14D", "stars": 99, "days": 14, "title": TITLE_33},
    ]}), encoding="utf-8")
    env = _env(STARPROMO_PRODUCTS_FILE=str(path))
    expected = (f"configuration error: STARPROMO_PRODUCTS_FILE {path}: products[1].title (product GOLD_14D): "
                "33 characters; Telegram's sendInvoice takes at most 32")
    served = _run(env, "serve", "--port", "0")
    assert served.returncode == 2 and expected in served.stderr, served.stderr
    # The worker stops the same way (its start-up in this process: no second interpreter to wait for).
    container = build_container(Settings.from_env(env))
    worker = CliRunner().invoke(cli, ["worker", "--burst"], obj=container)
    assert worker.exit_code == 2 and expected in worker.stderr, worker.stderr


def test_a_webhook_secret_with_a_plus_stops_start_up_naming_the_variable() -> None:
    with FakeBotApi() as api:
        env = _env(TELEGRAM_BOT_TOKEN="1:test", TELEGRAM_API_URL=api.url, TELEGRAM_WEBHOOK_SECRET="abc+def-123")
        proc = _run(env, "bot", "--webhook-url", "https://bot.example.com/webhook/telegram")
        assert proc.returncode == 2, proc.stderr
        assert ("configuration error: TELEGRAM_WEBHOOK_SECRET: invalid value (must be 1..256 characters of "
                "A-Z a-z 0-9 _ -") in proc.stderr
        assert "abc+def" not in proc.stderr + proc.stdout  # a secret is never echoed
        assert api.calls == []
    with pytest.raises(ConfigurationError, match=r"^TELEGRAM_WEBHOOK_SECRET: invalid value"):
        Settings.from_env(_env(TELEGRAM_WEBHOOK_SECRET="x" * 257))  # what serve reads at start-up too
    assert Settings.from_env(_env(TELEGRAM_WEBHOOK_SECRET="A-z_09" * 40)).telegram_webhook_secret == "A-z_09" * 40


@pytest.mark.parametrize("secret", ["", "with space", "plus+sign", "slash/", "ümlaut", "x" * 257])
def test_telegrams_secret_token_rule(secret: str) -> None:
    with pytest.raises(ValueError, match=r"1\.\.256 characters of A-Z a-z 0-9 _ -"):
        check_webhook_secret(secret)


def test_an_http_webhook_url_is_refused_naming_the_option_and_an_https_one_is_set() -> None:
    with FakeBotApi() as api:
        container = build_container(Settings.from_env(_env(
            TELEGRAM_BOT_TOKEN="1:test", TELEGRAM_API_URL=api.url, TELEGRAM_WEBHOOK_SECRET="Good_secret-1")))
        for url in ("http://bot.example.com/webhook/telegram", "ftp://bot.example.com/x", "https:///no-host"):
            plain = CliRunner().invoke(cli, ["bot", "--webhook-url", url], obj=container)
            assert plain.exit_code == 2
            assert plain.stderr.startswith("error: --webhook-url: must "), plain.stderr
        assert "must be an https:// URL (Telegram delivers webhooks over HTTPS only)" in CliRunner().invoke(
            cli, ["bot", "--webhook-url", "http://bot.example.com/"], obj=container).stderr
        assert api.calls_to("setWebhook") == []
        good = CliRunner().invoke(cli, ["bot", "--webhook-url", "https://bot.example.com/webhook/telegram"],
                                  obj=container)
        assert good.exit_code == 0, good.stderr
        assert api.last("setWebhook").params["secret_token"] == "Good_secret-1"
    assert check_webhook_url("https://bot.example.com:8443/webhook/telegram").startswith("https://")
