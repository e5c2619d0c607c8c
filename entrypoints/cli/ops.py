"""``starpromo ops``: the operators who sign in to the ops console (SPEC 10, 14). Passwords are read from a hidden
prompt (typed twice) on a terminal, or from the first line of standard input otherwise: never from the command
line, where ``ps`` and the shell history would show them. Every change is audited as ``cli:<login name>``."""

from __future__ import annotations

import sys

import click

from domain.errors import NotFound
from domain.operators import MAX_PASSWORD, MIN_PASSWORD, Operator, OperatorRole, OperatorService
from entrypoints.cli._ops import EXIT_USAGE, cli_actor, cli_errors, echo_json, fail, get_container, iso, table, when

# How errors name what was wrong: the NAME argument, the --role flag, the password read from the prompt or stdin.
FLAGS = {"name": "NAME", "role": "--role", "password": "password"}
ROLES = click.Choice([r.value for r in OperatorRole])


def register(cli: click.Group) -> None:
    cli.add_command(ops)


@click.group()
def ops() -> None:
    """Operators of the ops console (/ops/): add, set a password, remove, list."""


def _service(ctx: click.Context) -> OperatorService:
    # Operators are no promo codes: these commands need the database, not PROMO_SECRET_PEPPER.
    return get_container(ctx, require_pepper=False).operator_service()


def read_password() -> str:
    """A hidden prompt asked twice on a terminal; else the first line of standard input (a pipe, a file)."""
    stdin = sys.stdin  # (CliRunner puts its input here)
    if stdin.isatty():
        value = str(click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password", err=True))
    else:
        value = stdin.readline().rstrip("\r\n")
    if not value:
        fail(f"error: password: none given; type it at the prompt or pipe it on standard input "
             f"({MIN_PASSWORD}..{MAX_PASSWORD} characters)", EXIT_USAGE)
    return value


def _operator_json(operator: Operator) -> dict[str, object]:
    return {"id": operator.id, "name": operator.name, "role": operator.role.value,
            "created_at": iso(operator.created_at), "updated_at": iso(operator.updated_at)}


@ops.command("add-operator")
@click.argument("name")
@click.option("--role", type=ROLES, required=True, help="admin (may change things) or viewer (reads only).")
@click.pass_context
def add_operator(ctx: click.Context, name: str, role: str) -> None:
    """Add operator NAME (1..64 of letters, digits and . _ @ -; unique whatever the case).

    The password (12..256 characters) is asked twice without echo on a terminal, or read from the first line of
    standard input: printf '%s\\n' "$PASSWORD" | starpromo ops add-operator ann --role admin"""
    with cli_errors(FLAGS):
        service = _service(ctx)
        operator = service.add(name, role, read_password(), actor=cli_actor())
    click.echo(f"operator {operator.name} added ({operator.role.value})")


@ops.command("set-password")
@click.argument("name")
@click.pass_context
def set_password(ctx: click.Context, name: str) -> None:
    """Give operator NAME a new password (read as for add-operator). Their console sessions end."""
    with cli_errors(FLAGS):
        service = _service(ctx)
        if service.get(name) is None:  # say so before asking for the password
            raise NotFound(f"no operator named {name!r}", {"field": "name"})
        operator = service.set_password(name, read_password(), actor=cli_actor())
    click.echo(f"password of operator {operator.name} set; their console sessions are signed out")


@ops.command("remove-operator")
@click.argument("name")
@click.pass_context
def remove_operator(ctx: click.Context, name: str) -> None:
    """Remove operator NAME: they can no longer sign in, and their console sessions end."""
    with cli_errors(FLAGS):
        _service(ctx).remove(name, actor=cli_actor())
    click.echo(f"operator {name} removed")


@ops.command("list-operators")
@click.option("--json", "as_json", is_flag=True, help="Print the operators as JSON.")
@click.pass_context
def list_operators(ctx: click.Context, as_json: bool) -> None:
    """The operators by name: name, role, created."""
    with cli_errors(FLAGS):
        operators = _service(ctx).list()
    if as_json:
        echo_json([_operator_json(o) for o in operators])
        return
    if not operators:
        click.echo("no operators; add one with: starpromo ops add-operator NAME --role admin")
        return
    click.echo(table(["name", "role", "created"], [[o.name, o.role.value, when(o.created_at)] for o in operators]))
