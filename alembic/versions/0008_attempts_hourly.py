"""hourly rollup of promo_attempts

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

The dashboard and the campaign stats (the ops console's overview and campaign page, SPEC 12: <= 300 ms with
1,000,000 attempts) count attempts per result and per hour over a window of up to 30 days. ``promo_attempts_hourly``
holds those counts per complete UTC hour (all attempts under campaign 0, each campaign's under its id, a marker
row under campaign -1), folded by the first read after the hour is over (adapters/sql/attempt_rollup.py); reads
take the folded hours from it and only the rest from promo_attempts. Created empty: the first read folds the hours
its window needs.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'promo_attempts_hourly',
        sa.Column('campaign_id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('result', sa.String(length=32), nullable=False),
        sa.Column('attempts', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('campaign_id', 'hour', 'result', name=op.f('pk_promo_attempts_hourly')),
    )


def downgrade() -> None:
    op.drop_table('promo_attempts_hourly')
