"""synced member row digest

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 18:10:00.000000

A held member keeps the digest of the source line its payload was made from
(`app.sync.row_digest`), so a rerun knows the members whose line is unchanged without
decoding them. Existing rows keep NULL: their next run fingerprints them and fills it in.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('synced_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('row_digest', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('synced_members', schema=None) as batch_op:
        batch_op.drop_column('row_digest')
