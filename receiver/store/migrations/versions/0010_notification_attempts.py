"""notification attempts: every try to deliver an outbox message (issue #19)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 18:30:00.000000
"""

from alembic import op
import sqlalchemy as sa
import receiver.store.types


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_when = receiver.store.types.UTCDateTime(timezone=True)
_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('notification_attempts',
    sa.Column('id', _id, autoincrement=True, nullable=False),
    sa.Column('notification_id', _id, nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', _when, nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('code', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'],
                            name=op.f('fk_notification_attempts_notification_id_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_attempts'))
    )
    op.create_index('ix_notification_attempts_notification_id', 'notification_attempts', ['notification_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_notification_attempts_notification_id', table_name='notification_attempts')
    op.drop_table('notification_attempts')
