"""delivery timings and receiver state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:21:18.407702
"""

from alembic import op
import sqlalchemy as sa
import receiver.store.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('receiver_state',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_receiver_state'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timer_started_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('give_up_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_attempt_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_duration_ms', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('last_duration_ms')
        batch_op.drop_column('last_attempt_at')
        batch_op.drop_column('give_up_at')

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('timer_started_at')
    op.drop_table('receiver_state')
