"""telegram outbox: the replies the bot owes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08

``telegram_outbox`` (issue 17, SPEC 9): every reply the bot owes (a text, an invoice) is written here in the
transaction of the change that caused it and delivered from here in order per chat, marked ``SENT`` with
Telegram's ``message_id`` only after Telegram's ok. Partial indexes serve the delivery claim (due PENDING rows,
and the older PENDING row of a chat), the housekeeping of SENT rows and the list of FAILED ones.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('telegram_outbox',
    sa.Column('id', _ID, sa.Identity(always=False), nullable=False),
    sa.Column('chat_id', sa.BigInteger(), nullable=False),
    sa.Column('dedup_key', sa.String(length=128), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
              nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('telegram_message_id', sa.BigInteger(), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.CheckConstraint("status IN ('PENDING', 'SENT', 'FAILED')", name=op.f('ck_telegram_outbox_status')),
    sa.CheckConstraint("method IN ('sendMessage', 'sendInvoice')", name=op.f('ck_telegram_outbox_method')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_telegram_outbox_attempts_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_telegram_outbox')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_telegram_outbox_dedup_key'))
    )
    op.create_index('ix_telegram_outbox_pending_due', 'telegram_outbox', ['next_attempt_at', 'id'], unique=False,
                    postgresql_where=sa.text("status = 'PENDING'"), sqlite_where=sa.text("status = 'PENDING'"))
    op.create_index('ix_telegram_outbox_pending_chat', 'telegram_outbox', ['chat_id', 'id'], unique=False,
                    postgresql_where=sa.text("status = 'PENDING'"), sqlite_where=sa.text("status = 'PENDING'"))
    op.create_index('ix_telegram_outbox_sent_at', 'telegram_outbox', ['sent_at'], unique=False,
                    postgresql_where=sa.text("status = 'SENT'"), sqlite_where=sa.text("status = 'SENT'"))
    op.create_index('ix_telegram_outbox_failed', 'telegram_outbox', ['id'], unique=False,
                    postgresql_where=sa.text("status = 'FAILED'"), sqlite_where=sa.text("status = 'FAILED'"))


def downgrade() -> None:
    op.drop_index('ix_telegram_outbox_failed', table_name='telegram_outbox')
    op.drop_index('ix_telegram_outbox_sent_at', table_name='telegram_outbox')
    op.drop_index('ix_telegram_outbox_pending_chat', table_name='telegram_outbox')
    op.drop_index('ix_telegram_outbox_pending_due', table_name='telegram_outbox')
    op.drop_table('telegram_outbox')
