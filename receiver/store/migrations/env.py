"""Alembic environment: runs on the connection handed over by receiver.store.migrate (no alembic.ini needed)."""

from alembic import context

from receiver.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `alert-receiver migrate` (receiver.store.migrate)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite can only ALTER by copying tables: batch mode does that for every later migration.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported; run `alert-receiver migrate` against the database")
run_migrations_online()
