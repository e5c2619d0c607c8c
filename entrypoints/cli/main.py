"""The ``starpromo`` command line. Each command group lives in its own module of this package."""

from __future__ import annotations

import importlib
import sys

import click

from domain.errors import ConfigurationError, DomainError

# Modules exposing ``register(cli: click.Group)``; each owns its commands.
COMMAND_MODULES: tuple[str, ...] = (
    "entrypoints.cli.demo",
    "entrypoints.cli.db",
    "entrypoints.cli.codes",
    "entrypoints.cli.campaigns",
    "entrypoints.cli.audit",
    "entrypoints.cli.dashboard",
    "entrypoints.cli.payments",
    "entrypoints.cli.ops",
    "entrypoints.cli.serve",
    "entrypoints.cli.jobs",
    "entrypoints.cli.bot",
    "entrypoints.cli.outbox",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """starpromo: promo codes for Telegram bots selling premium plans for Telegram Stars."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(cli)


def main() -> None:
    try:
        rv = cli.main(standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) else 0)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigurationError as exc:
        click.echo(f"configuration error: {exc.message}", err=True)
        sys.exit(2)
    except DomainError as exc:
        click.echo(f"error: {exc.code}: {exc.message}", err=True)
        sys.exit(1)
    except SystemExit:
        raise
    except Exception as exc:  # a bug or an unreachable service: one line, never a traceback (SPEC 10)
        first_line = (str(exc).splitlines() or [""])[0]
        click.echo(f"error: unexpected {type(exc).__name__}: {first_line}", err=True)
        sys.exit(1)
