"""Small dialect-aware SQL helpers, written once: insert-or-ignore, chunking under parameter limits."""

from __future__ import annotations

import datetime as _dt
import functools
import operator
import json as _json
from typing import Iterator, Sequence, TypeVar


from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

T = TypeVar("T")
_UTC = _dt.timezone.utc
_json_dumps = _json.dumps

# SQLite allows at most 32,766 bound parameters a statement; keep well below for wide rows.
MAX_PARAMS = 30000


def _encode_json(v):
    # A str is JSON already encoded (e.g. by the worker that prepared the snapshot, outside the write lock): stored
    # as is. Every JSON column written here holds an object, so a str is never a JSON string value.
    if v is None or type(v) is str:
        return v
    return _json_dumps(v)


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


# --- bulk inserts ------------------------------------------------------------------------------------------
#
# The generic path (SQLAlchemy's insertmanyvalues with RETURNING, a bind processor per value) cost more than the
# database work itself: about 100 µs of Python per alert. So rows are converted once to the driver's types and
# sent as one multi-row INSERT … RETURNING per chunk, straight to the driver (sqlite3 or psycopg 3).



def _sqlite_converter(column):
    from sqlalchemy import JSON, Boolean

    from .types import UTCDateTime

    kind = column.type
    if isinstance(kind, UTCDateTime):
        return sqlite_datetime
    if isinstance(kind, JSON):
        return _encode_json
    if isinstance(kind, Boolean):
        return lambda v: None if v is None else int(bool(v))
    return None


@functools.lru_cache(maxsize=64)
def _row_plan(dialect: str, table: Table, columns: tuple[str, ...]):
    """How to turn a row dict into driver values: an itemgetter, and the converters of the columns needing one."""
    converters = [_sqlite_converter(table.c[name]) for name in columns]
    return operator.itemgetter(*columns), [(i, conv) for i, conv in enumerate(converters) if conv]


def sqlite_datetime(value, _cache={}):
    """A datetime as SQLite stores it (SQLAlchemy's format, UTC). A str is taken as already converted (rows prepared
    for the SQLite writer by the worker that parsed them)."""
    # Most datetimes of one ingest are the same `now`: format each distinct value once (strftime is slow).
    if value is None or type(value) is str:
        return value
    text = _cache.get(value)
    if text is None:
        if len(_cache) > 4096:
            _cache.clear()
        # isoformat, not strftime: glibc's %Y does not pad years before 1000 ("1-01-01"), which no reader parses.
        text = _cache[value] = value.astimezone(_UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return text


def bulk_insert(conn: Connection, table: Table, rows: Sequence[dict], *, ignore_conflicts: bool = False,
                returning: Sequence[str] = ()) -> list:
    """INSERT many rows (optionally ON CONFLICT DO NOTHING); returns `returning` columns of the rows inserted."""
    if not rows:
        return []
    dialect = conn.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"bulk_insert: unsupported dialect {dialect}")
    columns = tuple(rows[0])
    if dialect == "postgresql":
        return _postgresql_bulk_insert(conn, table, columns, rows, ignore_conflicts, returning)
    getter, converted = _row_plan(dialect, table, columns)
    params = []
    for row in rows:
        values = list(getter(row)) if len(columns) > 1 else [row[columns[0]]]
        for i, conv in converted:
            values[i] = conv(values[i])
        params.append(tuple(values))
    head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
    tail = (" ON CONFLICT DO NOTHING" if ignore_conflicts else "") + (
        f" RETURNING {', '.join(returning)}" if returning else "")
    one = "(" + ", ".join("?" * len(columns)) + ")"
    cursor = conn.connection.driver_connection.cursor()
    out = []
    try:
        # One multi-row VALUES statement per chunk, straight to the driver: no per-value bind processing, and
        # RETURNING gives exactly the rows this statement inserted.
        for part in chunks(params, rows_per_statement(len(columns))):
            cursor.execute(head + ", ".join([one] * len(part)) + tail, [v for row in part for v in row])
            if returning:
                out.extend(cursor.fetchall())
    finally:
        cursor.close()
    return [_Row(dict(zip(returning, row))) for row in out] if returning else []


def insert_returning_ids(conn: Connection, table: Table, rows: Sequence[dict]) -> list[int]:
    """INSERT rows and return their ids in the order of `rows`. SQLite: one driver-level execute per row, the id
    from lastrowid (unambiguous, and the statement is compiled once per connection by sqlite3's cache);
    PostgreSQL: one INSERT from arrays, as bulk_insert, in the arrays' order."""
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        # The rows are inserted in the arrays' order (ORDER BY the ordinality), each taking the next value of
        # the id sequence as it is inserted: ascending ids are the rows' order, whatever other sessions take
        # meanwhile (the method of SQLAlchemy's sort_by_parameter_order on PostgreSQL). SQLAlchemy's own
        # insertmanyvalues, used before, compiled and sent a new statement for every row count: a fifth of the
        # writer's CPU at one alert per webhook (py-spy).
        return sorted(row.id for row in _postgresql_bulk_insert(conn, table, tuple(rows[0]), rows, False, ("id",),
                                                                in_order=True))
    if conn.dialect.name != "sqlite":
        raise NotImplementedError(f"insert_returning_ids: unsupported dialect {conn.dialect.name}")
    columns = tuple(rows[0])
    getter, converted = _row_plan("sqlite", table, columns)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    cursor = conn.connection.driver_connection.cursor()
    ids = []
    try:
        for row in rows:
            values = list(getter(row)) if len(columns) > 1 else [row[columns[0]]]
            for i, conv in converted:
                values[i] = conv(values[i])
            cursor.execute(sql, values)
            ids.append(cursor.lastrowid)
    finally:
        cursor.close()
    return ids


def _pg_array_type(column) -> tuple[str, str]:
    """(array type of the parameter, cast of the unnested value) for a column."""
    from sqlalchemy import JSON, BigInteger, Boolean, Integer, LargeBinary

    from .types import UTCDateTime

    kind = column.type
    if isinstance(kind, UTCDateTime):
        return "timestamptz[]", ""
    if isinstance(kind, JSON):
        return "text[]", "::json"
    if isinstance(kind, Boolean):
        return "boolean[]", ""
    if isinstance(kind, (Integer, BigInteger)):
        return "bigint[]", ""
    if isinstance(kind, LargeBinary):
        return "bytea[]", ""
    return "text[]", ""


@functools.lru_cache(maxsize=64)
def _postgresql_statement(table: Table, columns: tuple[str, ...], ignore_conflicts: bool, returning: tuple[str, ...],
                          in_order: bool = False):
    types = [_pg_array_type(table.c[name]) for name in columns]
    names = [f"c{i}" for i in range(len(columns))]
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
           f"SELECT {', '.join(n + cast for n, (_, cast) in zip(names, types))} "
           f"FROM unnest({', '.join('%b::' + array for array, _ in types)})"
           + (f" WITH ORDINALITY AS t({', '.join(names)}, n) ORDER BY n" if in_order
              else f" AS t({', '.join(names)})")
           + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
           + (f" RETURNING {', '.join(returning)}" if returning else ""))
    json_columns = [i for i, (_, cast) in enumerate(types) if cast == "::json"]
    return sql, json_columns


def _postgresql_bulk_insert(conn, table, columns, rows, ignore_conflicts, returning, *, in_order: bool = False) -> list:
    """One INSERT … SELECT FROM unnest(one array per column): a short, constant statement that psycopg prepares
    once, whatever the number of rows (a multi-row VALUES made psycopg re-parse a huge query every time).
    `in_order`: inserted in the rows' order."""
    sql, json_columns = _postgresql_statement(table, columns, ignore_conflicts, tuple(returning), in_order)
    # One array per column: the rows transposed in C (zip over itemgetter), a third faster than nested loops.
    arrays = ([list(column) for column in zip(*map(operator.itemgetter(*columns), rows))] if len(columns) > 1
              else [[row[columns[0]] for row in rows]])
    for i in json_columns:
        arrays[i] = [_encode_json(v) for v in arrays[i]]
    cursor = conn.connection.driver_connection.cursor()
    try:
        # Prepared once per connection (unless database.prepared_statements is off): parsing and planning an
        # INSERT of 30 arrays into a table of twelve indexes is paid once, not per batch (about a tenth of
        # PostgreSQL's CPU per 1-alert webhook in bench/ingest.py's noisy A/B pairs). Its plan (a scan of the
        # arrays, then the insert) is the same at any table size.
        cursor.execute(sql, arrays, prepare=True)
        out = cursor.fetchall() if returning else []
    finally:
        cursor.close()
    return [_Row(dict(zip(returning, row))) for row in out]


class _Row(dict):
    __getattr__ = dict.__getitem__


# --- bulk updates ------------------------------------------------------------------------------------------


def update_from_rows(conn: Connection, table: Table, rows: Sequence[dict], *, assignments: str, where: str = "",
                     where_params: Sequence = (), array_types: dict[str, str] | None = None,
                     returning: str | None = None) -> list:
    """UPDATE `table` from a set of value rows joined on `table.id = v.id`, one statement per chunk, straight to
    the driver. `assignments` and `where` are SQL over `table` and `v` (the rows' keys are v's columns, `id`
    first); `where_params` fill `where`'s placeholders (`?` on SQLite, `%s` on PostgreSQL). Building the same
    thing as SQLAlchemy CASE expressions cost about 0.2 ms of Python per row."""
    if not rows:
        return []
    columns = tuple(rows[0])
    if columns[0] != "id":
        raise ValueError("update_from_rows: the first value column must be id")
    t = table.name
    tail = (f" AND {where}" if where else "") + (f" RETURNING {t}.{returning}" if returning else "")
    cursor = conn.connection.driver_connection.cursor()
    out: list = []
    try:
        if conn.dialect.name == "postgresql":
            types = {name: (array_types or {}).get(name) or _pg_array_type(table.c[name])[0] for name in columns}
            sql = (f"UPDATE {t} SET {assignments} FROM unnest({', '.join('%b::' + types[c] for c in columns)}) "
                   f"AS v({', '.join(columns)}) WHERE {t}.id = v.id{tail}")
            arrays = [[row[name] for row in rows] for name in columns]
            cursor.execute(sql, [*arrays, *where_params])
            if returning:
                out.extend(r[0] for r in cursor.fetchall())
            return out
        one = "(" + ", ".join("?" * len(columns)) + ")"
        for part in chunks(list(rows), rows_per_statement(len(columns))):
            values = [sqlite_datetime(v) if isinstance(v, _dt.datetime) else v for row in part for v in row.values()]
            sql = (f"WITH v({', '.join(columns)}) AS (VALUES {', '.join([one] * len(part))}) "
                   f"UPDATE {t} SET {assignments} FROM v WHERE {t}.id = v.id{tail}")
            cursor.execute(sql, [*values, *where_params])
            if returning:
                out.extend(r[0] for r in cursor.fetchall())
    finally:
        cursor.close()
    return out
