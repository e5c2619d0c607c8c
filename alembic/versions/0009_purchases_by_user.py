"""index purchases by user

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

The support view of one user (``GET /internal/users/{user_id}``, the ops console's user page) lists the user's
purchases newest first. The only index naming ``user_id`` was ``(status, user_id)``, which PostgreSQL read from end
to end for it (every purchase's entry); ``(user_id, created_at)`` answers it from the user's own entries.
"""

from __future__ import annotations

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_purchases_user_id_created_at'), 'purchases', ['user_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_purchases_user_id_created_at'), table_name='purchases')
