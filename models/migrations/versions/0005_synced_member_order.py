"""synced member order

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 15:40:00.000000

The held state of a sync is read in the membership stream's key order at every run. This
gives that order an index instead of a sort of every held member: text keys compare byte for
byte (`COLLATE "C"` on PostgreSQL, so the primary key's index serves them) and number keys
get `member_order`, the key as a number, with an index of its own. Existing rows keep NULL;
a run of a number-keyed sync fills its own (`app.sync.held.fill_member_order`).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('synced_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('member_order', sa.Numeric(), nullable=True))
        batch_op.create_index('ix_synced_members_order', ['sync_id', 'member_order'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE synced_members ALTER COLUMN member_key TYPE VARCHAR COLLATE "C"')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE synced_members ALTER COLUMN member_key TYPE VARCHAR COLLATE "default"')
    with op.batch_alter_table('synced_members', schema=None) as batch_op:
        batch_op.drop_index('ix_synced_members_order')
        batch_op.drop_column('member_order')
