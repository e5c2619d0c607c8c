"""The expiry job against rows other transactions hold on PostgreSQL: a reservation locked elsewhere is skipped,
left for the next run, and everything else expires; a code or campaign row locked elsewhere is waited for, and the
units go back on top of what that writer committed (one statement locks the rows in id order and updates them)."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from adapters.memory import ManualClock
from adapters.sql.engine import EngineHolder
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from domain.campaigns import CampaignService
from domain.maintenance import MaintenanceService, ReservationExpirySummary
from domain.policy import PromoPolicy
from domain.promo_codes import CodeService
from domain.redemption import RedemptionService
from tests.integration.pg_races.races import assert_books_balance, make_campaign, numbered, scalar, used

LOCKED_USERS = (3, 10, 17, 24, 31, 45, 59)


def test_reservations_locked_by_another_transaction_are_left_for_the_next_run_and_the_rest_expire(
    engines: EngineHolder, uow_factory: SqlUnitOfWorkFactory, campaigns: CampaignService, codes: CodeService,
    redemptions: RedemptionService, clock: ManualClock,
) -> None:
    plaintexts = numbered("HELD", 6)
    made = [make_campaign(campaigns, codes, f"held {i}", plaintexts[3 * i:3 * i + 3], budget=100) for i in range(2)]
    for user in range(1, 61):
        assert redemptions.redeem(user, plaintexts[user % 6], f"h{user}").accepted
    clock.advance(minutes=16)
    job = MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=7))
    with engines.engine.connect() as holder:
        locked = holder.execute(sa.text("SELECT id FROM promo_redemptions WHERE user_id = ANY(:users) ORDER BY id "
                                        "FOR UPDATE"), {"users": list(LOCKED_USERS)}).scalars().all()
        assert len(locked) == len(LOCKED_USERS)
        first = job.expire_reservations()
        # 53 due rows could be taken: seven full batches and a short one; the held rows were never waited for.
        assert first == ReservationExpirySummary(scanned=53, expired=53, batches=8)
        assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE status = 'RESERVED' "
                               "AND id = ANY(:ids)", ids=locked) == len(LOCKED_USERS)
        assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE status = 'RESERVED'") == len(locked)
        # The held reservations still hold their units, at both levels; every other unit is back.
        assert sum(used(engines, c)[0] for c in made) == sum(used(engines, c)[1] for c in made) == len(locked)
        assert_books_balance(engines)
        holder.rollback()
    second = job.expire_reservations()
    assert (second.scanned, second.expired) == (len(locked), len(locked))
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE status = 'RESERVED'") == 0
    assert [used(engines, c) for c in made] == [(0, 0), (0, 0)]
    assert scalar(engines, "SELECT coalesce(sum(used_total), 0) FROM promo_codes") == 0
    assert_books_balance(engines)


def _wait_until_blocked(engines: EngineHolder, table: str) -> None:
    """Until a backend waits for a row lock in an UPDATE of ``table`` (the job's release); fails after 30 s."""
    deadline = time.monotonic() + 30
    while scalar(engines, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                          "AND query LIKE :update", update=f"UPDATE {table} AS counted%") == 0:
        assert time.monotonic() < deadline, f"the job never waited for the {table} row"
        time.sleep(0.02)


@pytest.mark.parametrize("table", ["promo_codes", "promo_campaigns"])
def test_units_go_back_on_top_of_what_a_writer_holding_the_row_commits(
    engines: EngineHolder, uow_factory: SqlUnitOfWorkFactory, campaigns: CampaignService, codes: CodeService,
    redemptions: RedemptionService, clock: ManualClock, table: str,
) -> None:
    plaintexts = numbered("WAIT", 2)
    campaign = make_campaign(campaigns, codes, "wait", plaintexts, budget=100)
    for user in range(1, 21):
        assert redemptions.redeem(user, plaintexts[user % 2], f"w{user}").accepted
    assert used(engines, campaign) == (20, 20)
    held = scalar(engines, f"SELECT max(id) FROM {table} WHERE used_total > 0")
    clock.advance(minutes=16)
    job = MaintenanceService(uow_factory, clock, PromoPolicy(job_batch_size=50))
    summaries: list[ReservationExpirySummary] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            summaries.append(job.expire_reservations())
        except BaseException as exc:  # asserted below
            errors.append(exc)

    with engines.engine.connect() as holder:
        holder.execute(sa.text(f"UPDATE {table} SET used_total = used_total + 5 WHERE id = :id"), {"id": held})
        worker = threading.Thread(target=run)
        worker.start()
        try:
            _wait_until_blocked(engines, table)
        finally:
            holder.commit()  # the job goes on with the row as this writer left it
            worker.join(timeout=60)
    assert not worker.is_alive() and errors == []
    assert [(s.scanned, s.expired, s.batches) for s in summaries] == [(20, 20, 1)]
    # Every reservation of the held row gave its unit back on top of the writer's +5, not over it.
    assert scalar(engines, f"SELECT used_total FROM {table} WHERE id = :id", id=held) == 5
    assert scalar(engines, "SELECT count(*) FROM promo_redemptions WHERE status = 'RESERVED'") == 0
