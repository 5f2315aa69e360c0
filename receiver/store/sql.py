"""Small dialect-aware SQL helpers, written once: insert-or-ignore, chunking under parameter limits."""

from __future__ import annotations

from typing import Iterator, Sequence, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

T = TypeVar("T")

# SQLite allows at most 32,766 bound parameters a statement; keep well below for wide rows.
MAX_PARAMS = 30000


def insert_ignore(conn: Connection, table: Table):
    """INSERT … ON CONFLICT DO NOTHING for the connection's dialect (any unique constraint or index)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"insert_ignore: unsupported dialect {conn.dialect.name}")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def rows_per_statement(columns: int) -> int:
    return max(1, min(1000, MAX_PARAMS // max(columns, 1)))
