"""split group bucket ranges

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing groups keep NULL: their layout is the contiguous one of their positions.
    with op.batch_alter_table('split_groups', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                'ranges',
                sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table('split_groups', schema=None) as batch_op:
        batch_op.drop_column('ranges')
