"""The services of the races on one PostgreSQL database for the package, emptied before each test. ``clock`` and
``hasher`` are the suite's own (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.memory import ManualClock
from adapters.sql.engine import EngineHolder
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from domain.campaigns import CampaignService
from domain.checkout import CheckoutService
from domain.codes import CodeHasher
from domain.maintenance import MaintenanceService
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService
from tests.integration.pg_races.races import MAX_THREADS
from tests.sql import pg_engines, truncate_all


@pytest.fixture(scope="package")
def engines() -> Iterator[EngineHolder]:
    with pg_engines("starpromo_race", pool_size=MAX_THREADS) as holder:
        yield holder


@pytest.fixture
def uow_factory(engines: EngineHolder) -> SqlUnitOfWorkFactory:
    truncate_all(engines)
    return SqlUnitOfWorkFactory(engines)


@pytest.fixture
def campaigns(uow_factory: SqlUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher) -> CampaignService:
    return CampaignService(uow_factory, clock, hasher)


@pytest.fixture
def codes(uow_factory: SqlUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher) -> CodeService:
    return CodeService(uow_factory, clock, hasher)


@pytest.fixture
def redemptions(uow_factory: SqlUnitOfWorkFactory, clock: ManualClock, hasher: CodeHasher) -> RedemptionService:
    # Throttling would turn a racing user's ALREADY_USED answers into RATE_LIMITED ones: not what is measured.
    return RedemptionService(uow_factory, clock, hasher, PromoPolicy(fail_limit=1000))


@pytest.fixture
def checkout(uow_factory: SqlUnitOfWorkFactory, clock: ManualClock) -> CheckoutService:
    return CheckoutService(uow_factory, clock)


@pytest.fixture
def jobs(uow_factory: SqlUnitOfWorkFactory, clock: ManualClock) -> MaintenanceService:
    return MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=7))
