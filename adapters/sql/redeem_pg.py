"""The PostgreSQL fast path of redeem: ``Redemptions.redeem_snapshot`` and ``Redemptions.add_and_claim``, each ONE
statement (one round trip, and on an idle unit of work its own transaction: no BEGIN, no COMMIT).

Each is the composition of the single-purpose statements of the repositories, and must answer exactly as
``domain.redemption.snapshot_by_parts`` and ``add_and_claim_by_parts`` do over those methods (the reference;
tests/contract/test_redeem_pg_fast_path.py compares the two on the same data). SQLite and the in-memory adapter
run the reference itself.

Every column is named from the ``Table`` objects: a migrated database may hold them in another physical order
than a fresh one, so nothing here reads ``*`` by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.sql._base import PgStatement, SqlRepository, column_list, utc
from adapters.sql.rows import (
    ATTEMPT_INSERT_COLUMNS,
    attempt_values,
    campaign_from_tuple,
    code_from_tuple,
    redemption_from_tuple,
    redemption_values,
)
from adapters.sql.tables import UTCDateTime, promo_attempts, promo_campaigns, promo_codes, promo_redemptions
from domain.model import FAILURE_RESULTS, Attempt, Campaign, PromoCode, RedeemSnapshot, Redemption

_REDEMPTION_WIDTH = len(promo_redemptions.c)
_CODE_WIDTH = len(promo_codes.c)
_CAMPAIGN_WIDTH = len(promo_campaigns.c)
_FAILURE_RESULTS_SQL = ", ".join(f"'{result.value}'" for result in sorted(FAILURE_RESULTS))


def _cast(column: sa.Column[Any]) -> str:
    """The PostgreSQL type a parameter is cast to: the column's, without a length (a cast to ``varchar(n)``
    would cut a longer value silently instead of failing)."""
    column_type = column.type
    if isinstance(column_type, UTCDateTime):
        return "timestamptz"
    if isinstance(column_type, sa.BigInteger):
        return "bigint"
    if isinstance(column_type, sa.Integer):
        return "integer"
    if isinstance(column_type, sa.String):
        return "varchar"
    raise TypeError(f"no cast for {column.table.name}.{column.name}: {column_type!r}")


def _insert_values(table: sa.Table, names: Sequence[str], parameter_prefix: str = "") -> str:
    placeholders = ", ".join(f"%({parameter_prefix}{name})s::{_cast(table.c[name])}" for name in names)
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})"


_REDEMPTION_INSERT_COLUMNS = [column.name for column in promo_redemptions.c if column.name != "id"]

# Redeem checks 1-7 read in one statement (one snapshot, one round trip): the key's redemption, the user's
# failures in the throttling window, the code of the first hash that exists (the current pepper's before the
# previous ones'), its campaign, the user's live redemption of that code and the user_slot of every live
# redemption the user holds in the campaign. Each part is the single-purpose statement of its repository
# method, on the same indexes (the held slots come from uq_promo_redemptions_user_slot alone).
_SNAPSHOT = PgStatement.text(
    f"SELECT {column_list(promo_redemptions, 'by_key')}, failures.count, failures.latest, "
    f"{column_list(promo_codes, 'code')}, {column_list(promo_campaigns, 'campaign')}, "
    f"{column_list(promo_redemptions, 'live')}, held.slots "
    "FROM (SELECT 1) AS one "
    f"LEFT JOIN LATERAL (SELECT {column_list(promo_redemptions, 'stored')} FROM promo_redemptions AS stored "
    "WHERE stored.idempotency_key = %(idempotency_key)s::varchar) AS by_key ON true "
    "CROSS JOIN LATERAL (SELECT count(*) AS count, max(attempt.attempted_at) AS latest "
    "FROM promo_attempts AS attempt WHERE attempt.user_id = %(user_id)s::bigint "
    "AND attempt.attempted_at >= %(failures_since)s::timestamptz "
    f"AND attempt.result IN ({_FAILURE_RESULTS_SQL})) AS failures "
    # One index probe per hash, in the order given (a generic plan of ``= ANY(array)`` is a bitmap scan).
    f"LEFT JOIN LATERAL (SELECT {column_list(promo_codes, 'stored')} "
    "FROM unnest(%(code_hashes)s::varchar[]) WITH ORDINALITY AS wanted(code_hash, position) "
    "JOIN promo_codes AS stored ON stored.code_hash = wanted.code_hash "
    "ORDER BY wanted.position LIMIT 1) AS code ON true "
    "LEFT JOIN promo_campaigns AS campaign ON campaign.id = code.campaign_id "
    f"LEFT JOIN LATERAL (SELECT {column_list(promo_redemptions, 'stored')} FROM promo_redemptions AS stored "
    "WHERE stored.promo_code_id = code.id AND stored.user_id = %(user_id)s::bigint "
    "AND stored.status <> 'EXPIRED' LIMIT 1) AS live ON true "
    "LEFT JOIN LATERAL (SELECT array_agg(stored.user_slot ORDER BY stored.user_slot) AS slots "
    "FROM promo_redemptions AS stored WHERE stored.campaign_id = code.campaign_id "
    "AND stored.user_id = %(user_id)s::bigint AND stored.status <> 'EXPIRED') AS held ON true"
)

# The writes of an accepted reservation in one statement, all of them or none: the redemption, the attempt, then
# the claim of the code and then of its campaign. The code's UPDATE reads the new redemption, the campaign's the
# claimed code, so the unique indexes are taken first, then the code row, then the campaign row (the order of
# every redeem; two cannot deadlock). A claim that finds no unit, at either level, divides by zero on purpose --
# a run-time value, never folded into the plan -- and the failed statement takes its inserts (and a code already
# claimed) with it.
_DIVISION_BY_ZERO = "22012"
_CLAIMABLE = "status = 'ACTIVE' AND (max_total_uses IS NULL OR used_total < max_total_uses)"
_ADD_AND_CLAIM = PgStatement.text(
    f"WITH new_redemption AS ({_insert_values(promo_redemptions, _REDEMPTION_INSERT_COLUMNS)} "
    f"RETURNING {column_list(promo_redemptions, 'promo_redemptions')}), "
    f"new_attempt AS ({_insert_values(promo_attempts, ATTEMPT_INSERT_COLUMNS, 'attempt_')}), "
    "claimed_code AS (UPDATE promo_codes SET used_total = used_total + 1, updated_at = %(now_)s::timestamptz "
    f"WHERE id = (SELECT promo_code_id FROM new_redemption) AND {_CLAIMABLE} "
    f"RETURNING {column_list(promo_codes, 'promo_codes')}), "
    "claimed_campaign AS (UPDATE promo_campaigns SET used_total = used_total + 1, "
    "updated_at = %(now_)s::timestamptz "
    f"WHERE id = (SELECT campaign_id FROM claimed_code) AND {_CLAIMABLE} "
    f"RETURNING {column_list(promo_campaigns, 'promo_campaigns')}) "
    f"SELECT {column_list(promo_redemptions, 'new_redemption')}, {column_list(promo_codes, 'claimed_code')}, "
    f"{column_list(promo_campaigns, 'claimed_campaign')}, 1 / (claimed_campaign.id IS NOT NULL)::integer "
    "FROM new_redemption LEFT JOIN claimed_code ON true LEFT JOIN claimed_campaign ON true"
)


def redeem_snapshot(repository: SqlRepository, idempotency_key: str, user_id: int, code_hashes: Sequence[str],
                    failures_since: datetime) -> RedeemSnapshot:
    """``Redemptions.redeem_snapshot`` in one statement (a transaction of its own on an idle unit of work)."""
    row = repository.run_raw(_SNAPSHOT, {
        "idempotency_key": idempotency_key, "user_id": user_id, "code_hashes": list(code_hashes),
        "failures_since": failures_since,
    }, alone=True).fetchone()
    failures_at = _REDEMPTION_WIDTH
    code_at = failures_at + 2
    campaign_at = code_at + _CODE_WIDTH
    live_at = campaign_at + _CAMPAIGN_WIDTH
    held_at = live_at + _REDEMPTION_WIDTH
    return RedeemSnapshot(
        by_key=redemption_from_tuple(row[:failures_at]) if row[0] is not None else None,
        failures=int(row[failures_at]),
        latest_failure=utc(row[failures_at + 1]),
        code=code_from_tuple(row[code_at:campaign_at]) if row[code_at] is not None else None,
        campaign=campaign_from_tuple(row[campaign_at:live_at]) if row[campaign_at] is not None else None,
        live=redemption_from_tuple(row[live_at:held_at]) if row[live_at] is not None else None,
        held_slots=tuple(row[held_at] or ()),
    )


def add_and_claim(repository: SqlRepository, redemption: Redemption, attempt: Attempt, now: datetime
                  ) -> tuple[Redemption, PromoCode, Campaign] | None:
    """``Redemptions.add_and_claim`` in one statement: None when no unit could be claimed (nothing was written).
    Raises the domain errors of the redemption's unique indexes as ``Redemptions.add`` does."""
    params = {**redemption_values(redemption), "now_": now,
              **{f"attempt_{name}": value for name, value in attempt_values(attempt).items()}}
    try:
        # Whole by itself: with nothing else written yet, it is its own transaction (see ``run_raw``).
        row = repository.run_raw(_ADD_AND_CLAIM, params, alone=True).fetchone()
    except sa.exc.DataError as exc:
        if getattr(getattr(exc.orig, "diag", None), "sqlstate", None) == _DIVISION_BY_ZERO:
            return None  # no unit to claim: the statement failed, so nothing of it was written
        raise
    code_at = _REDEMPTION_WIDTH
    campaign_at = code_at + _CODE_WIDTH
    return (redemption_from_tuple(row[:code_at]), code_from_tuple(row[code_at:campaign_at]),
            campaign_from_tuple(row[campaign_at:campaign_at + _CAMPAIGN_WIDTH]))
