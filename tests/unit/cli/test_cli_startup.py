"""The CLI starts light: its modules import the container, the web stack and the adapters inside the commands that
use them, so ``starpromo --help`` and a usage error load none of them (each ``starpromo`` run paid ~2 s for them);
the container imports an adapter when a provider first builds it, so a command loads only what it runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("sqlalchemy", "alembic", "psycopg", "flask", "werkzeug", "waitress", "gunicorn", "telebot", "redis", "rq",
         "rq_scheduler", "prometheus_client", "dependency_injector", "requests", "argon2", "playwright")


def _modules(code: str) -> set[str]:
    """Every module a fresh interpreter has loaded after running ``code``."""
    out = subprocess.run([sys.executable, "-c", code + "\nprint('\\n'.join(sorted(sys.modules)))"], check=True,
                         capture_output=True, text=True).stdout
    return set(out.split())


def _loaded(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after running ``code``."""
    return {name.split(".")[0] for name in _modules(code)}


def test_help_and_a_usage_error_load_no_heavy_module() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from entrypoints.cli.main import cli\n"
        "runner = CliRunner()\n"
        "assert runner.invoke(cli, ['--help']).exit_code == 0\n"
        "assert runner.invoke(cli, ['serve', '--help']).exit_code == 0\n"
        "usage = runner.invoke(cli, ['bot'])\n"
        "assert usage.exit_code == 2 and '--polling' in usage.output, usage.output\n"
    )
    loaded = _loaded(code)
    assert "entrypoints" in loaded and "click" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_a_command_loads_what_it_runs() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from entrypoints.cli.main import cli\n"
        "result = CliRunner().invoke(cli, ['campaigns', 'list'], env={'DATABASE_URL': 'memory://', "
        "'PROMO_SECRET_PEPPER': 'p'})\n"
        "assert result.exit_code == 0 and 'no campaigns' in result.output, result.output\n"
    )
    modules = _modules(code)
    loaded = {name.split(".")[0] for name in modules}
    assert "dependency_injector" in loaded and "adapters.memory.repositories" in modules
    assert "adapters.sql.unit_of_work" not in modules  # the family not chosen is not imported
    assert loaded.isdisjoint(("flask", "gunicorn", "waitress", "rq", "rq_scheduler", "prometheus_client")), loaded


# What a command on the SQL family must not load: the web stack, RQ, metrics, password hashing, the Telegram and
# alert-channel clients (telebot, requests, slack_sdk) and the pacer's redis, and the adapters and entrypoints of the
# other processes (the bot, the worker, the HTTP app) and of the other family (the in-memory repositories). Settings
# read the Telegram and alert defaults from light modules (adapters.telegram.limits, adapters.alerts.options).
NOT_FOR_SQL = ("flask", "waitress", "gunicorn", "rq", "rq_scheduler", "prometheus_client", "argon2", "playwright",
               "telebot", "requests", "redis", "slack_sdk", "pyrate_limiter")
NOT_FOR_SQL_MODULES = ("adapters.prometheus", "adapters.passwords", "adapters.rq", "adapters.telegram.client",
                       "adapters.telegram.pacing", "adapters.alerts._http", "adapters.memory.repositories",
                       "entrypoints.bot", "entrypoints.http", "entrypoints.worker", "entrypoints.console")
# Unset, whatever the caller's environment holds: each would (rightly) build the Telegram client, RQ or a channel.
_OPTIONAL_SERVICES = ("TELEGRAM_BOT_TOKEN", "REDIS_URL", "OPS_ALERT_WEBHOOK_URL", "OPS_ALERT_SLACK_WEBHOOK_URL",
                      "OPS_ALERT_PAGERDUTY_ROUTING_KEY")


def test_a_sql_command_loads_only_the_sql_adapters(tmp_path: Path) -> None:
    env: dict[str, str | None] = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "PROMO_SECRET_PEPPER": "p",
                                  **dict.fromkeys(_OPTIONAL_SERVICES)}
    run = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from entrypoints.cli.main import cli\n"
        "result = CliRunner().invoke(cli, {args!r}, env={env!r})\n"
        "assert result.exit_code == 0 and {expected!r} in result.output, result.output\n"
    )
    _modules(run.format(args=["db", "upgrade"], env=env, expected="database migrated from empty"))

    modules = _modules(run.format(args=["campaigns", "list"], env=env, expected="no campaigns"))
    loaded = {name.split(".")[0] for name in modules}
    assert {"dependency_injector", "sqlalchemy"} <= loaded and "adapters.sql.unit_of_work" in modules
    assert loaded.isdisjoint(NOT_FOR_SQL), sorted(loaded & set(NOT_FOR_SQL))
    assert not {m for m in modules if m.startswith(NOT_FOR_SQL_MODULES)}, sorted(
        m for m in modules if m.startswith(NOT_FOR_SQL_MODULES))
