"""session revocations and pagerduty events (replay guards, issue #15)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import receiver.store.types


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('session_revocations',
    sa.Column('session_id', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('session_id', name=op.f('pk_session_revocations'))
    )
    op.create_index('ix_session_revocations_expires_at', 'session_revocations', ['expires_at'], unique=False)
    op.create_table('pagerduty_events',
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('received_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_pagerduty_events'))
    )
    op.create_index('ix_pagerduty_events_received_at', 'pagerduty_events', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_pagerduty_events_received_at', table_name='pagerduty_events')
    op.drop_table('pagerduty_events')
    op.drop_index('ix_session_revocations_expires_at', table_name='session_revocations')
    op.drop_table('session_revocations')
