"""alertmanager silences (ack_silence)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 14:05:00.000000
"""

from alembic import op
import sqlalchemy as sa
import receiver.store.types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alertmanager_silences',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('alertmanager', sa.String(length=200), nullable=False),
    sa.Column('acked_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('silence_id', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alertmanager_silences_alert_id_alerts'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alertmanager_silences')),
    sa.UniqueConstraint('alert_id', 'alertmanager', 'acked_at',
                        name=op.f('uq_alertmanager_silences_alert_id_alertmanager_acked_at'))
    )
    op.create_index('ix_alertmanager_silences_state_next_attempt_at', 'alertmanager_silences',
                    ['state', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_alertmanager_silences_state_next_attempt_at', table_name='alertmanager_silences')
    op.drop_table('alertmanager_silences')
