"""``promo_attempts`` (port ``Attempts``): one row per redeem call (append only), read by throttling, the
brute-force guard, the dashboard and the support view of a user."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.sql import attempt_rollup as rollup
from adapters.sql._base import PgStatement, SqlRepository, hour_bucket, hour_start, utc
from adapters.sql.rows import ATTEMPT_INSERT_COLUMNS, attempt_from_row, attempt_values
from adapters.sql.tables import promo_attempts
from domain.model import FAILURE_RESULTS, Attempt, HashFailureStats, PrefixFailureStats, RedeemResult

_FAILURES = sorted(result.value for result in FAILURE_RESULTS)

_attempts = promo_attempts
_INSERT = sa.insert(_attempts).inline()  # no RETURNING id: nothing reads it
_FAILURE_STATS = (
    sa.select(sa.func.count(), sa.func.max(_attempts.c.attempted_at))
    .where(_attempts.c.user_id == sa.bindparam("user_id_"), _attempts.c.attempted_at >= sa.bindparam("since_"),
           # The failure results as SQL literals (constants of the enum): no expanding parameter to render on
           # every call.
           _attempts.c.result.in_([sa.literal_column(f"'{result}'") for result in _FAILURES]))
)
_PG_INSERT = PgStatement(_INSERT, ATTEMPT_INSERT_COLUMNS)
_PG_FAILURE_STATS = PgStatement(_FAILURE_STATS)


class SqlAttempts(SqlRepository):
    table = promo_attempts

    def add(self, attempt: Attempt) -> None:
        values = attempt_values(attempt)
        if self._postgres:
            self.run_raw(_PG_INSERT, values)
            return
        self._connection.execute(_INSERT, values)

    def failure_stats(self, user_id: int, since: datetime) -> tuple[int, datetime | None]:
        params = {"user_id_": user_id, "since_": since}
        if self._postgres:
            count, latest = self.run_raw(_PG_FAILURE_STATS, params).fetchone()
            return int(count), utc(latest)
        count, latest = self._connection.execute(_FAILURE_STATS, params).one()
        return int(count), self._timestamp(latest) if latest is not None else None

    def hash_failures(self, since: datetime, min_failures: int, min_users: int) -> list[HashFailureStats]:
        table = self.table
        statement = (
            sa.select(table.c.normalized_code_hash, sa.func.count(), sa.func.count(sa.distinct(table.c.user_id)),
                      sa.func.max(table.c.attempted_at))
            .where(table.c.attempted_at >= since, table.c.result.in_(_FAILURES),
                   table.c.normalized_code_hash.is_not(None))
            .group_by(table.c.normalized_code_hash)
            .having(sa.and_(sa.func.count() >= min_failures,
                            sa.func.count(sa.distinct(table.c.user_id)) >= min_users))
        )
        found = [HashFailureStats(code_hash, int(failures), int(users), self._timestamp(last_seen))
                 for code_hash, failures, users, last_seen in self._connection.execute(statement)]
        return sorted(found, key=lambda stats: (-stats.failures, stats.normalized_code_hash))

    def invalid_prefix_failures(self, since: datetime, min_failures: int) -> list[PrefixFailureStats]:
        table = self.table
        statement = (
            sa.select(table.c.code_prefix, sa.func.count(), sa.func.count(sa.distinct(table.c.user_id)),
                      sa.func.max(table.c.attempted_at))
            .where(table.c.attempted_at >= since, table.c.result == RedeemResult.INVALID.value,
                   table.c.code_prefix.is_not(None))
            .group_by(table.c.code_prefix)
            .having(sa.func.count() >= min_failures)
        )
        found = [PrefixFailureStats(prefix, int(failures), int(users), self._timestamp(last_seen))
                 for prefix, failures, users, last_seen in self._connection.execute(statement)]
        return sorted(found, key=lambda stats: (-stats.failures, stats.code_prefix))

    def _window(self, since: datetime, until: datetime, campaign_id: int | None) -> list[sa.ColumnElement[bool]]:
        table = self.table
        conditions = [table.c.attempted_at >= since, table.c.attempted_at < until]
        if campaign_id is not None:
            conditions.append(table.c.campaign_id == campaign_id)
        return conditions

    def _folded(self, since: datetime, until: datetime) -> list[datetime]:
        """The complete hours inside ``[since, until)`` the rollup holds (none but on PostgreSQL)."""
        if not self._postgres:
            return []
        return rollup.folded_hours(self._connection, rollup.ceil_hour(since), rollup.floor_hour(until))

    def roll_up(self, since: datetime, before: datetime) -> int:
        return rollup.fold(self._connection, since, before) if self._postgres else 0

    def counts_by_result(self, since: datetime, until: datetime, campaign_id: int | None = None
                         ) -> dict[RedeemResult, int]:
        folded = self._folded(since, until)
        if folded:
            counts = rollup.counts_by_result(self._connection, since, until, campaign_id, folded)
            return {RedeemResult(result): count for result, count in counts.items()}
        table = self.table
        statement = (sa.select(table.c.result, sa.func.count())
                     .where(*self._window(since, until, campaign_id)).group_by(table.c.result))
        return {RedeemResult(result): int(count) for result, count in self._connection.execute(statement)}

    def hourly(self, since: datetime, until: datetime, campaign_id: int | None = None
               ) -> list[tuple[datetime, int, int]]:
        folded = self._folded(since, until)
        if folded:
            per_hour = rollup.hourly(self._connection, since, until, campaign_id, folded,
                                     hour_bucket(self.table.c.attempted_at, self._postgres))
            return [(hour, n, ok) for hour, (n, ok) in sorted(per_hour.items())]
        table = self.table
        hour = hour_bucket(table.c.attempted_at, self._postgres).label("hour")
        accepted = sa.func.coalesce(sa.func.sum(sa.case((table.c.result == RedeemResult.ACCEPTED.value, 1),
                                                        else_=0)), 0)
        statement = (sa.select(hour, sa.func.count(), accepted)
                     .where(*self._window(since, until, campaign_id)).group_by(hour).order_by(hour))
        return [(hour_start(bucket), int(count), int(accepted_count))
                for bucket, count, accepted_count in self._connection.execute(statement)]

    def for_user(self, user_id: int, limit: int) -> list[Attempt]:
        table = self.table
        statement = (sa.select(table).where(table.c.user_id == user_id)
                     .order_by(table.c.attempted_at.desc(), table.c.id.desc()).limit(max(limit, 0)))
        return [attempt_from_row(row._mapping) for row in self._connection.execute(statement)]

    def _timestamp(self, value: Any) -> datetime:
        """An aggregate (``max``) of ``attempted_at``: SQLite returns it as text, not through the column type."""
        processed = self.table.c.attempted_at.type.process_result_value(  # type: ignore[attr-defined]
            datetime.fromisoformat(value) if isinstance(value, str) else value, self._connection.dialect)
        assert isinstance(processed, datetime)
        return processed
