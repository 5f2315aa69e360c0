"""statistics sketches: alert_stats_sketch (MTTA/MTTR log bins per hour and day, issue #19)

The aggregates are rebuilt from scratch after this migration (the state row is reset): hours aggregated before it
have no sketch rows, and a reader must never merge a sketch that misses them. Until the first build publishes
again, statistics read raw rows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 18:45:00.000000
"""

from alembic import op
import sqlalchemy as sa
import receiver.store.types


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_TIME = receiver.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('alert_stats_sketch',
    sa.Column('span', sa.Integer(), nullable=False),
    sa.Column('bucket', _TIME, nullable=False),
    sa.Column('metric', sa.String(length=4), nullable=False),
    sa.Column('bin', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('min_value', sa.Double(), nullable=False),
    sa.Column('max_value', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('span', 'bucket', 'metric', 'bin', name=op.f('pk_alert_stats_sketch')),
    sqlite_with_rowid=False,
    )
    op.execute("DELETE FROM receiver_state WHERE key = 'stats.aggregates'")


def downgrade() -> None:
    op.drop_table('alert_stats_sketch')
