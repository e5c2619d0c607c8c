"""``promo_codes`` (port ``PromoCodes``): one row per code, with its own status and cap, and copies of its
campaign's name, type, scope and validity (the runbook queries read ``promo_codes`` alone).

Lock order: code rows before campaign rows, and code rows of one campaign in id order (a capacity claim takes
its code, then the campaign; changes over a campaign's codes lock them in id order before the caller touches
the campaign row). Every insert and status change adds its deltas to ``promo_code_counts`` right after the code
rows (adapters/sql/code_counts.py); a claim or release (``used_total`` only) does not.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, cast

import sqlalchemy as sa

from adapters.sql import code_counts
from adapters.sql._base import (
    CounterRelease,
    PgStatement,
    SqlRepository,
    column_list,
    copy_text,
    in_chunks,
    starts_with,
)
from adapters.sql.rows import (
    CODE_COLUMNS,
    campaign_from_row,
    campaign_from_tuple,
    code_from_row,
    code_from_tuple,
    code_values,
)
from adapters.sql.tables import promo_campaigns, promo_codes, promo_redemptions
from domain.errors import ConstraintViolation, DuplicateCodeHash
from domain.model import Campaign, CampaignStatus, CodeFilter, PausedReason, PromoCode

# PostgreSQL takes the hashes as one text parameter: bigger chunks, fewer round trips.
_PG_PROBE_CHUNK = 20_000
# A literal, not a parameter: a generic (prepared) plan must still see a partial index's predicate.
_ACTIVE = sa.literal_column("'ACTIVE'", sa.String)
_RESERVED = sa.literal_column("'RESERVED'", sa.String)
_LIVE_STATUSES = [CampaignStatus.ACTIVE.value, CampaignStatus.PAUSED.value]

_codes, _campaigns = promo_codes, promo_campaigns

_BY_ID = sa.select(_codes).where(_codes.c.id == sa.bindparam("promo_code_id_"))
_BY_HASH = sa.select(_codes).where(_codes.c.code_hash == sa.bindparam("code_hash_"))
_PG_BY_ID = PgStatement(_BY_ID)
_PG_BY_HASH = PgStatement(_BY_HASH)


def _claimable(table: sa.Table) -> list[sa.ColumnElement[bool]]:
    """ACTIVE and below its cap (``max_total_uses`` null: no cap): one more unit may be taken."""
    return [table.c.status == _ACTIVE,
            sa.or_(table.c.max_total_uses.is_(None), table.c.used_total < table.c.max_total_uses)]


# Claim, SQLite: the code (only while its campaign can give a unit too), then the campaign. The transaction holds
# SQLite's write lock from its start (BEGIN IMMEDIATE), so the campaign cannot change in between.
_CLAIM_CODE = (
    sa.update(_codes)
    .where(_codes.c.id == sa.bindparam("promo_code_id_"), *_claimable(_codes),
           sa.select(_campaigns.c.id).where(_campaigns.c.id == _codes.c.campaign_id,
                                            *_claimable(_campaigns)).exists())
    .values(used_total=_codes.c.used_total + 1, updated_at=sa.bindparam("now_", type_=_codes.c.updated_at.type))
    .returning(_codes)
)
_CLAIM_CAMPAIGN = (
    sa.update(_campaigns)
    .where(_campaigns.c.id == sa.bindparam("campaign_id_"), *_claimable(_campaigns))
    .values(used_total=_campaigns.c.used_total + 1,
            updated_at=sa.bindparam("now_", type_=_campaigns.c.updated_at.type))
    .returning(_campaigns)
)
# Claim, PostgreSQL: both in one statement, the code row locked before the campaign row (the order of every
# redeem). The code's WHERE reads the campaign without locking it, so a campaign seen paused or spent leaves the
# code untouched; one that became so in between (a racing claim took its last unit) is the one case where the
# code's unit is given back (``_UNCLAIM_CODE``, under the code row's lock, so exactly): both or neither, only the
# code's ``updated_at`` then shows the attempt.
_CLAIMABLE_SQL = "status = 'ACTIVE' AND (max_total_uses IS NULL OR used_total < max_total_uses)"
_PG_CLAIM = PgStatement.text(
    "WITH code AS (UPDATE promo_codes SET used_total = used_total + 1, updated_at = %(now_)s::timestamptz "
    f"WHERE id = %(promo_code_id_)s::bigint AND {_CLAIMABLE_SQL} "
    "AND EXISTS (SELECT 1 FROM promo_campaigns AS campaign WHERE campaign.id = promo_codes.campaign_id "
    "AND campaign.status = 'ACTIVE' "
    "AND (campaign.max_total_uses IS NULL OR campaign.used_total < campaign.max_total_uses)) "
    f"RETURNING {column_list(_codes, 'promo_codes')}), "
    "campaign AS (UPDATE promo_campaigns SET used_total = used_total + 1, updated_at = %(now_)s::timestamptz "
    f"WHERE id = (SELECT campaign_id FROM code) AND {_CLAIMABLE_SQL} "
    f"RETURNING {column_list(_campaigns, 'promo_campaigns')}) "
    f"SELECT {column_list(_codes, 'code')}, {column_list(_campaigns, 'campaign')} "
    "FROM code LEFT JOIN campaign ON true"
)
_UNCLAIM_CODE = (
    sa.update(_codes).where(_codes.c.id == sa.bindparam("promo_code_id_"), _codes.c.used_total > 0)
    .values(used_total=_codes.c.used_total - 1)
)
_CODE_WIDTH = len(_codes.c)

_RELEASE = CounterRelease(_codes)

# Bulk insert (COPY): the columns a generated batch shares (everything but id, hash and prefix) are formatted
# once per distinct value and reused. Their names are PromoCode's attribute names too.
_COPY_SHARED_COLUMNS = [name for name in CODE_COLUMNS if name not in ("id", "code_hash", "code_prefix")]
_COPY_COLUMNS = ["id", "code_hash", "code_prefix", *_COPY_SHARED_COLUMNS]
_shared_fields = attrgetter(*_COPY_SHARED_COLUMNS)


class SqlPromoCodes(SqlRepository):
    table = promo_codes

    def _one(self, statement: sa.Executable) -> PromoCode | None:
        row = self._connection.execute(statement).first()
        return code_from_row(row._mapping) if row is not None else None

    def _many(self, statement: sa.Executable) -> list[PromoCode]:
        return [code_from_row(row._mapping) for row in self._connection.execute(statement)]

    def _one_with(self, statement: sa.Executable, params: dict[str, Any], pg_statement: PgStatement
                  ) -> PromoCode | None:
        if self._postgres:
            found = self.run_raw(pg_statement, params).fetchone()
            return code_from_tuple(found) if found is not None else None
        row = self._connection.execute(statement, params).first()
        return code_from_row(row._mapping) if row is not None else None

    def _count(self, deltas: code_counts.Deltas) -> None:
        code_counts.add_deltas(self._connection, self._postgres, deltas)

    def add(self, code: PromoCode) -> PromoCode:
        row = self._execute(sa.insert(self.table).values(code_values(code)).returning(self.table)).one()
        self._count({(code.campaign_id, code.status.value): 1})
        return code_from_row(row._mapping)

    def add_many(self, codes: Sequence[PromoCode]) -> list[int]:
        if not codes:
            return []
        if self._postgres:
            ids = self._copy_many(codes)
        else:
            # SQLite: the transaction holds the write lock (BEGIN IMMEDIATE), so ids after max(id) are ours.
            start = self._connection.execute(
                sa.select(sa.func.coalesce(sa.func.max(self.table.c.id), 0))).scalar_one()
            ids = list(range(start + 1, start + 1 + len(codes)))
            self._execute(sa.insert(self.table),
                          [{"id": new_id, **code_values(code)} for new_id, code in zip(ids, codes, strict=True)])
        self._count(collections.Counter((code.campaign_id, code.status.value) for code in codes))
        return ids

    def _copy_many(self, codes: Sequence[PromoCode]) -> list[int]:
        """PostgreSQL: ids drawn from the sequence in one round trip, rows streamed with ``COPY`` in text format."""
        import psycopg
        import psycopg.errors

        # As one text (split here in C): psycopg's array loader costs more than the query.
        ids = [int(new_id) for new_id in self._connection.execute(
            sa.text("SELECT string_agg(nextval(pg_get_serial_sequence('promo_codes', 'id'))::text, ',') "
                    "FROM generate_series(1, :n)"),
            {"n": len(codes)},
        ).scalar_one().split(",")]
        shared_text: dict[tuple[Any, ...], str] = {}
        lines: list[str] = []
        for new_id, code in zip(ids, codes, strict=True):
            shared = _shared_fields(code)
            text = shared_text.get(shared)
            if text is None:
                values = code_values(code)
                text = shared_text[shared] = "\t".join(copy_text(values[name]) for name in _COPY_SHARED_COLUMNS)
            code_hash, prefix = code.code_hash, code.code_prefix
            # hex and [A-Z0-9]: nothing to escape (checked, not assumed)
            lines.append(f"{new_id}\t{code_hash if code_hash.isalnum() else copy_text(code_hash)}\t"
                         f"{prefix if prefix.isalnum() else copy_text(prefix)}\t{text}\n")
        driver_connection = cast("psycopg.Connection[Any]", self._connection.connection.dbapi_connection)
        try:
            with driver_connection.cursor() as cursor, \
                    cursor.copy(f"COPY promo_codes ({', '.join(_COPY_COLUMNS)}) FROM STDIN") as copy:
                copy.write("".join(lines).encode("utf-8"))
        except psycopg.errors.UniqueViolation as exc:
            raise DuplicateCodeHash(str(exc.diag.constraint_name)) from None
        except psycopg.errors.ForeignKeyViolation as exc:
            raise ConstraintViolation(str(exc.diag.constraint_name)) from None
        return ids

    def get(self, promo_code_id: int) -> PromoCode | None:
        return self._one_with(_BY_ID, {"promo_code_id_": promo_code_id}, _PG_BY_ID)

    def get_many(self, promo_code_ids: Sequence[int]) -> dict[int, PromoCode]:
        found: dict[int, PromoCode] = {}
        for chunk in in_chunks(sorted(set(promo_code_ids))):
            for code in self._many(sa.select(self.table).where(self.table.c.id.in_(chunk))):
                assert code.id is not None
                found[code.id] = code
        return found

    def get_by_hashes(self, code_hashes: Sequence[str]) -> PromoCode | None:
        if not code_hashes:
            return None
        if len(code_hashes) == 1:
            return self._one_with(_BY_HASH, {"code_hash_": code_hashes[0]}, _PG_BY_HASH)
        found = {code.code_hash: code
                 for code in self._many(sa.select(self.table).where(self.table.c.code_hash.in_(code_hashes)))}
        return next((found[code_hash] for code_hash in code_hashes if code_hash in found), None)

    def existing_hashes(self, code_hashes: Sequence[str]) -> set[str]:
        out: set[str] = set()
        if self._postgres:
            # One index probe per hash. A plain ``IN``/``= ANY`` is planned as a sequential scan while a bulk
            # insert is filling a not yet analyzed table (codes generate checks every chunk against the chunks
            # before it in the same transaction), which made a run quadratic; LATERAL ... LIMIT 1 always probes
            # the index. The hashes go as one comma-separated text (psycopg's array dumper costs more than the
            # probes), sorted, so the probes walk the index in order.
            probe = sa.text("SELECT wanted.hash FROM unnest(string_to_array(:hashes, ',')) AS wanted(hash) "
                            "CROSS JOIN LATERAL (SELECT 1 FROM promo_codes AS code "
                            "WHERE code.code_hash = wanted.hash LIMIT 1) AS hit")
            wanted = sorted(set(code_hashes))
            if any("," in code_hash for code_hash in wanted):
                raise ValueError("a code hash never contains a comma")
            for start in range(0, len(wanted), _PG_PROBE_CHUNK):
                joined = ",".join(wanted[start:start + _PG_PROBE_CHUNK])
                out.update(self._connection.execute(probe, {"hashes": joined}).scalars())
            return out
        for chunk in in_chunks(code_hashes):
            out.update(self._connection.execute(
                sa.select(self.table.c.code_hash).where(self.table.c.code_hash.in_(chunk))).scalars())
        return out

    def search(self, flt: CodeFilter, limit: int, after_id: int | None) -> list[PromoCode]:
        table = self.table
        statement = sa.select(table).order_by(table.c.id).limit(max(limit, 0))
        if after_id is not None:
            statement = statement.where(table.c.id > after_id)
        if flt.campaign_id is not None:
            statement = statement.where(table.c.campaign_id == flt.campaign_id)
        if flt.status is not None:
            statement = statement.where(table.c.status == flt.status.value)
        if flt.code_prefix:
            statement = statement.where(starts_with(table.c.code_prefix, flt.code_prefix))
        return self._many(statement)

    def set_status(
        self,
        promo_code_id: int,
        expected: Sequence[CampaignStatus],
        status: CampaignStatus,
        paused_reason: PausedReason | None,
        now: datetime,
    ) -> PromoCode | None:
        # paused_reason is null whenever the status is not PAUSED (a CHECK constraint).
        reason = paused_reason.value if status is CampaignStatus.PAUSED and paused_reason is not None else None
        table = self.table
        if len(expected) == 1:
            before = expected[0]
        else:  # which of them it was, read under the row's lock (SQLite: the transaction's write lock)
            found = self._connection.execute(
                self._locked(sa.select(table.c.status).where(table.c.id == promo_code_id))).scalar()
            if found is None or CampaignStatus(found) not in expected:
                return None
            before = CampaignStatus(found)
        changed = self._one(
            sa.update(table)
            .where(table.c.id == promo_code_id, table.c.status == before.value)
            .values(status=status.value, paused_reason=reason, updated_at=now)
            .returning(table)
        )
        if changed is not None and before is not status:
            self._count({(changed.campaign_id, before.value): -1, (changed.campaign_id, status.value): 1})
        return changed

    def _locked(self, statement: sa.Select[Any]) -> sa.Select[Any]:
        return statement.with_for_update() if self._postgres else statement

    def _of_campaign(self, campaign_id: int, *conditions: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        """The campaign's codes matching ``conditions``; on PostgreSQL locked in id order first, so two changes
        over one campaign's codes (or one and a release) never deadlock."""
        table = self.table
        if not self._postgres:
            return sa.and_(table.c.campaign_id == campaign_id, *conditions)
        ordered = (sa.select(table.c.id).where(table.c.campaign_id == campaign_id, *conditions)
                   .order_by(table.c.id).with_for_update())
        return table.c.id.in_(ordered.scalar_subquery())

    def expire_for_campaign(self, campaign_id: int, now: datetime) -> int:
        table = self.table
        if self._postgres:
            # One statement: the codes locked in id order, each one's status before the change counted.
            live = (sa.select(table.c.id, table.c.status).where(table.c.campaign_id == campaign_id,
                                                              table.c.status.in_(_LIVE_STATUSES))
                    .order_by(table.c.id).with_for_update().cte("live"))
            expired = (sa.update(table).where(table.c.id == live.c.id)
                       .values(status=CampaignStatus.EXPIRED.value, paused_reason=None, updated_at=now)
                       .returning(live.c.status.label("before")).cte("expired"))
            before = {str(status): int(n) for status, n in self._connection.execute(
                sa.select(expired.c.before, sa.func.count()).group_by(expired.c.before))}
        else:  # the transaction holds the write lock: counted, then changed
            live_codes = self._of_campaign(campaign_id, table.c.status.in_(_LIVE_STATUSES))
            before = {str(status): int(n) for status, n in self._connection.execute(
                sa.select(table.c.status, sa.func.count()).where(live_codes).group_by(table.c.status))}
            self._connection.execute(sa.update(table).where(live_codes)
                                     .values(status=CampaignStatus.EXPIRED.value, paused_reason=None,
                                             updated_at=now))
        deltas = {(campaign_id, status): -n for status, n in before.items()}
        deltas[(campaign_id, CampaignStatus.EXPIRED.value)] = sum(before.values())
        self._count(deltas)
        return sum(before.values())

    def copy_campaign_fields(self, campaign_id: int, name: str, valid_until: datetime | None, now: datetime) -> int:
        table = self.table
        result = self._connection.execute(
            sa.update(table).where(self._of_campaign(campaign_id))
            .values(campaign_name=name, valid_until=valid_until, updated_at=now))
        return int(result.rowcount)

    def claim_capacity(self, promo_code_id: int, now: datetime) -> tuple[PromoCode, Campaign] | None:
        params = {"promo_code_id_": promo_code_id, "now_": now}
        if self._postgres:
            row = self.run_raw(_PG_CLAIM, params).fetchone()
            if row is None:
                return None
            if row[_CODE_WIDTH] is None:
                self._connection.execute(_UNCLAIM_CODE, {"promo_code_id_": promo_code_id})
                return None
            return code_from_tuple(row[:_CODE_WIDTH]), campaign_from_tuple(row[_CODE_WIDTH:])
        code_row = self._connection.execute(_CLAIM_CODE, params).first()
        if code_row is None:
            return None
        code = code_from_row(code_row._mapping)
        campaign_row = self._connection.execute(_CLAIM_CAMPAIGN, {"campaign_id_": code.campaign_id, "now_": now}
                                                ).first()
        if campaign_row is None:  # never while the write lock is held; kept whole all the same
            self._connection.execute(_UNCLAIM_CODE, {"promo_code_id_": promo_code_id})
            return None
        return code, campaign_from_row(campaign_row._mapping)

    def release_capacity_many(self, units: Mapping[int, int], now: datetime) -> None:
        _RELEASE(self._connection, units, now)

    def due_for_depletion(self, limit: int) -> list[PromoCode]:
        table, redemptions = self.table, promo_redemptions
        reserved = sa.select(redemptions.c.id).where(redemptions.c.promo_code_id == table.c.id,
                                                     redemptions.c.status == _RESERVED)
        statement = (
            sa.select(table)
            # The predicate of the partial index ix_promo_codes_used_up, literally.
            .where(table.c.status == _ACTIVE, table.c.max_total_uses.is_not(None),
                   table.c.used_total >= table.c.max_total_uses, ~reserved.exists())
            .order_by(table.c.id).limit(limit)
        )
        return self._many(self._skip_locked(statement, table))

    def active_with_hashes(self, code_hashes: Sequence[str]) -> list[PromoCode]:
        table = self.table
        found: dict[int, PromoCode] = {}
        for chunk in in_chunks(sorted(set(code_hashes))):
            for code in self._many(sa.select(table).where(table.c.code_hash.in_(chunk), table.c.status == _ACTIVE)):
                assert code.id is not None
                found[code.id] = code
        return [found[promo_code_id] for promo_code_id in sorted(found)]

    def count_paused(self, since: datetime | None = None) -> int:
        table = self.table
        statement = sa.select(sa.func.count()).select_from(table).where(
            table.c.status == CampaignStatus.PAUSED.value)
        if since is not None:
            statement = statement.where(table.c.updated_at >= since)
        return int(self._connection.execute(statement).scalar_one())


