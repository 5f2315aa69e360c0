"""statistics aggregates: alert_stats, alert_stats_by_alert, alert_stats_repeats, ix_alerts_resolved_at,
ix_notifications_last_attempt_at

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 16:50:00.000000
"""

from alembic import op
import sqlalchemy as sa
import receiver.store.types


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_TIME = receiver.store.types.UTCDateTime(timezone=True)
_COUNTERS = ("occurrences", "acked", "escalated", "escalations", "mtta_count", "mttr_count", "notifications_pending",
             "notifications_sending", "notifications_sent", "notifications_failed", "notifications_dead")


def _int(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table('alert_stats',
    sa.Column('span', sa.Integer(), nullable=False),
    sa.Column('bucket', _TIME, nullable=False),
    sa.Column('service', sa.String(length=200), nullable=False),
    sa.Column('severity', sa.String(length=200), nullable=False),
    sa.Column('level', sa.String(length=2), nullable=False),
    *[_int(name) for name in _COUNTERS],
    sa.Column('mtta_sum', sa.Double(), nullable=False),
    sa.Column('mttr_sum', sa.Double(), nullable=False),
    *[_int(f'{prefix}_b{i:02d}') for prefix in ('mtta', 'mttr') for i in range(61)],
    sa.PrimaryKeyConstraint('span', 'bucket', 'service', 'severity', 'level', name=op.f('pk_alert_stats')),
    sqlite_with_rowid=False,
    )
    op.create_index('ix_alert_stats_trends', 'alert_stats',
                    ['span', 'bucket', 'severity', 'service', 'level', 'occurrences'], unique=False)
    op.create_table('alert_stats_by_alert',
    sa.Column('span', sa.Integer(), nullable=False),
    sa.Column('bucket', _TIME, nullable=False),
    sa.Column('alertname', sa.String(length=200), nullable=False),
    sa.Column('service', sa.String(length=200), nullable=False),
    _int('occurrences'), _int('escalations'), _int('noisy'),
    sa.Column('duration_sum', sa.Double(), nullable=False),
    sa.Column('duration_max', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('span', 'bucket', 'alertname', 'service', name=op.f('pk_alert_stats_by_alert')),
    sqlite_with_rowid=False,
    )
    op.create_table('alert_stats_repeats',
    sa.Column('alert_id', _ID, autoincrement=False, nullable=False),
    sa.Column('fingerprint', sa.String(length=32), nullable=False),
    sa.Column('starts_at', _TIME, nullable=False),
    sa.Column('gap_seconds', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('alert_id', name=op.f('pk_alert_stats_repeats'))
    )
    op.create_index('ix_alert_stats_repeats_starts_at', 'alert_stats_repeats', ['starts_at'], unique=False)
    op.create_index('ix_alerts_resolved_at', 'alerts', ['resolved_at'], unique=False,
                    sqlite_where=sa.text("status = 'resolved'"), postgresql_where=sa.text("status = 'resolved'"))
    op.create_index('ix_notifications_last_attempt_at', 'notifications', ['last_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_notifications_last_attempt_at', table_name='notifications')
    op.drop_index('ix_alerts_resolved_at', table_name='alerts')
    op.drop_index('ix_alert_stats_repeats_starts_at', table_name='alert_stats_repeats')
    op.drop_table('alert_stats_repeats')
    op.drop_table('alert_stats_by_alert')
    op.drop_index('ix_alert_stats_trends', table_name='alert_stats')
    op.drop_table('alert_stats')
