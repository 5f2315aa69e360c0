"""first notified and first acked

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:41:24.706377
"""

from alembic import op
import sqlalchemy as sa
import receiver.store.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_notified_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('first_acked_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('first_acked_at')
        batch_op.drop_column('first_notified_at')

