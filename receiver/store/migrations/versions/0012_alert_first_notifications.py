"""alert_first_notifications: the first notification's time leaves the alerts row (issue #20)

Setting alerts.first_notified_at rewrote each occurrence's whole row and, on PostgreSQL, all its index entries,
seconds after its insert. The time moves, with every value already set, to a narrow table written once.

The column stays (expand now, contract later): replicas of the previous version, still running during a rolling
upgrade after `alert-receiver migrate`, keep setting it, and a drop would fail their delivery transactions (and
have them send again). Readers fall back to it (store/first_notified.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 23:30:00.000000
"""

from alembic import op
import sqlalchemy as sa
import receiver.store.types


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_TIME = receiver.store.types.UTCDateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('alert_first_notifications',
    sa.Column('alert_id', _ID, autoincrement=False, nullable=False),
    sa.Column('notified_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alert_first_notifications_alert_id_alerts'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('alert_id', name=op.f('pk_alert_first_notifications')),
    )
    op.execute("INSERT INTO alert_first_notifications (alert_id, notified_at) "
               "SELECT id, first_notified_at FROM alerts WHERE first_notified_at IS NOT NULL")


def downgrade() -> None:
    # Back into the column what only the table has (the sends since the upgrade).
    op.execute("UPDATE alerts SET first_notified_at = (SELECT f.notified_at FROM alert_first_notifications f "
               "WHERE f.alert_id = alerts.id) WHERE first_notified_at IS NULL")
    op.drop_table('alert_first_notifications')
