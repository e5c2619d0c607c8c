"""`starpromo ops add-operator|set-password|remove-operator|list-operators` (SPEC 10) on a migrated SQLite file:
passwords come from standard input or a hidden prompt (never the command line), errors name the field."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from dependency_injector import providers

from adapters.memory import ManualClock
from adapters.passwords import Argon2Passwords
from entrypoints.cli.main import cli
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from tests.unit.cli.conftest import ACTOR

PASSWORD = "correct horse battery"
NEW_PASSWORD = "another long passphrase"
STARPROMO = str(Path(sys.executable).parent / "starpromo")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ops.db'}"


@pytest.fixture
def container(database_url: str, clock: ManualClock) -> Iterator[Container]:
    c = build_container(Settings.from_env({"DATABASE_URL": database_url}, require_pepper=False))
    c.clock.override(providers.Object(clock))
    c.password_hasher.override(providers.Object(Argon2Passwords(time_cost=1, memory_cost=8, parallelism=1)))
    yield c
    c.sql_engines().dispose()


class Ops:
    def __init__(self, container: Container) -> None:
        self.container = container

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), obj=self.container, input=input, catch_exceptions=False)

    def dump(self) -> str:
        """Every row of every table, as text."""
        engine = self.container.sql_engines().engine
        with engine.connect() as conn:
            return "\n".join(str(row) for name in sa.inspect(engine).get_table_names()
                             for row in conn.execute(sa.text(f"SELECT * FROM {name}")))


@pytest.fixture
def ops(container: Container) -> Ops:
    run = Ops(container)
    migrated = run("db", "upgrade")
    assert migrated.exit_code == 0, migrated.stderr
    return run


def test_add_operator_reads_the_password_from_standard_input_and_stores_only_a_hash(ops: Ops) -> None:
    added = ops("ops", "add-operator", "Ann", "--role", "admin", input=PASSWORD + "\n")
    assert added.exit_code == 0, added.stderr
    assert added.stdout == "operator Ann added (admin)\n"
    operator = ops.container.operator_service().sign_in("ann", PASSWORD, None)
    assert (operator.name, operator.role.value) == ("Ann", "admin")
    dump = ops.dump()
    assert "$argon2id$" in dump and PASSWORD not in dump


def test_list_operators_shows_name_role_and_created_by_name(ops: Ops, clock: ManualClock) -> None:
    assert ops("ops", "add-operator", "zed", "--role", "viewer", input=PASSWORD).exit_code == 0
    clock.advance(days=1)
    assert ops("ops", "add-operator", "ann", "--role", "admin", input=PASSWORD).exit_code == 0
    listed = ops("ops", "list-operators")
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout.splitlines() == ["name  role    created",
                                          "ann   admin   2026-03-02 12:00",
                                          "zed   viewer  2026-03-01 12:00"]
    doc = json.loads(ops("ops", "list-operators", "--json").stdout)
    assert [(o["name"], o["role"], o["created_at"]) for o in doc] == [
        ("ann", "admin", "2026-03-02T12:00:00Z"), ("zed", "viewer", "2026-03-01T12:00:00Z")]
    assert all("password" not in key for o in doc for key in o)


def test_list_operators_of_none_says_how_to_add_one(ops: Ops) -> None:
    listed = ops("ops", "list-operators")
    assert listed.exit_code == 0 and "starpromo ops add-operator NAME --role admin" in listed.stdout


def test_set_password_replaces_the_password_and_is_audited_as_the_login(ops: Ops) -> None:
    ops("ops", "add-operator", "ann", "--role", "admin", input=PASSWORD)
    changed = ops("ops", "set-password", "ANN", input=NEW_PASSWORD + "\n")
    assert changed.exit_code == 0, changed.stderr
    assert "password of operator ann set" in changed.stdout
    service = ops.container.operator_service()
    assert service.sign_in("ann", NEW_PASSWORD, None).session_epoch == 1
    audit = json.loads(ops("audit", "--target-type", "operator", "--json").stdout)
    entries = audit["items"] if isinstance(audit, dict) else audit
    assert [(e["actor"], e["action"]) for e in entries] == [(ACTOR, "operator.password_set"),
                                                            (ACTOR, "operator.added")]
    assert PASSWORD not in ops.dump() and NEW_PASSWORD not in ops.dump()


def test_remove_operator_removes_and_an_unknown_name_is_an_error_naming_it(ops: Ops) -> None:
    ops("ops", "add-operator", "ann", "--role", "viewer", input=PASSWORD)
    removed = ops("ops", "remove-operator", "ann")
    assert removed.exit_code == 0 and removed.stdout == "operator ann removed\n"
    again = ops("ops", "remove-operator", "ann")
    assert again.exit_code == 1
    assert again.stderr == "error: NAME: NOT_FOUND: no operator named 'ann'\n"
    assert ops("ops", "list-operators").stdout.startswith("no operators")


def test_set_password_of_an_unknown_name_fails_before_reading_a_password(ops: Ops) -> None:
    result = ops("ops", "set-password", "ghost", input="")
    assert result.exit_code == 1 and result.stderr.startswith("error: NAME: NOT_FOUND")


@pytest.mark.parametrize(("args", "password", "code", "message"), [
    (["ann lee", "--role", "admin"], PASSWORD, 2, "error: NAME: must be 1..64 characters"),
    (["ann", "--role", "admin"], "too short", 2, "error: password: must be 12..256 characters"),
    (["ann", "--role", "admin"], "", 2, "error: password: none given"),
    (["ann", "--role", "root"], PASSWORD, 2, "Invalid value for '--role'"),
    (["ann"], PASSWORD, 2, "Missing option '--role'"),
    (["ann", "--role", "admin", "--password", PASSWORD], PASSWORD, 2, "No such option"),
])
def test_bad_input_is_an_error_naming_the_field_and_adds_nothing(
        ops: Ops, args: list[str], password: str, code: int, message: str) -> None:
    result = ops("ops", "add-operator", *args, input=password)
    assert result.exit_code == code
    assert message in result.stderr and result.stdout == ""
    assert ops.container.operator_service().list() == []


def test_a_taken_name_is_an_error_naming_it(ops: Ops) -> None:
    ops("ops", "add-operator", "ann", "--role", "admin", input=PASSWORD)
    taken = ops("ops", "add-operator", "ANN", "--role", "viewer", input=PASSWORD)
    assert taken.exit_code == 1
    assert taken.stderr == "error: NAME: OPERATOR_EXISTS: an operator named 'ANN' exists already\n"


def test_on_a_terminal_the_password_is_asked_twice_without_echo(database_url: str, ops: Ops) -> None:
    """The real command on a pseudo-terminal: a mismatch is asked again, and nothing typed is echoed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMO_", "DATABASE_URL"))}
    env["DATABASE_URL"] = database_url
    leader, follower = pty.openpty()
    proc = subprocess.Popen([STARPROMO, "ops", "add-operator", "ann", "--role", "viewer"], stdin=follower,
                            stdout=subprocess.PIPE, stderr=follower, env=env)
    os.close(follower)
    transcript = b""
    seen = 0

    def read_until(text: bytes) -> None:
        """Wait for a new ``text`` (getpass drops what was typed before its prompt: answer only after it)."""
        nonlocal transcript, seen
        while text not in transcript[seen:]:
            chunk = os.read(leader, 1024)
            assert chunk, transcript
            transcript += chunk
        seen = transcript.index(text, seen) + len(text)

    try:
        read_until(b"Password: ")
        os.write(leader, PASSWORD.encode() + b"\n")
        read_until(b"Repeat the password: ")
        os.write(leader, b"not the same one!!\n")
        read_until(b"Password: ")  # asked again after the mismatch
        os.write(leader, PASSWORD.encode() + b"\n")
        read_until(b"Repeat the password: ")
        os.write(leader, PASSWORD.encode() + b"\n")
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert proc.returncode == 0, transcript
    assert out == b"operator ann added (viewer)\n"
    assert PASSWORD.encode() not in transcript and b"not the same one" not in transcript
    assert ops.container.operator_service().sign_in("ann", PASSWORD, None).name == "ann"
