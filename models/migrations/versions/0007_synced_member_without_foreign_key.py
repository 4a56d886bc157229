"""synced members without a foreign key

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 18:20:00.000000

The held state's `sync_id` loses its foreign key to `audience_syncs`: PostgreSQL checked it
for every row a run recorded (about a third of the server's work in a first sync). A commit
checks and locks the sync once instead (`app.sync.held`), and deleting a sync locks it first.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: How SQLite's unnamed foreign key is named when batch mode reflects the table.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
NAME = "fk_synced_members_sync_id_audience_syncs"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        names = bind.execute(sa.text(
            "SELECT conname FROM pg_constraint "
            "WHERE conrelid = 'synced_members'::regclass AND contype = 'f'"
        )).scalars().all()
        for name in names:
            op.drop_constraint(name, 'synced_members', type_='foreignkey')
        return
    with op.batch_alter_table('synced_members', naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(NAME, type_='foreignkey')


def downgrade() -> None:
    with op.batch_alter_table('synced_members', naming_convention=NAMING) as batch_op:
        batch_op.create_foreign_key(NAME, 'audience_syncs', ['sync_id'], ['id'])
