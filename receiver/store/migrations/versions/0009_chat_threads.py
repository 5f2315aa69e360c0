"""chat threads: the root message a threading chat channel posted for each notification group (issue #18)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 18:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import receiver.store.types


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_when = receiver.store.types.UTCDateTime(timezone=True)
_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('chat_threads',
    sa.Column('id', _id, autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=200), nullable=False),
    sa.Column('group_id', sa.String(length=16), nullable=False),
    sa.Column('conversation', sa.String(length=200), nullable=False),
    sa.Column('root_id', sa.String(length=200), nullable=False),
    sa.Column('created_at', _when, nullable=False),
    sa.Column('closed_at', _when, nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_threads'))
    )
    op.create_index('ix_chat_threads_channel_group_id', 'chat_threads', ['channel', 'group_id'], unique=False)
    op.create_index('ix_chat_threads_closed_at', 'chat_threads', ['closed_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_chat_threads_closed_at', table_name='chat_threads')
    op.drop_index('ix_chat_threads_channel_group_id', table_name='chat_threads')
    op.drop_table('chat_threads')
