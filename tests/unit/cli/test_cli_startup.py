"""The CLI starts light: its modules import the container, the web stack and the adapters inside the commands that
use them, so ``starpromo --help`` and a usage error load none of them (each ``starpromo`` run paid ~2 s for them)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("sqlalchemy", "alembic", "psycopg", "flask", "werkzeug", "waitress", "gunicorn", "telebot", "redis", "rq",
         "rq_scheduler", "prometheus_client", "dependency_injector", "requests", "argon2", "playwright")


def _loaded(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nprint('\\n'.join(sorted({n.split('.')[0] for n in "
                          "sys.modules})))"], check=True, capture_output=True, text=True).stdout
    return set(out.split())


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
    loaded = _loaded(code)
    assert {"dependency_injector", "sqlalchemy"} <= loaded  # the container wires every adapter family
    assert loaded.isdisjoint(("flask", "gunicorn", "waitress", "rq_scheduler")), loaded
