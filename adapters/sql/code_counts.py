"""``promo_code_counts``: a campaign's codes counted by status, kept in the transaction of every change.

Every code insert and status change in ``SqlPromoCodes`` adds its deltas here, row by row in
``(campaign_id, status)`` order, so two writers take counter rows in the same order (no deadlock) and after the
code rows they changed (the order of every writer: codes, then counters, then campaigns). The redeem path changes
no code's status and never comes here.

``RECOUNT`` rebuilds the rows from ``promo_codes`` (migration 0010 fills the table the same way; the bench runs it
after seeding rows with plain SQL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from adapters.sql.tables import promo_code_counts
from domain.model import CampaignStatus

Deltas = Mapping[tuple[int, str], int]

RECOUNT = ("DELETE FROM promo_code_counts",
           "INSERT INTO promo_code_counts (campaign_id, status, codes) "
           "SELECT campaign_id, status, count(*) FROM promo_codes GROUP BY campaign_id, status")


def add_deltas(connection: sa.Connection, postgres: bool, deltas: Deltas) -> None:
    """``codes += delta`` for each ``(campaign_id, status)``, in that order: a count going up is an upsert (its
    row may be new), one going down an update (its row exists: the codes it counted do). Zero deltas are left out."""
    table = promo_code_counts
    for (campaign_id, status), delta in sorted(deltas.items()):
        if delta > 0:
            insert = pg_dialect.insert(table) if postgres else sqlite_dialect.insert(table)
            statement = insert.values(campaign_id=campaign_id, status=status, codes=delta)
            connection.execute(statement.on_conflict_do_update(
                index_elements=[table.c.campaign_id, table.c.status],
                set_={"codes": table.c.codes + statement.excluded.codes},
            ))
        elif delta < 0:
            connection.execute(sa.update(table).where(table.c.campaign_id == campaign_id, table.c.status == status)
                               .values(codes=table.c.codes + delta))


def read(connection: sa.Connection, campaign_ids: Sequence[int]) -> dict[int, dict[CampaignStatus, int]]:
    """The counts of ``campaign_ids`` (zeros for a campaign without codes)."""
    counts = {campaign_id: dict.fromkeys(CampaignStatus, 0) for campaign_id in campaign_ids}
    wanted = sorted(counts)
    if not wanted:
        return counts
    table = promo_code_counts
    statement = sa.select(table.c.campaign_id, table.c.status, table.c.codes).where(table.c.campaign_id.in_(wanted))
    for campaign_id, status, codes in connection.execute(statement):
        counts[campaign_id][CampaignStatus(status)] = int(codes)
    return counts
