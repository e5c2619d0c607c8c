"""index promo_redemptions by code

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09

The ops console's code page (SPEC 14) lists one code's redemptions, newest first and paged by id:
``(promo_code_id, id)`` answers that from the index for a single-use code and an influencer code alike.
"""

from __future__ import annotations

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f('ix_promo_redemptions_promo_code_id_id'), 'promo_redemptions', ['promo_code_id', 'id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_promo_redemptions_promo_code_id_id'), table_name='promo_redemptions')
