"""SPEC 13: a job killed mid-batch and run again finishes the work exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from dependency_injector import providers

from adapters.memory import ManualClock
from domain.campaigns import CampaignSpec
from domain.model import PromoType, RedemptionStatus
from domain.policy import PromoPolicy
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from entrypoints.worker.jobs import run_job
from tests.conftest import PEPPER, T0

USERS = 25
BATCH = 10


class Killed(BaseException):
    """The process dying: not an ``Exception``, so nothing on the way may swallow it."""


class _CrashingUow:
    def __init__(self, inner: Any, factory: CrashAfterCommits) -> None:
        self._inner = inner
        self._factory = factory

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __enter__(self) -> _CrashingUow:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)

    def commit(self) -> None:
        if self._factory.commits >= self._factory.limit:
            raise Killed  # dies after this batch's changes, before its commit
        self._inner.commit()
        self._factory.commits += 1


class CrashAfterCommits:
    """A unit-of-work factory whose process "dies" at the commit after ``limit`` successful ones."""

    def __init__(self, inner: Any, limit: int) -> None:
        self.inner = inner
        self.limit = limit
        self.commits = 0

    def __call__(self) -> _CrashingUow:
        return _CrashingUow(self.inner(), self)


@pytest.fixture(params=["memory://"])
def container(request: pytest.FixtureRequest) -> Container:
    c = build_container(Settings(database_url=request.param, promo_secret_pepper=PEPPER,
                                 policy=PromoPolicy(job_batch_size=BATCH)))
    c.clock.override(providers.Object(ManualClock(T0)))
    return c


def test_reservation_expiry_killed_after_its_first_batch_finishes_on_the_rerun_exactly_once(
        container: Container) -> None:
    campaign = container.campaign_service().create(
        CampaignSpec("spring", PromoType.PERCENT_DISCOUNT, discount_percent=20, max_total_uses=100), "SPRING-2026")
    assert campaign.id is not None
    redeem = container.redemption_service()
    ids = []
    for user in range(1, USERS + 1):
        outcome = redeem.redeem(user, "SPRING-2026", f"k{user}")
        assert outcome.redemption is not None
        ids.append(outcome.redemption.id)
    assert container.campaign_service().get(campaign.id).used_total == USERS
    container.clock().advance(minutes=16)  # every reservation is past reserved_until

    real_uow = container.uow_factory()
    crashing = CrashAfterCommits(real_uow, limit=1)
    container.uow_factory.override(providers.Object(crashing))
    with pytest.raises(Killed):
        run_job("run_promo_reservation_expiry", container)
    container.uow_factory.reset_override()
    with real_uow() as uow:
        done = [uow.redemptions.get(i) for i in ids]
    assert sum(r is not None and r.status is RedemptionStatus.EXPIRED for r in done) == BATCH  # batch 1 only
    assert container.campaign_service().get(campaign.id).used_total == USERS - BATCH

    summary = run_job("run_promo_reservation_expiry", container)
    assert summary["expired"] == USERS - BATCH

    again = run_job("run_promo_reservation_expiry", container)
    assert again["expired"] == 0
    with real_uow() as uow:
        statuses = [r.status for r in (uow.redemptions.get(i) for i in ids) if r is not None]
        by_status = uow.redemptions.count_by_status(campaign.id)
    assert statuses == [RedemptionStatus.EXPIRED] * USERS
    assert by_status.get(RedemptionStatus.EXPIRED) == USERS
    assert container.campaign_service().get(campaign.id).used_total == 0  # each unit given back exactly once
