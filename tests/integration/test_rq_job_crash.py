"""SPEC 13: a job killed mid-batch and run again finishes the work exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dependency_injector import providers

from adapters.memory import ManualClock
from adapters.sql import tables
from adapters.sql.engine import EngineHolder
from domain.campaigns import CampaignSpec
from domain.model import Campaign, PromoCode, PromoType, RedeemResult, RedemptionStatus
from domain.policy import PromoPolicy
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from entrypoints.worker.jobs import run_job
from tests.conftest import PEPPER, T0
from tests.sql import live_units_mismatch, pg_engines, sqlite_engines

ROOT = str(Path(__file__).resolve().parents[2])
STARPROMO = str(Path(sys.executable).parent / "starpromo")
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


def spring_campaign(container: Container) -> tuple[Campaign, PromoCode]:
    """A 20 % campaign with a budget of 100 and its one code ``SPRING-2026`` (capped at 100 too)."""
    campaign, code = container.campaign_service().create(
        CampaignSpec(name="spring", promo_type=PromoType.PERCENT_DISCOUNT, discount_percent=20, max_total_uses=100),
        actor="test", code="SPRING-2026", code_max_total_uses=100)
    assert campaign.id is not None and code is not None and code.id is not None
    return campaign, code


def used(container: Container, campaign: Campaign, code: PromoCode) -> tuple[int, int]:
    """(the campaign's ``used_total``, its code's) as stored now."""
    assert campaign.id is not None and code.id is not None
    return (container.campaign_service().get(campaign.id).campaign.used_total,
            container.code_service().get(code.id).used_total)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with ExitStack() as stack:
        if request.param == "memory":
            yield "memory://"
        elif request.param == "sqlite":
            yield stack.enter_context(sqlite_engines(tmp_path)).url
        else:
            yield stack.enter_context(pg_engines("starpromo_crash")).url


@pytest.fixture
def container(database_url: str) -> Iterator[Container]:
    c = build_container(Settings(database_url=database_url, promo_secret_pepper=PEPPER,
                                 policy=PromoPolicy(job_batch_size=BATCH)))
    c.clock.override(providers.Object(ManualClock(T0)))
    yield c
    if c.settings().adapter_family == "sql":
        c.sql_engines().dispose()


def test_reservation_expiry_killed_after_its_first_batch_finishes_on_the_rerun_exactly_once(
        container: Container) -> None:
    campaign, code = spring_campaign(container)
    redeem = container.redemption_service()
    ids = []
    for user in range(1, USERS + 1):
        outcome = redeem.redeem(user, "SPRING-2026", f"k{user}")
        assert outcome.redemption is not None
        ids.append(outcome.redemption.id)
    assert used(container, campaign, code) == (USERS, USERS)
    clock = container.clock()
    assert isinstance(clock, ManualClock)
    clock.advance(minutes=16)  # every reservation is past reserved_until

    real_uow = container.uow_factory()
    crashing = CrashAfterCommits(real_uow, limit=1)
    container.uow_factory.override(providers.Object(crashing))
    with pytest.raises(Killed):
        run_job("run_promo_reservation_expiry", container)
    container.uow_factory.reset_override()
    with real_uow() as uow:
        done = [uow.redemptions.get(i) for i in ids]
    assert sum(r is not None and r.status is RedemptionStatus.EXPIRED for r in done) == BATCH  # batch 1 only
    assert used(container, campaign, code) == (USERS - BATCH, USERS - BATCH)

    summary = run_job("run_promo_reservation_expiry", container)
    assert summary["expired"] == USERS - BATCH

    again = run_job("run_promo_reservation_expiry", container)
    assert again["expired"] == 0
    with real_uow() as uow:
        statuses = [r.status for r in (uow.redemptions.get(i) for i in ids) if r is not None]
        by_status = uow.redemptions.count_by_status(code.id)
    assert statuses == [RedemptionStatus.EXPIRED] * USERS
    assert by_status.get(RedemptionStatus.EXPIRED) == USERS
    assert used(container, campaign, code) == (0, 0)  # each unit given back exactly once, to code and campaign
    if container.settings().adapter_family == "sql":
        assert live_units_mismatch(container.sql_engines()) == []


# A job process that SIGKILLs itself at its second commit: the first batch is committed, the second one's
# statements ran inside an open transaction that nothing in the process rolls back — the database must.
KILLED_JOB = """
import os, signal
from dependency_injector import providers
from entrypoints.container import build_container
from entrypoints.worker.jobs import run_job

container = build_container()
inner = container.uow_factory()
commits = 0


class Uow:
    def __init__(self):
        self.inner = inner()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __enter__(self):
        self.inner.__enter__()
        return self

    def __exit__(self, *exc):
        return self.inner.__exit__(*exc)

    def commit(self):
        global commits
        if commits >= 1:
            os.kill(os.getpid(), signal.SIGKILL)
        self.inner.commit()
        commits += 1


container.uow_factory.override(providers.Object(Uow))
run_job("run_promo_reservation_expiry", container)
"""


def status_counts(engines: EngineHolder, promo_code_id: int | None) -> dict[str, int]:
    with engines.engine.connect() as db:
        rows = db.execute(sa.text("SELECT status, count(*) FROM promo_redemptions WHERE promo_code_id = :id "
                                  "GROUP BY status"), {"id": promo_code_id})
        return {str(status): int(n) for status, n in rows}


def _jobs_run(env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([STARPROMO, "jobs", "run", "run_promo_reservation_expiry"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return summary


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_reservation_expiry_process_sigkilled_mid_batch_is_finished_exactly_once_by_the_next_run(
        database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMO_", "REDIS_", "OPS_ALERT_"))}
    env.update({"DATABASE_URL": database_url, "PROMO_SECRET_PEPPER": PEPPER, "PROMO_JOB_BATCH_SIZE": str(BATCH)})
    container = build_container(Settings(database_url=database_url, promo_secret_pepper=PEPPER))
    engines = container.sql_engines()
    try:
        campaign, code = spring_campaign(container)
        redeem = container.redemption_service()
        for user in range(1, USERS + 1):
            assert redeem.redeem(user, "SPRING-2026", f"k{user}").result is RedeemResult.ACCEPTED
        with engines.engine.begin() as db:  # every reservation is past reserved_until
            db.execute(sa.update(tables.promo_redemptions).values(
                reserved_until=container.clock().now() - timedelta(minutes=1)))

        killed = subprocess.run([sys.executable, "-c", KILLED_JOB], env=env, cwd=ROOT, capture_output=True,
                                text=True, timeout=120)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert status_counts(engines, code.id) == {"EXPIRED": BATCH, "RESERVED": USERS - BATCH}
        assert used(container, campaign, code) == (USERS - BATCH, USERS - BATCH)
        assert live_units_mismatch(engines) == []

        assert _jobs_run(env)["expired"] == USERS - BATCH
        assert _jobs_run(env)["expired"] == 0
        assert status_counts(engines, code.id) == {"EXPIRED": USERS}
        assert used(container, campaign, code) == (0, 0)  # each unit given back exactly once, at both levels
        assert live_units_mismatch(engines) == []
    finally:
        engines.dispose()
