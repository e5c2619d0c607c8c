"""payment reviews and purchase indexes for payments reliability

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

``payment_reviews`` (reconciliation differences and unsafe recoveries, one row per ``dedup_key``) and the
``purchases`` indexes the reconciliation and the dashboard's payments section read by.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('payment_reviews',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(always=False), nullable=False),
    sa.Column('dedup_key', sa.String(length=128), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('purchase_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('telegram_payment_charge_id', sa.String(length=255), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution_note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['purchase_id'], ['purchases.id'], name=op.f('fk_payment_reviews_purchase_id_purchases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_reviews')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_payment_reviews_dedup_key'))
    )
    op.create_index('ix_payment_reviews_open', 'payment_reviews', ['id'], unique=False, postgresql_where=sa.text('resolved_at IS NULL'), sqlite_where=sa.text('resolved_at IS NULL'))
    op.create_index(op.f('ix_purchases_paid_at'), 'purchases', ['paid_at'], unique=False)
    op.create_index(op.f('ix_purchases_refunded_at'), 'purchases', ['refunded_at'], unique=False)
    op.create_index('ix_purchases_failed_updated_at', 'purchases', ['updated_at'], unique=False, postgresql_where=sa.text("status = 'FAILED'"), sqlite_where=sa.text("status = 'FAILED'"))
    op.create_index('ix_purchases_review_updated_at', 'purchases', ['updated_at'], unique=False, postgresql_where=sa.text('review_reason IS NOT NULL'), sqlite_where=sa.text('review_reason IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_purchases_review_updated_at', table_name='purchases')
    op.drop_index('ix_purchases_failed_updated_at', table_name='purchases')
    op.drop_index(op.f('ix_purchases_refunded_at'), table_name='purchases')
    op.drop_index(op.f('ix_purchases_paid_at'), table_name='purchases')
    op.drop_index('ix_payment_reviews_open', table_name='payment_reviews')
    op.drop_table('payment_reviews')
