"""A webhook's write as a job for the write port (store/write_port.py): `IngestSnapshot`, and the compact form in
which it travels to the writer process."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, ClassVar, NamedTuple, Sequence

from sqlalchemy.engine import Connection

from ..domain import AlertStatus
from ..store.sql import sqlite_datetime
from .ingest import IngestResult, PreparedSnapshot, apply_snapshot, apply_snapshots


@dataclasses.dataclass(frozen=True, slots=True)
class IngestSnapshot:
    """Write one webhook: its snapshot, prepared outside any lock, and its raw body when the config keeps bodies.
    Many of them write together with the statements of about one (`run_many`)."""

    prepared: PreparedSnapshot
    raw_body: bytes | None = None
    size_bytes: int = 0  # of the body received: a writer in another process takes only small ones
    batched: ClassVar[bool] = True

    @classmethod
    def of(cls, prepared: PreparedSnapshot, body: bytes) -> "IngestSnapshot":
        return cls(prepared, body if prepared.keep_raw_body else None, len(body))

    @property
    def weight(self) -> int:
        return len(self.prepared.alerts) + 1

    def run(self, conn: Connection) -> IngestResult:
        return apply_snapshot(conn, self.prepared, raw_body=self.raw_body)

    @classmethod
    def run_many(cls, conn: Connection, jobs: Sequence["IngestSnapshot"]) -> list[IngestResult]:
        return apply_snapshots(conn, [(job.prepared, job.raw_body) for job in jobs])

    def for_writer(self, *, sqlite: bool = True) -> "IngestSnapshot":
        """The job with as much of the writer's work done here, in the worker, as can be: alerts without their
        labels and, for SQLite, the rows' datetimes already in its text format (psycopg takes datetimes)."""
        return dataclasses.replace(self, prepared=_wire_form(self.prepared, sqlite=sqlite))


class WireAlert(NamedTuple):
    """What the writer needs of an alert (snapshot.decide and the events): no labels (they travel encoded, in the
    prepared row). A tuple unpickles several times faster than the dataclass, and unpickling is the writer's."""

    fingerprint: str
    status: AlertStatus
    annotations: dict[str, str]
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    generator_url: str


_ROW_DATETIMES = ("starts_at", "ends_at", "level_entered_at", "next_action_at", "acked_at", "ack_expires_at",
                  "resolved_at", "received_at", "updated_at")


def _wire_form(prepared: PreparedSnapshot, *, sqlite: bool) -> PreparedSnapshot:
    wire = {id(a): WireAlert(a.fingerprint, a.status, a.annotations, a.starts_at, a.ends_at, a.generator_url)
            for a in prepared.payload.alerts}
    payload = dataclasses.replace(prepared.payload, alerts=[wire[id(a)] for a in prepared.payload.alerts],
                                  group_labels={})
    rows: dict[str, dict[str, Any]] = prepared.rows
    if sqlite:
        rows = {}
        for fp, row in prepared.rows.items():
            row = dict(row)
            for name in _ROW_DATETIMES:
                row[name] = sqlite_datetime(row[name])
            rows[fp] = row
    return dataclasses.replace(prepared, payload=payload, alerts=[wire[id(a)] for a in prepared.alerts], rows=rows)
