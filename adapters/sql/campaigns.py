"""``promo_campaigns`` (port ``Campaigns``): the terms, budget and per-user limit a campaign's codes share.

Lock order (every writer): code rows before campaign rows. A redeem claims its code, then the campaign; the
reservation expiry gives units back to codes (``PromoCodes.release_capacity_many``) before campaigns (here). So
nothing here locks a campaign row ahead of a later code update: ``due_for_expiry`` is a plain read (the rollover
expires the codes first, then moves the campaign with a conditional ``set_status``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from adapters.sql import code_counts
from adapters.sql._base import CounterRelease, SqlRepository, like_escaped, starts_with
from adapters.sql.rows import campaign_from_row, campaign_values
from adapters.sql.tables import promo_campaigns, promo_codes, promo_redemptions
from domain.model import (
    Campaign,
    CampaignChanges,
    CampaignFilter,
    CampaignStatus,
    PausedReason,
    RedemptionStatus,
)

_campaigns = promo_campaigns

_RELEASE = CounterRelease(_campaigns)


class SqlCampaigns(SqlRepository):
    table = promo_campaigns

    def _one(self, statement: sa.Executable) -> Campaign | None:
        row = self._execute(statement).first()
        return campaign_from_row(row._mapping) if row is not None else None

    def _many(self, statement: sa.Executable) -> list[Campaign]:
        return [campaign_from_row(row._mapping) for row in self._connection.execute(statement)]

    def add(self, campaign: Campaign) -> Campaign:
        row = self._execute(sa.insert(self.table).values(campaign_values(campaign)).returning(self.table)).one()
        return campaign_from_row(row._mapping)

    def get(self, campaign_id: int) -> Campaign | None:
        return self._one(sa.select(self.table).where(self.table.c.id == campaign_id))

    def get_by_name(self, name: str) -> Campaign | None:
        return self._one(sa.select(self.table).where(self.table.c.name == name))

    def get_many(self, campaign_ids: Sequence[int]) -> dict[int, Campaign]:
        wanted = sorted(set(campaign_ids))
        if not wanted:
            return {}
        found = self._many(sa.select(self.table).where(self.table.c.id.in_(wanted)))
        return {campaign.id: campaign for campaign in found if campaign.id is not None}

    def search(self, flt: CampaignFilter, limit: int, before_id: int | None) -> list[Campaign]:
        table = self.table
        statement = sa.select(table).order_by(table.c.id.desc()).limit(max(limit, 0))
        if before_id is not None:
            statement = statement.where(table.c.id < before_id)
        if flt.status is not None:
            statement = statement.where(table.c.status == flt.status.value)
        if flt.promo_type is not None:
            statement = statement.where(table.c.promo_type == flt.promo_type.value)
        if flt.name_contains:
            pattern = f"%{like_escaped(flt.name_contains.lower())}%"
            statement = statement.where(sa.func.lower(table.c.name).like(pattern, escape="\\"))
        return self._many(statement)

    def set_status(
        self,
        campaign_id: int,
        expected: Sequence[CampaignStatus],
        status: CampaignStatus,
        paused_reason: PausedReason | None,
        now: datetime,
    ) -> Campaign | None:
        # paused_reason is null whenever the status is not PAUSED (a CHECK constraint).
        reason = paused_reason.value if status is CampaignStatus.PAUSED and paused_reason is not None else None
        table = self.table
        return self._one(
            sa.update(table)
            .where(table.c.id == campaign_id, table.c.status.in_([s.value for s in expected]))
            .values(status=status.value, paused_reason=reason, updated_at=now)
            .returning(table)
        )

    def change(self, campaign_id: int, changes: CampaignChanges, now: datetime) -> Campaign | None:
        table = self.table
        values: dict[str, Any] = {**changes.changed(), "updated_at": now}
        conditions: list[sa.ColumnElement[bool]] = [table.c.id == campaign_id]
        new_budget = values.get("max_total_uses")
        if new_budget is not None:
            # The budget never drops below what is used: checked against the row as it is when updated.
            conditions.append(table.c.used_total <= new_budget)
        return self._one(sa.update(table).where(*conditions).values(values).returning(table))

    def release_capacity_many(self, units: Mapping[int, int], now: datetime) -> None:
        _RELEASE(self._connection, units, now)

    def due_for_expiry(self, now: datetime, limit: int) -> list[Campaign]:
        # Not locked: the rollover updates the campaign's codes before the campaign (lock order), and its
        # conditional set_status decides between two runs.
        table = self.table
        return self._many(
            sa.select(table)
            .where(table.c.status.in_([CampaignStatus.ACTIVE.value, CampaignStatus.PAUSED.value]),
                   table.c.valid_until.is_not(None), table.c.valid_until <= now)
            .order_by(table.c.id).limit(limit)
        )

    def due_for_depletion(self, limit: int) -> list[Campaign]:
        table, redemptions = self.table, promo_redemptions
        reserved = sa.select(redemptions.c.id).where(redemptions.c.campaign_id == table.c.id,
                                                     redemptions.c.status == RedemptionStatus.RESERVED.value)
        statement = (
            sa.select(table)
            .where(table.c.status == CampaignStatus.ACTIVE.value, table.c.max_total_uses.is_not(None),
                   table.c.used_total >= table.c.max_total_uses, ~reserved.exists())
            .order_by(table.c.id).limit(limit)
        )
        # Skip-locked and never waiting: a redeem holding this row holds its code row too (taken first).
        return self._many(self._skip_locked(statement, table))

    def active_with_code_prefix(self, code_prefix: str) -> list[Campaign]:
        table, codes = self.table, promo_codes
        owners = sa.select(codes.c.campaign_id).where(starts_with(codes.c.code_prefix, code_prefix))
        return self._many(sa.select(table).where(table.c.status == CampaignStatus.ACTIVE.value,
                                                 table.c.id.in_(owners)).order_by(table.c.id))

    def count_paused(self, since: datetime | None = None) -> int:
        table = self.table
        statement = sa.select(sa.func.count()).select_from(table).where(
            table.c.status == CampaignStatus.PAUSED.value)
        if since is not None:
            statement = statement.where(table.c.updated_at >= since)
        return int(self._connection.execute(statement).scalar_one())

    def code_counts(self, campaign_ids: Sequence[int]) -> dict[int, dict[CampaignStatus, int]]:
        return code_counts.read(self._connection, campaign_ids)
