"""star movements: Star transactions that are no purchase payment nor its refund

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08

``star_movements`` (issue 17): the Star transactions the reconciliation job reads that are neither a purchase
payment nor its refund (Fragment withdrawals, Telegram Ads, paid broadcasts, gifts, affiliate commissions, paid
media, subscriptions, ...), one row per Telegram transaction id and direction, for the dashboard's
``payments.other_movements``. Nothing else reads or changes them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('star_movements',
    sa.Column('transaction_id', sa.String(length=255), nullable=False),
    sa.Column('outgoing', sa.Boolean(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('partner', sa.String(length=64), nullable=False),
    sa.Column('transaction_type', sa.String(length=64), nullable=True),
    sa.Column('stars', sa.BigInteger(), nullable=False),
    sa.Column('nanostars', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('stars >= 0 AND nanostars >= 0 AND nanostars < 1000000000',
                       name=op.f('ck_star_movements_amount_valid')),
    sa.PrimaryKeyConstraint('transaction_id', 'outgoing', name=op.f('pk_star_movements'))
    )
    op.create_index(op.f('ix_star_movements_occurred_at'), 'star_movements', ['occurred_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_star_movements_occurred_at'), table_name='star_movements')
    op.drop_table('star_movements')
