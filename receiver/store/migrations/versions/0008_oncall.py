"""on-call: schedule overrides, maintenance windows, the person a notification paged, mutes, SLA breaches and the
SLA compliance aggregate (issue #17)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 15:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import receiver.store.types


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_when = receiver.store.types.UTCDateTime(timezone=True)
_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('schedule_overrides',
    sa.Column('id', _id, autoincrement=True, nullable=False),
    sa.Column('schedule', sa.String(length=200), nullable=False),
    sa.Column('person', sa.String(length=200), nullable=False),
    sa.Column('start_at', _when, nullable=False),
    sa.Column('end_at', _when, nullable=False),
    sa.Column('created_at', _when, nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_overrides'))
    )
    op.create_index('ix_schedule_overrides_schedule_end_at', 'schedule_overrides', ['schedule', 'end_at'],
                    unique=False)
    op.create_table('maintenance_windows',
    sa.Column('id', _id, autoincrement=True, nullable=False),
    sa.Column('matchers', sa.JSON(), nullable=False),
    sa.Column('start_at', _when, nullable=False),
    sa.Column('end_at', _when, nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', _when, nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=True),
    sa.Column('ended_early_by', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_windows'))
    )
    op.create_index('ix_maintenance_windows_end_at', 'maintenance_windows', ['end_at'], unique=False)
    # Nullable columns: added without rewriting the tables on either dialect.
    with op.batch_alter_table('notifications') as batch:
        batch.add_column(sa.Column('target', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('person', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('person_source', sa.String(length=16), nullable=True))
    with op.batch_alter_table('alerts') as batch:
        batch.add_column(sa.Column('muted_until', _when, nullable=True))
        batch.add_column(sa.Column('sla_ack_breached_at', _when, nullable=True))
        batch.add_column(sa.Column('sla_resolve_breached_at', _when, nullable=True))
        # Not null with a constant default: no table rewrite on PostgreSQL 11+, a plain ADD COLUMN on SQLite.
        batch.add_column(sa.Column('sla_flags', sa.Integer(), server_default=sa.text('0'), nullable=False))
    # Empty until the next statistics refresh fills the hours it re-derives; readers use raw rows for the rest
    # (statistics/read_sla.py reads it only through the aggregates' plan).
    op.create_table('alert_stats_sla',
    sa.Column('span', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('bucket', _when, nullable=False),
    sa.Column('route', sa.String(length=200), nullable=False),
    sa.Column('service', sa.String(length=200), nullable=False),
    sa.Column('severity', sa.String(length=200), nullable=False),
    sa.Column('level', sa.String(length=2), nullable=False),
    sa.Column('unacked', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('ever_acked', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('sla_flags', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('occurrences', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('span', 'bucket', 'route', 'service', 'severity', 'level', 'unacked', 'ever_acked',
                            'sla_flags', name=op.f('pk_alert_stats_sla')),
    sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table('alert_stats_sla')
    with op.batch_alter_table('alerts') as batch:
        batch.drop_column('sla_flags')
        batch.drop_column('sla_resolve_breached_at')
        batch.drop_column('sla_ack_breached_at')
        batch.drop_column('muted_until')
    with op.batch_alter_table('notifications') as batch:
        batch.drop_column('person_source')
        batch.drop_column('person')
        batch.drop_column('target')
    op.drop_index('ix_maintenance_windows_end_at', table_name='maintenance_windows')
    op.drop_table('maintenance_windows')
    op.drop_index('ix_schedule_overrides_schedule_end_at', table_name='schedule_overrides')
    op.drop_table('schedule_overrides')
