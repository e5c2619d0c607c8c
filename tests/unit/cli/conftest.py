"""A container per test on the in-memory adapters, shared by every CLI invocation of that test; the login name
is pinned, so every change the CLI makes is audited as ``cli:ops-alice``."""

from __future__ import annotations

import getpass
from collections.abc import Sequence

import pytest
from click.testing import CliRunner, Result
from dependency_injector import providers

from adapters.memory import ManualClock, MemoryStore
from domain.model import AuditEntry
from entrypoints.cli.main import cli
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from tests.conftest import PEPPER

LOGIN = "ops-alice"
ACTOR = f"cli:{LOGIN}"


@pytest.fixture(autouse=True)
def login(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(getpass, "getuser", lambda: LOGIN)
    return LOGIN


@pytest.fixture
def container(clock: ManualClock) -> Container:
    c = build_container(Settings.from_env({"DATABASE_URL": "memory://", "PROMO_SECRET_PEPPER": PEPPER}))
    c.clock.override(providers.Object(clock))
    return c


class Cli:
    """Runs ``starpromo ARGS`` against the test's container (stdout and stderr kept apart); ``input`` is what
    standard input holds."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), obj=self.container, input=input, catch_exceptions=False)

    def run(self, args: Sequence[str]) -> Result:
        return self(*args)

    @property
    def store(self) -> MemoryStore:
        store: MemoryStore = self.container.memory_store()
        return store

    def audit(self) -> list[AuditEntry]:
        return list(self.store.audit)


@pytest.fixture
def run(container: Container) -> Cli:
    return Cli(container)
