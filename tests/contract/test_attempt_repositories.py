"""The ``Attempts`` port (``promo_attempts``) on memory, SQLite and PostgreSQL: the failure window of throttling,
the guard's statistics, and the counts and listings of reports and support.

Each test states a rule of the ports (ports/repositories.py) that the domain relies on.
"""

from __future__ import annotations

from datetime import timedelta, timezone

from domain.model import RedeemResult
from tests.builders import Factory, make_attempt
from tests.conftest import T0
from tests.contract.conftest import LATER


def test_failure_stats_count_only_failures_in_the_window(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        for i, result in enumerate([RedeemResult.INVALID, RedeemResult.ACCEPTED, RedeemResult.RATE_LIMITED,
                                    RedeemResult.DEPLETED, RedeemResult.INVALID]):
            uow.attempts.add(make_attempt(1, result, T0 + timedelta(minutes=i)))
        uow.attempts.add(make_attempt(2, RedeemResult.INVALID, T0 + timedelta(minutes=9)))
        uow.commit()
    with uow_factory() as uow:
        assert uow.attempts.failure_stats(1, T0) == (3, T0 + timedelta(minutes=4))
        assert uow.attempts.failure_stats(1, T0 + timedelta(minutes=1)) == (2, T0 + timedelta(minutes=4))
        assert uow.attempts.failure_stats(3, T0) == (0, None)
        assert uow.attempts.counts_by_result(T0, T0 + timedelta(minutes=5)) == {
            RedeemResult.INVALID: 2, RedeemResult.ACCEPTED: 1, RedeemResult.RATE_LIMITED: 1,
            RedeemResult.DEPLETED: 1,
        }


def test_guard_statistics_group_failures_by_hash_and_by_prefix(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        for i in range(6):
            uow.attempts.add(make_attempt(100 + i % 3, RedeemResult.ALREADY_USED, T0 + timedelta(seconds=i),
                                          h="x" * 64))
        for i in range(4):
            uow.attempts.add(make_attempt(200 + i, RedeemResult.INVALID, T0 + timedelta(seconds=i), h=f"{i:064x}",
                                          prefix="ZZZZ"))
        uow.attempts.add(make_attempt(300, RedeemResult.INVALID, T0 - timedelta(hours=1), h="x" * 64,
                                      prefix="ZZZZ"))
        uow.attempts.add(make_attempt(301, RedeemResult.INVALID, T0, h=None, prefix=None))
        uow.commit()
    with uow_factory() as uow:
        stats = uow.attempts.hash_failures(T0, 6, 3)
        assert [(s.normalized_code_hash, s.failures, s.distinct_users, s.last_seen) for s in stats] == [
            ("x" * 64, 6, 3, T0 + timedelta(seconds=5))]
        assert uow.attempts.hash_failures(T0, 7, 1) == []
        assert uow.attempts.hash_failures(T0, 1, 4) == []
        prefixes = uow.attempts.invalid_prefix_failures(T0, 4)
        assert [(p.code_prefix, p.failures, p.distinct_users, p.last_seen) for p in prefixes] == [
            ("ZZZZ", 4, 4, T0 + timedelta(seconds=3))]
        assert uow.attempts.invalid_prefix_failures(T0, 5) == []


def test_an_attempt_keeps_its_campaign_and_counts_by_result_can_be_limited_to_one_campaign(
        uow_factory: Factory) -> None:
    with uow_factory() as uow:
        uow.attempts.add(make_attempt(1, RedeemResult.ACCEPTED, T0, campaign_id=7))
        uow.attempts.add(make_attempt(2, RedeemResult.DEPLETED, T0, campaign_id=7))
        uow.attempts.add(make_attempt(3, RedeemResult.ACCEPTED, T0, campaign_id=8))
        uow.attempts.add(make_attempt(4, RedeemResult.INVALID, T0))
        uow.attempts.add(make_attempt(5, RedeemResult.DEPLETED, LATER, campaign_id=7))  # outside the window
        uow.commit()
    with uow_factory() as uow:
        assert uow.attempts.counts_by_result(T0, LATER, 7) == {RedeemResult.ACCEPTED: 1, RedeemResult.DEPLETED: 1}
        assert uow.attempts.counts_by_result(T0, LATER, 8) == {RedeemResult.ACCEPTED: 1}
        assert uow.attempts.counts_by_result(T0, LATER, 9) == {}
        assert uow.attempts.counts_by_result(T0, LATER) == {
            RedeemResult.ACCEPTED: 2, RedeemResult.DEPLETED: 1, RedeemResult.INVALID: 1}
        assert [a.campaign_id for a in uow.attempts.for_user(1, 1)] == [7]
        assert [a.campaign_id for a in uow.attempts.for_user(4, 1)] == [None]


def test_hourly_attempts_count_all_and_accepted_per_utc_hour_in_a_half_open_window(uow_factory: Factory) -> None:
    half_hour_zone = timezone(timedelta(hours=5, minutes=30))
    with uow_factory() as uow:
        for minutes, result, campaign_id in [
            (0, RedeemResult.ACCEPTED, 7),  # the window's first instant
            (10, RedeemResult.INVALID, None),
            (59, RedeemResult.ACCEPTED, 8),
            (60, RedeemResult.RATE_LIMITED, 7),
            (185, RedeemResult.ACCEPTED, 7),
            (240, RedeemResult.ACCEPTED, 7),  # the window's end: outside
            (-1, RedeemResult.ACCEPTED, 7),  # before it
        ]:
            at = (T0 + timedelta(minutes=minutes)).astimezone(half_hour_zone)
            uow.attempts.add(make_attempt(1, result, at, campaign_id=campaign_id))
        uow.commit()
    window = (T0, T0 + timedelta(hours=4))
    with uow_factory() as uow:
        assert uow.attempts.hourly(*window) == [
            (T0, 3, 2), (T0 + timedelta(hours=1), 1, 0), (T0 + timedelta(hours=3), 1, 1)]
        assert uow.attempts.hourly(*window, 7) == [
            (T0, 1, 1), (T0 + timedelta(hours=1), 1, 0), (T0 + timedelta(hours=3), 1, 1)]
        assert uow.attempts.hourly(*window, 9) == []
        hours = [hour for hour, _, _ in uow.attempts.hourly(*window)]
    assert all(hour.utcoffset() == timedelta(0) for hour in hours)


def test_a_users_attempts_are_listed_latest_first_up_to_a_limit(uow_factory: Factory) -> None:
    with uow_factory() as uow:
        uow.attempts.add(make_attempt(1, RedeemResult.INVALID, T0))
        uow.attempts.add(make_attempt(1, RedeemResult.ACCEPTED, T0 + timedelta(minutes=2)))
        uow.attempts.add(make_attempt(1, RedeemResult.DEPLETED, T0 + timedelta(minutes=1)))  # written late
        uow.attempts.add(make_attempt(2, RedeemResult.INVALID, T0 + timedelta(minutes=3)))
        uow.commit()
    with uow_factory() as uow:
        latest = uow.attempts.for_user(1, 10)
        assert [(a.result, a.attempted_at) for a in latest] == [
            (RedeemResult.ACCEPTED, T0 + timedelta(minutes=2)), (RedeemResult.DEPLETED, T0 + timedelta(minutes=1)),
            (RedeemResult.INVALID, T0)]
        assert all(a.id is not None and a.user_id == 1 and a.normalized_code_hash == "h" * 64
                   and a.code_prefix == "ABCD" for a in latest)
        assert [a.result for a in uow.attempts.for_user(1, 1)] == [RedeemResult.ACCEPTED]
        assert uow.attempts.for_user(3, 10) == []
