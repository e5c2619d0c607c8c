"""``Attempts.roll_up`` (the hourly rollup the dashboard and campaign stats read on PostgreSQL) on memory, SQLite and
PostgreSQL: folding complete hours changes no count and no hourly figure of any window, whether the window starts
or ends inside an hour, covers hours folded and not, or is limited to one campaign; a folded hour is final.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.model import RedeemResult
from ports.repositories import UnitOfWork
from tests.builders import Factory, make_attempt
from tests.conftest import T0

H = timedelta(hours=1)
RESULTS = [RedeemResult.ACCEPTED, RedeemResult.INVALID, RedeemResult.ACCEPTED, RedeemResult.ALREADY_USED,
           RedeemResult.RATE_LIMITED]
CAMPAIGNS = [7, None, 8, 7, 7]

# Windows: whole hours, starting and ending inside an hour, inside one hour, beyond the folded hours, empty.
WINDOWS = [
    (T0 - H, T0 + 6 * H),
    (T0 + timedelta(minutes=17), T0 + 4 * H + timedelta(minutes=5)),
    (T0 + H + timedelta(minutes=1), T0 + H + timedelta(minutes=40)),
    (T0 + 2 * H, T0 + 3 * H),
    (T0 + 3 * H + timedelta(minutes=30), T0 + 6 * H),
    (T0 + 10 * H, T0 + 12 * H),
]


def _seed(uow_factory: Factory) -> None:
    """Attempts every 7 minutes over six hours from T0, results and campaigns in turn; none in T0 + 2h."""
    with uow_factory() as uow:
        for i in range(52):
            at = T0 + timedelta(minutes=7 * i)
            if T0 + 2 * H <= at < T0 + 3 * H:
                continue
            uow.attempts.add(make_attempt(1000 + i, RESULTS[i % 5], at, campaign_id=CAMPAIGNS[i % 5]))
        uow.commit()


def _figures(uow: UnitOfWork) -> list[object]:
    out: list[object] = []
    for since, until in WINDOWS:
        for campaign_id in (None, 7, 8, 9):
            out.append(uow.attempts.counts_by_result(since, until, campaign_id))
            out.append(uow.attempts.hourly(since, until, campaign_id))
    return out


def test_folding_complete_hours_changes_no_count_of_any_window(uow_factory: Factory, backend: str) -> None:
    _seed(uow_factory)
    with uow_factory() as uow:
        before = _figures(uow)
    with uow_factory() as uow:
        # From inside the hour before T0 up to 25 minutes into T0 + 4h: the hours T0 - 1h .. T0 + 3h.
        folded = uow.attempts.roll_up(T0 - timedelta(minutes=30), T0 + 4 * H + timedelta(minutes=25))
        uow.commit()
    assert folded == (5 if backend == "postgresql" else 0)
    with uow_factory() as uow:
        assert _figures(uow) == before
        assert uow.attempts.roll_up(T0 - H, T0 + 4 * H) == 0  # nothing left to fold
        assert uow.attempts.roll_up(T0, T0 + 5 * H + timedelta(minutes=1)) == (1 if backend == "postgresql" else 0)
        uow.commit()
    with uow_factory() as uow:
        assert _figures(uow) == before
        assert uow.attempts.counts_by_result(*WINDOWS[0]) == {
            RedeemResult.ACCEPTED: 18, RedeemResult.INVALID: 10, RedeemResult.ALREADY_USED: 8,
            RedeemResult.RATE_LIMITED: 8}


def test_folding_is_kept_only_when_committed(uow_factory: Factory, backend: str) -> None:
    _seed(uow_factory)
    with uow_factory() as uow:
        uow.attempts.roll_up(T0, T0 + 3 * H)
    with uow_factory() as uow:
        assert uow.attempts.roll_up(T0, T0 + 3 * H) == (3 if backend == "postgresql" else 0)


def test_a_folded_hour_is_final(uow_factory: Factory, backend: str) -> None:
    """What the grace period (``domain.dashboard.ROLLUP_GRACE``) is for: an attempt written into an hour after that
    hour was folded is not counted where the rollup answers (PostgreSQL), only where the rows do."""
    _seed(uow_factory)
    window: tuple[datetime, datetime] = (T0, T0 + 2 * H)
    with uow_factory() as uow:
        uow.attempts.roll_up(*window)
        uow.commit()
    with uow_factory() as uow:
        uow.attempts.add(make_attempt(1, RedeemResult.INVALID, T0 + timedelta(minutes=30), campaign_id=7))
        uow.commit()
    with uow_factory() as uow:
        invalid = uow.attempts.counts_by_result(*window, 7).get(RedeemResult.INVALID, 0)
    assert invalid == (0 if backend == "postgresql" else 1)
