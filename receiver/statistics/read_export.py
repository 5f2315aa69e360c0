"""Export of a filtered history as CSV, JSON or NDJSON, streamed with constant memory.

One query (the history filters of GET /api/v1/alerts, ordered by id) read through a server-side cursor on
PostgreSQL and SQLite's lazy cursor, BATCH rows at a time, each batch joined into one text chunk. One statement
means one snapshot: every matching row exactly once, even while retention deletes or ingest adds rows.

The database encodes the rows itself (CSV cells as text with times formatted, or one JSON object a row with
json_object / json_build_object): Python only joins them, about ten times faster than converting values row by
row (bench/export.py), which matters because a request thread busy with Python holds the GIL its worker's webhooks need.

CSV cells that a spreadsheet would run as a formula (starting with = + - @, tab or carriage return) get a leading
apostrophe. Labels and annotations are JSON text in CSV, objects in JSON. JSON is one array of objects (a valid
document: a truncated download does not parse); NDJSON one object a line.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ..store.db import QueryTimeout, StatementBudget, is_query_timeout
from ..store.models import Alert
from ..store.queries import AlertFilter, where_clauses
from ..text_safety import FORMULA_START, neutralise  # noqa: F401  (neutralise: re-exported, the reference)
from . import read_export_columns as analysis

_alerts = Alert.__table__

COLUMNS = ("id", "fingerprint", "alertname", "severity", "service", "instance", "status", "level", "starts_at",
           "ends_at", "acked_at", "acked_by", "resolved_at", "escalation_count", "labels", "annotations", "group_key",
           "receiver", "source", *analysis.ANALYSIS)  # the columns for analysis: read_export_columns.py
_TIMES = {"starts_at", "ends_at", "acked_at", "resolved_at", *analysis.TIMES}
_JSON = {"labels", "annotations"}
_NUMBERS = {"id", "escalation_count"}
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json", "ndjson": "application/x-ndjson"}
BATCH = 2000


# --- the rows, encoded in SQL ------------------------------------------------------------------------------


def _iso(dialect: str, column):
    """A timestamp as the API writes it (queries.iso): UTC, `T`, microseconds only when not zero, `Z`."""
    if dialect == "postgresql":
        utc = sa.func.timezone("UTC", column)
        return sa.case((sa.extract("microseconds", column) % 1000000 == 0,
                        sa.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
                       else_=sa.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
    # SQLite holds naive UTC text, "YYYY-MM-DD HH:MM:SS.ffffff" (types.UTCDateTime).
    text = sa.type_coerce(column, sa.String)
    date, clock = sa.func.substr(text, 1, 10), sa.func.substr(text, 12, 8)
    return sa.case((sa.func.substr(text, 20).in_(["", ".000000"]), date + "T" + clock + "Z"),
                   else_=date + "T" + sa.func.substr(text, 12) + "Z")


def _neutralised(column):
    """text_safety.neutralise, in SQL."""
    return sa.case((sa.func.substr(column, 1, 1).in_(list(FORMULA_START)), sa.literal("'") + column),
                   else_=column)


def _csv_cell(dialect: str, name: str):
    c = _alerts.c
    if name in _TIMES:
        return _iso(dialect, analysis.time_column(name))
    if name in _JSON:
        return sa.cast(c[name], sa.Text)  # a JSON object starts with {: never a formula
    if name in _NUMBERS:
        return c[name]
    return analysis.column(dialect, name, _neutralised)


def _json_value(dialect: str, name: str):
    c = _alerts.c
    if name in _TIMES:
        return _iso(dialect, analysis.time_column(name))
    if name in _JSON and dialect != "postgresql":
        return sa.func.json(c[name])  # nested as an object, not as a string
    return analysis.column(dialect, name)


def query(dialect: str, f: AlertFilter, fmt: str) -> sa.Select:
    """CSV: one text cell a column. JSON and NDJSON: one JSON object a row, keys in COLUMNS order."""
    if fmt == "csv":
        cols = [_csv_cell(dialect, k).label(k) for k in COLUMNS]
    else:
        pairs: list[Any] = []
        for k in COLUMNS:
            pairs += [sa.literal(k), _json_value(dialect, k)]
        build = sa.func.json_build_object if dialect == "postgresql" else sa.func.json_object
        cols = [sa.cast(build(*pairs), sa.Text).label("doc")]
    return sa.select(*cols).where(*where_clauses(f)).order_by(_alerts.c.id)


# --- the text ----------------------------------------------------------------------------------------------


def csv_chunks(batches: Iterable[Sequence[Sequence[Any]]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    yield buf.getvalue()
    for rows in batches:
        buf.seek(0)
        buf.truncate()
        writer.writerows(rows)  # None becomes an empty cell
        yield buf.getvalue()


def json_chunks(batches: Iterable[Sequence[Sequence[Any]]]) -> Iterator[str]:
    yield "["
    first = True
    for rows in batches:
        if not rows:
            continue
        yield ("\n" if first else ",\n") + ",\n".join([row[0] for row in rows])
        first = False
    yield "\n]\n"


def ndjson_chunks(batches: Iterable[Sequence[Sequence[Any]]]) -> Iterator[str]:
    for rows in batches:
        if rows:
            yield "\n".join([row[0] for row in rows]) + "\n"


ENCODERS = {"csv": csv_chunks, "json": json_chunks, "ndjson": ndjson_chunks}


def batches(conn: Connection, f: AlertFilter, fmt: str, *, batch: int) -> Iterator[Sequence]:
    """The matching rows, `batch` at a time, through a server-side cursor where the dialect has one."""
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(query(conn.dialect.name, f, fmt))
    yield from result.partitions(batch)


class Export:
    """An open export: the query has run and its first batch is read (so a database error is raised here, before
    any byte is sent), the rest streams as text chunks on iteration, and the connection is released at the end or
    on close()."""

    def __init__(self, db: Engine, f: AlertFilter, fmt: str, *, batch: int | None = None,
                 budget: float | None = None):
        """`budget`: seconds the database may take for each batch (the first included), else QueryTimeout; the
        time a client takes to read the stream does not count."""
        if fmt not in ENCODERS:
            raise ValueError(f"format must be one of {', '.join(ENCODERS)}")
        self._conn = db.connect()
        self._budget = StatementBudget(self._conn, budget) if budget is not None else None
        try:
            self._tx = self._conn.begin()
            if self._budget is not None:
                self._budget.begin()
            rows = batches(self._conn, f, fmt, batch=batch or BATCH)
            first = next(rows, None)
        except BaseException as exc:
            self.close()
            if isinstance(exc, DBAPIError) and budget is not None and is_query_timeout(exc):
                raise QueryTimeout(budget) from exc
            raise
        self.rows = 0
        self._chunks = ENCODERS[fmt](self._counted(first, rows))

    def _counted(self, first, rest) -> Iterator[Sequence]:
        part = first
        while part is not None:
            self.rows += len(part)
            yield part
            if self._budget is not None:
                self._budget.restart()
            part = next(rest, None)

    def __iter__(self) -> "Export":
        return self

    def __next__(self) -> str:
        try:
            return next(self._chunks)
        except BaseException:  # the end (StopIteration) or a failure: either way the connection goes back
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            if self._budget is not None:
                self._budget.close()
            try:
                self._tx.rollback()  # read only: nothing to commit; ends the snapshot and the cursor
            except Exception:
                pass  # the connection is being discarded anyway
            finally:
                conn.close()
