"""``promo_redemptions`` (port ``Redemptions``).

The database keeps the SPEC 4 rules: one redemption per ``idempotency_key``, one live (not EXPIRED) redemption
per ``(promo_code_id, user_id)`` and one per ``(campaign_id, user_id, user_slot)`` (partial unique indexes).
On PostgreSQL the redeem reads and writes go through ``redeem_pg`` (one statement each); elsewhere through
their reference compositions in ``domain.redemption``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect

from adapters.sql import redeem_pg
from adapters.sql._base import PgStatement, SqlRepository, hour_bucket, hour_start
from adapters.sql.attempts import SqlAttempts
from adapters.sql.campaigns import SqlCampaigns
from adapters.sql.codes import SqlPromoCodes
from adapters.sql.rows import REDEMPTION_COLUMNS, redemption_from_row, redemption_from_tuple, redemption_values
from adapters.sql.tables import promo_campaigns, promo_redemptions, purchases
from domain.maintenance import expire_due_by_parts
from domain.model import (
    Attempt,
    Campaign,
    HourCount,
    PromoCode,
    RedeemSnapshot,
    Redemption,
    RedemptionStatus,
)
from domain.redemption import add_and_claim_by_parts, snapshot_by_parts

_redemptions = promo_redemptions
_now = sa.bindparam("now_", type_=_redemptions.c.updated_at.type)
# Literals, not parameters: a generic (prepared) plan must still see the partial indexes' predicates.
_RESERVED = sa.literal_column("'RESERVED'", sa.String)
_EXPIRED = sa.literal_column("'EXPIRED'", sa.String)

_INSERT = sa.insert(_redemptions).returning(_redemptions)
_BY_ID = sa.select(_redemptions).where(_redemptions.c.id == sa.bindparam("redemption_id_"))
_BY_KEY = sa.select(_redemptions).where(_redemptions.c.idempotency_key == sa.bindparam("idempotency_key_"))
_LIVE = sa.select(_redemptions).where(_redemptions.c.promo_code_id == sa.bindparam("promo_code_id_"),
                                      _redemptions.c.user_id == sa.bindparam("user_id_"),
                                      _redemptions.c.status != _EXPIRED)
_HELD_SLOTS = (
    sa.select(_redemptions.c.user_slot)
    .where(_redemptions.c.campaign_id == sa.bindparam("campaign_id_"),
           _redemptions.c.user_id == sa.bindparam("user_id_"), _redemptions.c.status != _EXPIRED)
    .order_by(_redemptions.c.user_slot)
)
_EXPIRABLE = (_redemptions.c.status == _RESERVED, _redemptions.c.purchase_id.is_(None),
              _redemptions.c.reserved_until <= _now)
_EXPIRE = (
    sa.update(_redemptions).where(_redemptions.c.id == sa.bindparam("redemption_id_"), *_EXPIRABLE)
    .values(status=RedemptionStatus.EXPIRED.value, updated_at=_now).returning(_redemptions)
)
_EXPIRE_MANY = (
    sa.update(_redemptions).where(_redemptions.c.id.in_(sa.bindparam("redemption_ids_", expanding=True)),
                                  *_EXPIRABLE)
    .values(status=RedemptionStatus.EXPIRED.value, updated_at=_now).returning(_redemptions)
)
_DUE = (
    sa.select(_redemptions).where(*_EXPIRABLE)
    .order_by(_redemptions.c.reserved_until, _redemptions.c.id).limit(sa.bindparam("limit_", type_=sa.Integer))
)
_PG_INSERT = PgStatement(_INSERT, [name for name in REDEMPTION_COLUMNS if name != "id"])
_PG_BY_ID = PgStatement(_BY_ID)
_PG_BY_KEY = PgStatement(_BY_KEY)
_PG_LIVE = PgStatement(_LIVE)
_PG_EXPIRE = PgStatement(_EXPIRE)
_PG_EXPIRE_MANY = PgStatement(
    sa.update(_redemptions)
    .where(_redemptions.c.id == sa.any_(sa.bindparam("redemption_ids_", type_=pg_dialect.ARRAY(sa.BigInteger))),
           *_EXPIRABLE)
    .values(status=RedemptionStatus.EXPIRED.value, updated_at=_now).returning(_redemptions)
)
# PostgreSQL: in the order of the partial index on reserved_until (RESERVED rows only), no id tiebreak: the index
# scan stops after ``limit`` rows. With ``id`` in the ORDER BY no index gives the order, and under FOR UPDATE the
# LIMIT sits above the row locks, so the sort is not bounded: every batch read and sorted every due row left
# (on disk from ~50,000), quadratic in the backlog (the bench: ~100 ms per batch of 500 against ~1 ms).
_PG_DUE = PgStatement(
    sa.select(_redemptions).where(*_EXPIRABLE).order_by(_redemptions.c.reserved_until)
    .limit(sa.bindparam("limit_", type_=sa.Integer)).with_for_update(skip_locked=True)
)

# One batch of the expiry job in one statement: the due rows locked (index order, skip-locked), expired
# conditionally, their count and the (code, campaign) of each one expired. ``due`` is referenced twice, so it is
# run once. Without a row expired the outer join still answers the count. The UPDATE takes its rows by primary key
# (``id = ANY(ARRAY(...))``), not joined to ``due``: the generic plan of the prepared statement (LIMIT unknown)
# hashed every RESERVED row for the join, ~90 ms per batch of 500 against ~20.
_PG_EXPIRE_DUE = PgStatement.text(
    "WITH due AS ("
    " SELECT id FROM promo_redemptions"
    " WHERE status = 'RESERVED' AND purchase_id IS NULL AND reserved_until <= %(now_)s"
    " ORDER BY reserved_until LIMIT %(limit_)s FOR UPDATE SKIP LOCKED),"
    " expired AS ("
    " UPDATE promo_redemptions AS r SET status = 'EXPIRED', updated_at = %(now_)s"
    " WHERE r.id = ANY(ARRAY(SELECT id FROM due))"
    " AND r.status = 'RESERVED' AND r.purchase_id IS NULL AND r.reserved_until <= %(now_)s"
    " RETURNING r.promo_code_id, r.campaign_id)"
    " SELECT (SELECT count(*) FROM due), expired.promo_code_id, expired.campaign_id"
    " FROM (SELECT 1) AS one LEFT JOIN expired ON true"
)


def _is_reservation(table: sa.Table) -> sa.ColumnElement[bool]:
    """A discount reservation (settled through a purchase), not a grant: it carries a discount snapshot."""
    return sa.or_(table.c.discount_percent.is_not(None), table.c.discount_stars.is_not(None))


def _is_grant_given(table: sa.Table) -> sa.ColumnElement[bool]:
    """A premium grant that was given: APPLIED at once (REVOKED later included)."""
    return sa.and_(~_is_reservation(table),
                   table.c.status.in_([RedemptionStatus.APPLIED.value, RedemptionStatus.REVOKED.value]))


class SqlRedemptions(SqlRepository):
    table = promo_redemptions

    def _one(self, statement: sa.Executable) -> Redemption | None:
        row = self._connection.execute(statement).first()
        return redemption_from_row(row._mapping) if row is not None else None

    def _many(self, statement: sa.Executable) -> list[Redemption]:
        return [redemption_from_row(row._mapping) for row in self._connection.execute(statement)]

    def _one_with(self, statement: sa.Executable, params: dict[str, Any], pg_statement: PgStatement
                  ) -> Redemption | None:
        if self._postgres:
            found = self.run_raw(pg_statement, params).fetchone()
            return redemption_from_tuple(found) if found is not None else None
        row = self._connection.execute(statement, params).first()
        return redemption_from_row(row._mapping) if row is not None else None

    def _update(self, redemption_id: int, *conditions: Any, **values: Any) -> Redemption | None:
        return self._one(sa.update(self.table).where(self.table.c.id == redemption_id, *conditions)
                         .values(**values).returning(self.table))

    def add(self, redemption: Redemption) -> Redemption:
        values = redemption_values(redemption)
        if self._postgres:
            return redemption_from_tuple(self.run_raw(_PG_INSERT, values).fetchone())
        return redemption_from_row(self._execute(_INSERT, values).one()._mapping)

    def get(self, redemption_id: int) -> Redemption | None:
        return self._one_with(_BY_ID, {"redemption_id_": redemption_id}, _PG_BY_ID)

    def get_by_idempotency_key(self, idempotency_key: str) -> Redemption | None:
        return self._one_with(_BY_KEY, {"idempotency_key_": idempotency_key}, _PG_BY_KEY)

    def get_live(self, promo_code_id: int, user_id: int) -> Redemption | None:
        return self._one_with(_LIVE, {"promo_code_id_": promo_code_id, "user_id_": user_id}, _PG_LIVE)

    def held_slots(self, campaign_id: int, user_id: int) -> tuple[int, ...]:
        return tuple(self._connection.execute(_HELD_SLOTS, {"campaign_id_": campaign_id, "user_id_": user_id})
                     .scalars())

    def redeem_snapshot(self, idempotency_key: str, user_id: int, code_hashes: Sequence[str],
                        failures_since: datetime) -> RedeemSnapshot:
        if self._postgres:
            return redeem_pg.redeem_snapshot(self, idempotency_key, user_id, code_hashes, failures_since)
        connection = self._connection
        return snapshot_by_parts(self, SqlAttempts(connection), SqlPromoCodes(connection), SqlCampaigns(connection),
                                 idempotency_key, user_id, code_hashes, failures_since)

    def add_and_claim(self, redemption: Redemption, attempt: Attempt, now: datetime
                      ) -> tuple[Redemption, PromoCode, Campaign] | None:
        if self._postgres:
            return redeem_pg.add_and_claim(self, redemption, attempt, now)
        connection = self._connection
        return add_and_claim_by_parts(self, SqlAttempts(connection), SqlPromoCodes(connection), redemption, attempt,
                                      now)

    def bind_purchase(self, redemption_id: int, purchase_id: int, now: datetime) -> Redemption | None:
        table = self.table
        return self._update(
            redemption_id,
            table.c.status == RedemptionStatus.RESERVED.value,
            table.c.reserved_until > now,
            sa.or_(table.c.purchase_id.is_(None), table.c.purchase_id == purchase_id),
            purchase_id=purchase_id, updated_at=now,
        )

    def unbind_purchase(self, redemption_id: int, purchase_id: int, now: datetime) -> None:
        table = self.table
        self._update(redemption_id, table.c.purchase_id == purchase_id,
                     table.c.status == RedemptionStatus.RESERVED.value, purchase_id=None, updated_at=now)

    def apply(self, redemption_id: int, purchase_id: int, now: datetime) -> Redemption | None:
        return self._update(redemption_id, self.table.c.status == RedemptionStatus.RESERVED.value,
                            status=RedemptionStatus.APPLIED.value, applied_purchase_id=purchase_id,
                            purchase_id=purchase_id, updated_at=now)

    def expire(self, redemption_id: int, now: datetime) -> Redemption | None:
        return self._one_with(_EXPIRE, {"redemption_id_": redemption_id, "now_": now}, _PG_EXPIRE)

    def expire_many(self, redemption_ids: Sequence[int], now: datetime) -> list[Redemption]:
        if not redemption_ids:
            return []
        ids = list(dict.fromkeys(redemption_ids))
        params = {"redemption_ids_": ids, "now_": now}
        if self._postgres:
            return [redemption_from_tuple(found) for found in self.run_raw(_PG_EXPIRE_MANY, params).fetchall()]
        return self._many_with(_EXPIRE_MANY, params)

    def _many_with(self, statement: sa.Executable, params: dict[str, Any]) -> list[Redemption]:
        return [redemption_from_row(row._mapping) for row in self._connection.execute(statement, params)]

    def revoke(self, redemption_id: int, now: datetime) -> Redemption | None:
        table = self.table
        return self._update(
            redemption_id, table.c.status.in_([RedemptionStatus.RESERVED.value, RedemptionStatus.APPLIED.value]),
            status=RedemptionStatus.REVOKED.value, revoked_at=now, updated_at=now,
        )

    def due_for_expiry(self, now: datetime, limit: int) -> list[Redemption]:
        params = {"now_": now, "limit_": limit}
        if self._postgres:
            return [redemption_from_tuple(found) for found in self.run_raw(_PG_DUE, params).fetchall()]
        return self._many_with(_DUE, params)

    def expire_due(self, now: datetime, limit: int) -> tuple[int, list[tuple[int, int]]]:
        if not self._postgres:
            return expire_due_by_parts(self, now, limit)
        rows = self.run_raw(_PG_EXPIRE_DUE, {"now_": now, "limit_": limit}).fetchall()
        return int(rows[0][0]), [(code, campaign) for _, code, campaign in rows if code is not None]

    def _count(self, *conditions: sa.ColumnElement[bool]) -> int:
        statement = sa.select(sa.func.count()).select_from(self.table).where(*conditions)
        return int(self._connection.execute(statement).scalar_one())

    def count_created(self, since: datetime, until: datetime, reservations_only: bool) -> int:
        table = self.table
        conditions = [table.c.created_at >= since, table.c.created_at < until]
        if reservations_only:
            conditions.append(_is_reservation(table))
        return self._count(*conditions)

    def count_applied_reservations(self, since: datetime, until: datetime) -> int:
        table = self.table
        return self._count(table.c.created_at >= since, table.c.created_at < until, _is_reservation(table),
                           table.c.applied_purchase_id.is_not(None))

    def _by_status(self, *conditions: sa.ColumnElement[bool]) -> dict[RedemptionStatus, int]:
        table = self.table
        out = dict.fromkeys(RedemptionStatus, 0)
        statement = sa.select(table.c.status, sa.func.count()).where(*conditions).group_by(table.c.status)
        for status, count in self._connection.execute(statement):
            out[RedemptionStatus(status)] = int(count)
        return out

    def count_by_status(self, promo_code_id: int) -> dict[RedemptionStatus, int]:
        return self._by_status(self.table.c.promo_code_id == promo_code_id)

    def count_by_status_in_campaign(self, campaign_id: int, since: datetime | None = None
                                    ) -> dict[RedemptionStatus, int]:
        table = self.table
        conditions = [table.c.campaign_id == campaign_id]
        if since is not None:
            conditions.append(table.c.created_at >= since)
        return self._by_status(*conditions)

    def for_user(self, user_id: int, limit: int) -> list[Redemption]:
        table = self.table
        return self._many(sa.select(table).where(table.c.user_id == user_id)
                          .order_by(table.c.created_at.desc(), table.c.id.desc()).limit(max(limit, 0)))

    def for_code(self, promo_code_id: int, limit: int, before_id: int | None = None) -> list[Redemption]:
        table = self.table
        statement = sa.select(table).where(table.c.promo_code_id == promo_code_id)
        if before_id is not None:
            statement = statement.where(table.c.id < before_id)
        return self._many(statement.order_by(table.c.id.desc()).limit(max(limit, 0)))

    def _discounts_paid(self, campaign_id: int | None) -> sa.Select[Any]:
        """Purchases with a reservation they applied (of the campaign, when given). Joined on the purchase's
        ``promo_redemption_id`` (the redemption's primary key) as well as the redemption's
        ``applied_purchase_id``: the same pair, found by an index."""
        table, paid = self.table, purchases
        conditions = [table.c.id == paid.c.promo_redemption_id, table.c.applied_purchase_id == paid.c.id,
                      _is_reservation(table)]
        # Looked up per purchase (a scalar subquery on the primary key): as a join, PostgreSQL hashed every
        # redemption of the table, whatever the window. A campaign's purchases are found by their own
        # ``campaign_id`` (the redemption's, copied), with the index on (campaign_id, paid_at).
        self._without_jit()
        applied = sa.select(table.c.id).where(*conditions).scalar_subquery()
        statement = sa.select().select_from(paid).where(applied.is_not(None))
        if campaign_id is not None:
            statement = statement.where(paid.c.campaign_id == campaign_id)
        return statement

    def hourly_applied(self, since: datetime, until: datetime, campaign_id: int | None = None) -> list[HourCount]:
        table, paid = self.table, purchases
        grants = sa.select(table.c.created_at.label("applied_at")).where(
            table.c.created_at >= since, table.c.created_at < until, _is_grant_given(table))
        if campaign_id is not None:
            grants = grants.where(table.c.campaign_id == campaign_id)
        discounts = (self._discounts_paid(campaign_id).add_columns(paid.c.paid_at.label("applied_at"))
                     .where(paid.c.paid_at >= since, paid.c.paid_at < until))
        applied = sa.union_all(grants, discounts).subquery("applied")
        hour = hour_bucket(applied.c.applied_at, self._postgres).label("hour")
        statement = sa.select(hour, sa.func.count()).group_by(hour).order_by(hour)
        return [HourCount(hour_start(bucket), int(count)) for bucket, count in self._connection.execute(statement)]

    def given_in_campaign(self, campaign_id: int, since: datetime) -> tuple[int, int]:
        table, campaigns, paid = self.table, promo_campaigns, purchases
        discount_stars = self._connection.execute(
            sa.select(sa.func.coalesce(sa.func.sum(paid.c.discount_stars_amount), 0)).select_from(paid)
            .where(paid.c.campaign_id == campaign_id, paid.c.paid_at >= since)).scalar_one()
        grants = self._count(table.c.campaign_id == campaign_id, table.c.created_at >= since, _is_grant_given(table))
        grant_days = self._connection.execute(
            sa.select(campaigns.c.grant_days).where(campaigns.c.id == campaign_id)).scalar()
        return int(discount_stars), grants * (grant_days or 0)
