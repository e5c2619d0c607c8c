"""`starpromo db upgrade`: build or update the schema of ``DATABASE_URL`` with the Alembic migrations."""

from __future__ import annotations

import click

from entrypoints.cli._ops import cli_errors, fail, get_container


def register(cli: click.Group) -> None:
    cli.add_command(db)


@click.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Migrate DATABASE_URL to the newest schema (running it again is a no-op)."""
    with cli_errors():
        container = get_container(ctx, require_pepper=False)
        settings = container.settings()
    if settings.adapter_family != "sql":
        click.echo(f"{settings.database_url}: in-memory database, nothing to migrate")
        return
    from adapters.sql.migrations import upgrade as run_upgrade

    try:
        before, after = run_upgrade(container.sql_engines())
    except Exception as exc:
        fail(f"error: migration of {settings.database_url.split('@')[-1]} failed: {type(exc).__name__}: {exc}")
    if before == after:
        click.echo(f"database is up to date (revision {after})")
    else:
        click.echo(f"database migrated from {before or 'empty'} to revision {after}")
