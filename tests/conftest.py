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
