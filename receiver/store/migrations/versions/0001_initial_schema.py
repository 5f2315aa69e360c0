"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 09:41:12.807921
"""

from alembic import op
import sqlalchemy as sa
import receiver.store.types


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('fingerprint', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('starts_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('alertname', sa.String(length=200), nullable=False),
    sa.Column('severity', sa.String(length=200), nullable=False),
    sa.Column('service', sa.String(length=200), nullable=False),
    sa.Column('instance', sa.String(length=200), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('annotations', sa.JSON(), nullable=False),
    sa.Column('generator_url', sa.Text(), nullable=False),
    sa.Column('group_key', sa.Text(), nullable=False),
    sa.Column('group_id', sa.String(length=16), nullable=False),
    sa.Column('receiver', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('external_url', sa.Text(), nullable=False),
    sa.Column('level', sa.String(length=2), nullable=False),
    sa.Column('route', sa.String(length=200), nullable=False),
    sa.Column('escalate', sa.Boolean(), nullable=False),
    sa.Column('level_entered_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_action_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('escalation_count', sa.Integer(), nullable=False),
    sa.Column('repeat_count', sa.Integer(), nullable=False),
    sa.Column('acked_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acked_by', sa.String(length=200), nullable=True),
    sa.Column('ack_expires_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=200), nullable=True),
    sa.Column('received_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('fingerprint', 'starts_at', name=op.f('uq_alerts_fingerprint_starts_at'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_alertname_starts_at', ['alertname', 'starts_at'], unique=False)
        batch_op.create_index('ix_alerts_fingerprint_ends_at', ['fingerprint', 'ends_at'], unique=False)
        batch_op.create_index('ix_alerts_group_id', ['group_id'], unique=False)
        batch_op.create_index('ix_alerts_next_action_at', ['next_action_at'], unique=False, sqlite_where=sa.text('next_action_at IS NOT NULL'), postgresql_where=sa.text('next_action_at IS NOT NULL'))
        batch_op.create_index('ix_alerts_service_starts_at', ['service', 'starts_at'], unique=False)
        batch_op.create_index('ix_alerts_severity_starts_at', ['severity', 'starts_at'], unique=False)
        batch_op.create_index('ix_alerts_starts_at', ['starts_at'], unique=False)
        batch_op.create_index('ix_alerts_status_level', ['status', 'level'], unique=False)
        batch_op.create_index('uq_alerts_open_fingerprint', ['fingerprint'], unique=True, sqlite_where=sa.text("status = 'firing'"), postgresql_where=sa.text("status = 'firing'"))

    op.create_table('notifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('level', sa.String(length=2), nullable=False),
    sa.Column('group_key', sa.Text(), nullable=False),
    sa.Column('group_id', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=200), nullable=True),
    sa.Column('claimed_until', receiver.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_channel_created_at', ['channel', 'created_at'], unique=False)
        batch_op.create_index('ix_notifications_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_notifications_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    op.create_table('rejected_webhooks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('received_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('content_type', sa.String(length=200), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('body_truncated', sa.Boolean(), nullable=False),
    sa.Column('replayed_at', receiver.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('replay_status', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rejected_webhooks'))
    )
    with op.batch_alter_table('rejected_webhooks', schema=None) as batch_op:
        batch_op.create_index('ix_rejected_webhooks_received_at', ['received_at'], unique=False)

    op.create_table('webhook_bodies',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('received_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('alert_count', sa.Integer(), nullable=False),
    sa.Column('truncated_alerts', sa.Integer(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_bodies')),
    sa.UniqueConstraint('sha256', name=op.f('uq_webhook_bodies_sha256'))
    )
    with op.batch_alter_table('webhook_bodies', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_bodies_received_at', ['received_at'], unique=False)

    op.create_table('alert_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('from_level', sa.String(length=2), nullable=True),
    sa.Column('to_level', sa.String(length=2), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alert_events_alert_id_alerts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_events'))
    )
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.create_index('ix_alert_events_alert_id_at', ['alert_id', 'at'], unique=False)
        batch_op.create_index('ix_alert_events_kind_at', ['kind', 'at'], unique=False)

    op.create_table('correlations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('related_alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('score', sa.Double(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('created_at', receiver.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_correlations_alert_id_alerts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['related_alert_id'], ['alerts.id'], name=op.f('fk_correlations_related_alert_id_alerts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_correlations')),
    sa.UniqueConstraint('alert_id', 'related_alert_id', 'type', name=op.f('uq_correlations_alert_id_related_alert_id_type'))
    )
    with op.batch_alter_table('correlations', schema=None) as batch_op:
        batch_op.create_index('ix_correlations_related_alert_id', ['related_alert_id'], unique=False)

    op.create_table('notification_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('notification_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('level', sa.String(length=2), nullable=False),
    sa.Column('repeat_no', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_notification_items_alert_id_alerts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_notification_items_notification_id_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_items')),
    sa.UniqueConstraint('alert_id', 'channel', 'kind', 'level', 'repeat_no', name=op.f('uq_notification_items_alert_id_channel_kind_level_repeat_no'))
    )
    with op.batch_alter_table('notification_items', schema=None) as batch_op:
        batch_op.create_index('ix_notification_items_notification_id', ['notification_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('notification_items', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_items_notification_id')

    op.drop_table('notification_items')
    with op.batch_alter_table('correlations', schema=None) as batch_op:
        batch_op.drop_index('ix_correlations_related_alert_id')

    op.drop_table('correlations')
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_events_kind_at')
        batch_op.drop_index('ix_alert_events_alert_id_at')

    op.drop_table('alert_events')
    with op.batch_alter_table('webhook_bodies', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_bodies_received_at')

    op.drop_table('webhook_bodies')
    with op.batch_alter_table('rejected_webhooks', schema=None) as batch_op:
        batch_op.drop_index('ix_rejected_webhooks_received_at')

    op.drop_table('rejected_webhooks')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_status_next_attempt_at')
        batch_op.drop_index('ix_notifications_created_at')
        batch_op.drop_index('ix_notifications_channel_created_at')

    op.drop_table('notifications')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_alerts_open_fingerprint', sqlite_where=sa.text("status = 'firing'"), postgresql_where=sa.text("status = 'firing'"))
        batch_op.drop_index('ix_alerts_status_level')
        batch_op.drop_index('ix_alerts_starts_at')
        batch_op.drop_index('ix_alerts_severity_starts_at')
        batch_op.drop_index('ix_alerts_service_starts_at')
        batch_op.drop_index('ix_alerts_next_action_at', sqlite_where=sa.text('next_action_at IS NOT NULL'), postgresql_where=sa.text('next_action_at IS NOT NULL'))
        batch_op.drop_index('ix_alerts_group_id')
        batch_op.drop_index('ix_alerts_fingerprint_ends_at')
        batch_op.drop_index('ix_alerts_alertname_starts_at')

    op.drop_table('alerts')
