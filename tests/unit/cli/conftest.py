"""A container per test on the in-memory adapters, shared by every CLI invocation of that test."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from click.testing import CliRunner, Result
from dependency_injector import providers

from adapters.memory import ManualClock
from entrypoints.cli.main import cli
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from tests.conftest import PEPPER


@pytest.fixture
def container(clock: ManualClock) -> Container:
    c = build_container(Settings.from_env({"DATABASE_URL": "memory://", "PROMO_SECRET_PEPPER": PEPPER}))
    c.clock.override(providers.Object(clock))
    return c


class Cli:
    """Runs ``starpromo ARGS`` against the test's container (stdout and stderr kept apart)."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), obj=self.container, catch_exceptions=False)

    def run(self, args: Sequence[str]) -> Result:
        return self(*args)


@pytest.fixture
def run(container: Container) -> Cli:
    return Cli(container)
