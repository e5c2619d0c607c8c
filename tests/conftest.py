"""Shared fixtures. Real services come from scripts/with-services.sh (run by `make test`);
a test that needs one fails, never skips, when it is missing."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from adapters.memory import InMemoryUnitOfWorkFactory, ManualClock, MemoryStore
from domain.campaigns import CampaignService
from domain.checkout import CheckoutService
from domain.codes import CodeHasher
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService

PEPPER = "test-pepper"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the suite through `make test`, which starts the services")
    return value


WORKER_REDIS_DATABASES = (1, 2, 3, 4)  # the numbered Redis databases no test module claims for itself


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs the suite on two workers) each worker gets a PostgreSQL database and a
    Redis database of its own, so tests that empty them (``truncate_all``, ``FLUSHDB``) never touch the other
    worker's. A module that needs its own Redis database names a number outside ``WORKER_REDIS_DATABASES``."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    number = int(worker.removeprefix("gw"))
    if number >= len(WORKER_REDIS_DATABASES):
        raise pytest.UsageError(f"at most {len(WORKER_REDIS_DATABASES)} xdist workers (one Redis database each)")
    if redis_url := os.environ.get("STARPROMO_TEST_REDIS_URL"):
        os.environ["STARPROMO_TEST_REDIS_URL"] = f"{redis_url.rsplit('/', 1)[0]}/{WORKER_REDIS_DATABASES[number]}"
    admin_url = os.environ.get("STARPROMO_TEST_PG_ADMIN_URL")
    if admin_url:
        from tests.sql import create_pg_database

        name = f"starpromo_test_{worker}"
        create_pg_database(admin_url, name)
        for key in ("STARPROMO_TEST_PG_URL", "STARPROMO_TEST_PGBOUNCER_URL"):
            if url := os.environ.get(key):
                os.environ[key] = f"{url.rsplit('/', 1)[0]}/{name}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A ``serial`` test fails on an xdist worker instead of passing for less than it is: schemathesis's items share
    one node id per test function, and xdist would run and report one operation of the API, not every one."""
    if os.environ.get("PYTEST_XDIST_WORKER") and item.get_closest_marker("serial"):
        pytest.fail("tests marked `serial` run without -n (make test: -m 'not serial' on workers, then -m serial)")


def redis_database(redis_url: str, number: int) -> str:
    """The URL of Redis database ``number`` on the server of ``redis_url``: for a module that needs a database of its
    own (it empties it); never one of the xdist workers' ``WORKER_REDIS_DATABASES``."""
    if number in WORKER_REDIS_DATABASES:
        raise ValueError(f"Redis database {number} belongs to an xdist worker; choose one of 5-15 no module uses")
    return f"{redis_url.rsplit('/', 1)[0]}/{number}"


@pytest.fixture
def pg_url() -> str:
    return required_env("STARPROMO_TEST_PG_URL")


@pytest.fixture
def redis_url() -> str:
    return required_env("STARPROMO_TEST_REDIS_URL")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def hasher() -> CodeHasher:
    return CodeHasher(PEPPER)


@pytest.fixture
def policy() -> PromoPolicy:
    return PromoPolicy()


@pytest.fixture
def uow_factory() -> InMemoryUnitOfWorkFactory:
    return InMemoryUnitOfWorkFactory()


@pytest.fixture
def store(uow_factory: InMemoryUnitOfWorkFactory) -> MemoryStore:
    """The tables behind ``uow_factory``, for tests to read directly."""
    return uow_factory.store


@pytest.fixture
def campaigns(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher) -> CampaignService:
    return CampaignService(uow_factory, clock, hasher)


@pytest.fixture
def redemptions(
    uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher, policy: PromoPolicy
) -> RedemptionService:
    return RedemptionService(uow_factory, clock, hasher, policy)


@pytest.fixture
def codes(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher) -> CodeService:
    return CodeService(uow_factory, clock, hasher)


@pytest.fixture
def checkout(uow_factory: InMemoryUnitOfWorkFactory, clock: ManualClock) -> CheckoutService:
    return CheckoutService(uow_factory, clock)
