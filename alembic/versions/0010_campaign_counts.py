"""campaign code counts and the campaign of each purchase

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

The ops console's campaign page (SPEC 12: <= 300 ms with 1,000,000 codes) counted a campaign's codes by status
(700,000 rows for a launch) and found the campaign of each paid purchase through its redemption, once per purchase.

- ``promo_code_counts``: one row per campaign and code status with the number of codes, filled here from
  ``promo_codes`` and kept by every code insert and status change after it (adapters/sql/code_counts.py).
- ``purchases.campaign_id``: the campaign of the purchase's redemption (NULL without one), filled here from
  ``promo_redemptions`` and copied on insert after it; indexed with ``paid_at``.

Every row is kept. The downgrade drops the table, the index and the column: both are derived from rows that stay.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATUSES = "'ACTIVE', 'PAUSED', 'EXPIRED', 'DEPLETED'"


def upgrade() -> None:
    op.create_table(
        'promo_code_counts',
        sa.Column('campaign_id', BigId, autoincrement=False, nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('codes', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('codes >= 0', name=op.f('ck_promo_code_counts_codes_not_negative')),
        sa.CheckConstraint(f'status IN ({STATUSES})', name=op.f('ck_promo_code_counts_status')),
        sa.ForeignKeyConstraint(['campaign_id'], ['promo_campaigns.id'],
                                name=op.f('fk_promo_code_counts_campaign_id_promo_campaigns')),
        sa.PrimaryKeyConstraint('campaign_id', 'status', name=op.f('pk_promo_code_counts')),
    )
    op.execute("INSERT INTO promo_code_counts (campaign_id, status, codes) "
               "SELECT campaign_id, status, count(*) FROM promo_codes GROUP BY campaign_id, status")
    op.add_column('purchases', sa.Column('campaign_id', BigId, nullable=True))
    op.execute("UPDATE purchases SET campaign_id = (SELECT r.campaign_id FROM promo_redemptions AS r "
               "WHERE r.id = purchases.promo_redemption_id) WHERE promo_redemption_id IS NOT NULL")
    op.create_index(op.f('ix_purchases_campaign_id_paid_at'), 'purchases', ['campaign_id', 'paid_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_purchases_campaign_id_paid_at'), table_name='purchases')
    op.drop_column('purchases', 'campaign_id')  # SQLite >= 3.35 drops a column in place
    op.drop_table('promo_code_counts')
