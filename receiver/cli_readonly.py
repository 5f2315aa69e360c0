"""The configured database opened read only, for commands that answer questions (`oncall`, `routes test`) and must
never create, migrate or write it."""

from __future__ import annotations

import os
from typing import Callable

from sqlalchemy.engine import Engine


def read_only_engine(config, note: Callable[[str], None]) -> Engine | None:
    """An engine that cannot change the database; None (after `note(why)`) when there is no database to read."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from .store.db import create_db_engine, normalise_url

    url = normalise_url(config.database.url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # PostgreSQL: the caller's transaction says READ ONLY (read_only_transaction).
        return create_db_engine(url, lock_timeout=config.database.lock_timeout, pool_size=1,
                                prepared_statements=config.database.prepared_statements)
    path = parsed.database or ""
    if path in ("", ":memory:"):
        note("an in-memory database holds nothing yet")
        return None
    if not path.startswith("file:"):  # a file: URI is opened as written
        if not os.path.exists(path):
            note(f"no database at {path} yet")
            return None
        from urllib.parse import quote

        url = f"sqlite:///file:{quote(os.path.abspath(path))}?mode=ro&uri=true"
    # SQLite's own engine, not the receiver's (create_db_engine): that one sets WAL mode, a write.
    return sa.create_engine(url, connect_args={"timeout": max(config.database.lock_timeout.total_seconds(), 0.001)})


def read_table(config, table: str, read, *, note: Callable[[str], None], on_error: Callable[[str], object]):
    """`read(conn)` in a read-only transaction of the configured database; [] (after a note) when there is no
    database or it was never migrated (no `table`); `on_error(reason)` when it exists but cannot be read."""
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    from .logs import redact
    from .store.db import read_transaction

    db = read_only_engine(config, note)
    if db is None:
        return []
    try:
        with read_transaction(db) as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            if not sa.inspect(conn).has_table(table):
                note(f"the database {redact(config.database.url)} has no {table} table (not migrated: "
                     "`alert-receiver migrate`)")
                return []
            return read(conn)
    except SQLAlchemyError as exc:
        return on_error(redact(str(getattr(exc, "orig", None) or exc)).splitlines()[0])
    finally:
        db.dispose()
