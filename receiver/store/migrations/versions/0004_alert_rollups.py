"""alert rollups

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:42:56.496251
"""

from alembic import op
import sqlalchemy as sa
import receiver.store.types


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_rollups',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('service', sa.String(length=200), nullable=False),
    sa.Column('alertname', sa.String(length=200), nullable=False),
    sa.Column('severity', sa.String(length=200), nullable=False),
    sa.Column('occurrences', sa.Integer(), nullable=False),
    sa.Column('resolved', sa.Integer(), nullable=False),
    sa.Column('acked', sa.Integer(), nullable=False),
    sa.Column('escalated', sa.Integer(), nullable=False),
    sa.Column('escalations', sa.Integer(), nullable=False),
    sa.Column('levels', sa.JSON(), nullable=False),
    sa.Column('mtta_count', sa.Integer(), nullable=False),
    sa.Column('mtta_sum', sa.Double(), nullable=False),
    sa.Column('mtta_hist', sa.JSON(), nullable=False),
    sa.Column('mttr_count', sa.Integer(), nullable=False),
    sa.Column('mttr_sum', sa.Double(), nullable=False),
    sa.Column('mttr_hist', sa.JSON(), nullable=False),
    sa.Column('notifications', sa.Integer(), nullable=False),
    sa.Column('notifications_failed', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_rollups')),
    sa.UniqueConstraint('day', 'service', 'alertname', 'severity', name=op.f('uq_alert_rollups_day_service_alertname_severity'))
    )
    with op.batch_alter_table('alert_rollups', schema=None) as batch_op:
        batch_op.create_index('ix_alert_rollups_service_day', ['service', 'day'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('alert_rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_rollups_service_day')

    op.drop_table('alert_rollups')
