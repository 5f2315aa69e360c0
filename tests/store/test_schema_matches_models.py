"""The migrated database (SQLite and PostgreSQL) is exactly what receiver/store/models.py declares: every table,
column, type and index — so a model change without its migration fails here, not in a user's upgrade."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from receiver.store.models import Base


def _diffs(db) -> list:
    with db.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    return [d for group in diffs for d in (group if isinstance(group, list) else [group])]


def test_the_migrations_build_the_declared_schema(db):
    assert _diffs(db) == []


def test_the_oncall_tables_and_columns_exist(db):
    import sqlalchemy as sa

    with db.connect() as conn:
        inspector = sa.inspect(conn)
        assert {"schedule_overrides", "maintenance_windows"} <= set(inspector.get_table_names())
        alert_columns = {c["name"] for c in inspector.get_columns("alerts")}
        notification_columns = {c["name"] for c in inspector.get_columns("notifications")}
    assert {"muted_until", "sla_ack_breached_at", "sla_resolve_breached_at"} <= alert_columns
    assert {"target", "person", "person_source"} <= notification_columns
