"""The hourly rollup of ``promo_attempts`` (PostgreSQL): the dashboard and campaign stats over 1,000,000 attempts
read a few hundred counted rows instead of every attempt of their window.

``promo_attempts_hourly`` holds, for each folded UTC hour, the attempts per result of every campaign (and, under
campaign 0, of all attempts), plus one marker row (campaign -1) saying that the hour is folded. Folding runs for
complete hours only, and only when the caller says no attempt of them can still arrive (``before`` a grace period
behind the clock: an attempt's row is written with the time of its redeem, in the redeem's own short
transaction). A window is then answered from the rollup for the complete hours inside it that are folded, and from
``promo_attempts`` for the rest (its partial first and last hours, hours not folded yet): the same counts, exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from adapters.sql._base import hour_start
from adapters.sql.tables import promo_attempts, promo_attempts_hourly
from domain.model import RedeemResult

HOUR = timedelta(hours=1)
ACCEPTED = RedeemResult.ACCEPTED.value
ALL_CAMPAIGNS = 0  # campaign_id of the rows counting every attempt of the hour
FOLDED = -1  # campaign_id of the row marking an hour folded
FOLDED_RESULT = ""

_rollup = promo_attempts_hourly
_attempts = promo_attempts


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def hours(first: datetime, end: datetime) -> list[datetime]:
    """The hour starts in ``[first, end)`` (``first`` on the hour)."""
    out = []
    hour = first
    while hour < end:
        out.append(hour)
        hour += HOUR
    return out


def spans(hour_list: Sequence[datetime]) -> list[tuple[datetime, datetime]]:
    """Contiguous ``[start, end)`` spans covering the given (sorted) hours."""
    out: list[tuple[datetime, datetime]] = []
    for hour in hour_list:
        if out and out[-1][1] == hour:
            out[-1] = (out[-1][0], hour + HOUR)
        else:
            out.append((hour, hour + HOUR))
    return out


def raw_spans(since: datetime, until: datetime, folded: Sequence[datetime]) -> list[tuple[datetime, datetime]]:
    """The parts of ``[since, until)`` outside the (sorted, complete, inside) folded hours."""
    out = []
    start = since
    for hour in folded:
        if hour > start:
            out.append((start, hour))
        start = hour + HOUR
    if start < until:
        out.append((start, until))
    return out


def folded_hours(connection: sa.Connection, first: datetime, end: datetime) -> list[datetime]:
    """The folded hours in ``[first, end)``, ascending."""
    if first >= end:
        return []
    statement = (sa.select(_rollup.c.hour)
                 .where(_rollup.c.campaign_id == FOLDED, _rollup.c.result == FOLDED_RESULT,
                        _rollup.c.hour >= first, _rollup.c.hour < end)
                 .order_by(_rollup.c.hour))
    return [floor_hour(hour) for hour in connection.execute(statement).scalars()]


def fold(connection: sa.Connection, since: datetime, before: datetime) -> int:
    """Fold every complete hour from the hour of ``since`` to ``before`` that is not folded yet; hours folded.

    One ``INSERT ... SELECT`` per contiguous run of hours (one pass over their attempts, counted per hour, result
    and campaign and per hour and result), its marker rows in the same transaction. Another process folding the
    same hours at the same time inserts the same counts: ``ON CONFLICT DO NOTHING`` keeps the first."""
    first, end = floor_hour(since), floor_hour(before)
    done = set(folded_hours(connection, first, end))
    todo = [hour for hour in hours(first, end) if hour not in done]
    for start, stop in spans(todo):
        connection.execute(sa.text("""
            INSERT INTO promo_attempts_hourly (campaign_id, hour, result, attempts)
            SELECT CASE WHEN GROUPING(campaign_id) = 1 THEN :all_campaigns ELSE campaign_id END, hour, result,
                   count(*)
            FROM (SELECT date_trunc('hour', attempted_at, 'UTC') AS hour, campaign_id, result
                  FROM promo_attempts WHERE attempted_at >= :start AND attempted_at < :stop) AS attempt
            GROUP BY GROUPING SETS ((hour, result), (hour, result, campaign_id))
            HAVING GROUPING(campaign_id) = 1 OR campaign_id IS NOT NULL
            ON CONFLICT DO NOTHING"""), {"all_campaigns": ALL_CAMPAIGNS, "start": start, "stop": stop})
        connection.execute(
            pg_insert(_rollup).on_conflict_do_nothing(),
            [{"campaign_id": FOLDED, "hour": hour, "result": FOLDED_RESULT, "attempts": 0}
             for hour in hours(start, stop)])
    return len(todo)


def _key(campaign_id: int | None) -> int:
    return ALL_CAMPAIGNS if campaign_id is None else campaign_id


def _raw_window(start: datetime, stop: datetime, campaign_id: int | None) -> list[sa.ColumnElement[bool]]:
    """One span of the rows: a single range of ``attempted_at`` (an index range scan; one statement per span rather
    than an ``OR`` of ranges, which PostgreSQL answers with a bitmap of heap pages)."""
    conditions = [_attempts.c.attempted_at >= start, _attempts.c.attempted_at < stop]
    if campaign_id is not None:
        conditions.append(_attempts.c.campaign_id == campaign_id)
    return conditions


def counts_by_result(connection: sa.Connection, since: datetime, until: datetime, campaign_id: int | None,
                     folded: Sequence[datetime]) -> dict[str, int]:
    """Attempts per result in ``[since, until)``: the folded hours from the rollup, the rest from the rows."""
    out: dict[str, int] = {}
    rolled = (sa.select(_rollup.c.result, sa.func.sum(_rollup.c.attempts))
              .where(_rollup.c.campaign_id == _key(campaign_id), _rollup.c.hour.in_(list(folded)))
              .group_by(_rollup.c.result))
    rows: list[Any] = list(connection.execute(rolled))
    for start, stop in raw_spans(since, until, folded):
        raw = (sa.select(_attempts.c.result, sa.func.count())
               .where(*_raw_window(start, stop, campaign_id)).group_by(_attempts.c.result))
        rows += list(connection.execute(raw))
    for result, count in rows:
        out[result] = out.get(result, 0) + int(count)
    return out


def hourly(connection: sa.Connection, since: datetime, until: datetime, campaign_id: int | None,
           folded: Sequence[datetime], hour_bucket: sa.ColumnElement[Any]) -> dict[datetime, tuple[int, int]]:
    """(attempts, accepted) per hour bucket in ``[since, until)``: folded hours from the rollup, the rest from the
    rows (``hour_bucket``: the adapter's hour expression over ``promo_attempts.attempted_at``)."""
    accepted_rolled = sa.func.coalesce(sa.func.sum(sa.case((_rollup.c.result == ACCEPTED, _rollup.c.attempts),
                                                           else_=0)), 0)
    rolled = (sa.select(_rollup.c.hour, sa.func.sum(_rollup.c.attempts), accepted_rolled)
              .where(_rollup.c.campaign_id == _key(campaign_id), _rollup.c.hour.in_(list(folded)))
              .group_by(_rollup.c.hour))
    out = {floor_hour(hour): (int(n), int(ok)) for hour, n, ok in connection.execute(rolled)}
    bucket = hour_bucket.label("hour")
    accepted = sa.func.coalesce(sa.func.sum(sa.case((_attempts.c.result == ACCEPTED, 1), else_=0)), 0)
    for start, stop in raw_spans(since, until, folded):
        raw = (sa.select(bucket, sa.func.count(), accepted)
               .where(*_raw_window(start, stop, campaign_id)).group_by(bucket))
        for bucket_value, n, ok in connection.execute(raw):
            key = hour_start(bucket_value)
            before = out.get(key, (0, 0))
            out[key] = (before[0] + int(n), before[1] + int(ok))
    return out
