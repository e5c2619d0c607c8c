"""ops console operators and sign-in failures

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08

``ops_operators``: the named people who sign in to the ops console (SPEC 14), unique by ``name_key`` (the name
case-folded), with a memory-hard password hash and a ``session_epoch`` that ends their console sessions when it
moves. ``ops_sign_in_failures``: one row per refused sign-in, read by name and by address over a trailing window
to throttle guessing (SPEC 13).
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('ops_operators',
    sa.Column('id', _ID, sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('name_key', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=512), nullable=False),
    sa.Column('session_epoch', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('admin', 'viewer')", name=op.f('ck_ops_operators_role')),
    sa.CheckConstraint('session_epoch >= 0', name=op.f('ck_ops_operators_session_epoch_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_operators')),
    sa.UniqueConstraint('name_key', name=op.f('uq_ops_operators_name_key'))
    )
    op.create_table('ops_sign_in_failures',
    sa.Column('id', _ID, sa.Identity(always=False), nullable=False),
    sa.Column('name_key', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ops_sign_in_failures'))
    )
    op.create_index(op.f('ix_ops_sign_in_failures_name_key_at'), 'ops_sign_in_failures', ['name_key', 'at'],
                    unique=False)
    op.create_index(op.f('ix_ops_sign_in_failures_address_at'), 'ops_sign_in_failures', ['address', 'at'],
                    unique=False)
    op.create_index(op.f('ix_ops_sign_in_failures_at'), 'ops_sign_in_failures', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ops_sign_in_failures_at'), table_name='ops_sign_in_failures')
    op.drop_index(op.f('ix_ops_sign_in_failures_address_at'), table_name='ops_sign_in_failures')
    op.drop_index(op.f('ix_ops_sign_in_failures_name_key_at'), table_name='ops_sign_in_failures')
    op.drop_table('ops_sign_in_failures')
    op.drop_table('ops_operators')
