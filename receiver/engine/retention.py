"""Retention: delete resolved history older than a cutoff, in short batches, each folded into the daily rollups
first (statistics/write_rollups.py) in the same write transaction. Used by the engine (automatic, `retention.days`,
about once an hour), by `DELETE /api/v1/history` and by `alert-receiver purge`.

Batches are small (BATCH ids) so that a transaction never holds SQLite's writer lock for long: webhooks queue behind
it, and Alertmanager retries a webhook that takes more than about 10 s. Between batches the lock is released.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from typing import Any, Callable

from sqlalchemy.engine import Connection, Engine

from ..config import Config
from ..statistics import write_rollups as rollups
from ..store import chat_threads, maintenance, replay_guards, schedule_overrides
from ..store import expiry as store
from ..store.db import is_sqlite, read_transaction
from ..store.write_port import Writes
from ..store.queries import iso

log = logging.getLogger("receiver.retention")

UTC = dt.timezone.utc
# Occurrences per write transaction (bench/export.py, 1,000,000 alerts): on SQLite 500 hold the one writer lock for
# about 0.1 s (p99 0.2 s); PostgreSQL locks only the rows deleted, and 2,000 a batch purge fastest there.
BATCH = {"sqlite": 500, "postgresql": 2000}
# Between two batches on SQLite the lock is left free this long: flock does not queue fairly, and a purge that
# re-took the lock at once could keep webhooks waiting for many batches (measured: up to 4 s).
SQLITE_PAUSE = 0.02
MIN_AGE = dt.timedelta(days=1)


@dataclasses.dataclass
class RetentionResult:
    cutoff: dt.datetime
    counts: store.BatchCounts = dataclasses.field(default_factory=store.BatchCounts)
    batches: int = 0
    complete: bool = True  # False: stopped by the time budget (or asked to stop) with eligible rows left
    seconds: float = 0.0
    longest_batch_seconds: float = 0.0
    last_batch_seconds: float = 0.0  # the last write transaction, for progress reports

    def as_dict(self) -> dict[str, Any]:
        return {"cutoff": iso(self.cutoff), "deleted": {
                    "alerts": self.counts.alerts, "events": self.counts.events,
                    "notification_items": self.counts.notification_items,
                    "notifications": self.counts.notifications, "correlations": self.counts.correlations},
                "rollup_rows": self.counts.rollup_rows, "batches": self.batches, "complete": self.complete,
                "seconds": round(self.seconds, 3), "longest_batch_seconds": round(self.longest_batch_seconds, 3)}


def cutoff_for(now: dt.datetime, older_than: dt.timedelta) -> dt.datetime:
    """now − older_than, rounded down to a UTC midnight: rollups then hold whole days."""
    if older_than < MIN_AGE:
        raise ValueError(f"older_than must be at least {MIN_AGE.days} day")
    t = (now - older_than).astimezone(UTC)
    return dt.datetime(t.year, t.month, t.day, tzinfo=UTC)


def purge(writes: Writes, cutoff: dt.datetime, *, batch_size: int | None = None, budget: float | None = None,
          should_stop: Callable[[], bool] | None = None, pause: float | None = None,
          progress: Callable[[RetentionResult], None] | None = None) -> RetentionResult:
    """Fold and delete eligible occurrences before `cutoff` until none is left, `budget` seconds have passed, or
    `should_stop()` says so; then remove finished messages that lost all their items."""
    result = RetentionResult(cutoff=cutoff)
    started = time.monotonic()
    db = writes.db
    batch_size = batch_size or BATCH.get(db.dialect.name, 500)
    if pause is None:
        pause = SQLITE_PAUSE if is_sqlite(db) else 0.0
    while True:
        if (should_stop and should_stop()) or (budget is not None and time.monotonic() - started >= budget):
            result.complete = False
            break
        t = time.monotonic()
        with writes.transaction() as conn:
            counts = purge_batch(conn, cutoff, batch_size)
        result.last_batch_seconds = time.monotonic() - t
        result.longest_batch_seconds = max(result.longest_batch_seconds, result.last_batch_seconds)
        if counts.alerts == 0:
            break
        result.counts.add(counts)
        result.batches += 1
        if progress:
            progress(result)
        if pause:
            time.sleep(pause)  # queued writers (webhooks) go first
    if result.complete:
        while True:
            with writes.transaction() as conn:
                swept = store.sweep_messages(conn, cutoff, batch_size)
            result.counts.notifications += swept
            if swept < batch_size:
                break
    result.seconds = time.monotonic() - started
    return result


def purge_batch(conn: Connection, cutoff: dt.datetime, limit: int) -> store.BatchCounts:
    """One batch: claim, fold into the rollups, delete — all in the caller's transaction, so that what is folded
    is exactly what is deleted (a concurrent or repeated run cannot count an occurrence twice)."""
    ids = store.claim(conn, cutoff, limit)
    if not ids:
        return store.BatchCounts()
    rows_touched = rollups.fold(conn, rollups.aggregate(rollups.records(conn, ids)))
    out = store.delete(conn, ids)
    if out.alerts != len(ids):  # cannot happen: the rows are ours (locked, or under SQLite's writer lock)
        raise RuntimeError(f"retention claimed {len(ids)} occurrences but deleted {out.alerts}")
    out.rollup_rows = rows_touched
    return out


def count(db: Engine, cutoff: dt.datetime) -> int:
    """How many occurrences a purge at this cutoff would delete now."""
    with read_transaction(db) as conn:
        return store.count_eligible(conn, cutoff)


def purge_replay_guards(writes: Writes, now: dt.datetime) -> replay_guards.Purged:
    """Revoked sessions whose cookie has expired, PagerDuty event ids past their week: small, so one transaction."""
    with writes.transaction() as conn:
        purged = replay_guards.purge(conn, now)
    if purged.session_revocations or purged.pagerduty_events:
        log.info("retention deleted expired replay guards", extra=dataclasses.asdict(purged))
    return purged


def run_retention(writes: Writes, config: Config, now: dt.datetime, *, budget: float | None = 300.0,
                  should_stop: Callable[[], bool] | None = None) -> RetentionResult:
    """Automatic retention: history older than `retention.days` (whole UTC days) goes, rolled up first; expired
    replay guards (revoked sessions, PagerDuty event ids), schedule overrides and maintenance windows that ended and
    chat threads that closed before the cutoff go too.

    Call about once an hour; when the result is not `complete` (a first run on a large history stops after
    `budget` seconds), call again soon. Safe in several engines at once."""
    purge_replay_guards(writes, now)
    cutoff = cutoff_for(now, dt.timedelta(days=config.retention.days))
    with writes.transaction() as conn:  # overrides that ended as long ago as the history retention keeps
        schedule_overrides.purge_ended(conn, cutoff)
        maintenance.purge_ended(conn, cutoff)  # and maintenance windows
        chat_threads.purge(conn, cutoff)  # and chat threads closed before it
    result = purge(writes, cutoff, budget=budget, should_stop=should_stop)
    if result.counts.alerts or result.counts.notifications:
        log.info("retention deleted old history", extra={"cutoff": iso(cutoff), "alerts": result.counts.alerts,
                                                         "events": result.counts.events,
                                                         "notifications": result.counts.notifications,
                                                         "rollup_rows": result.counts.rollup_rows,
                                                         "complete": result.complete,
                                                         "seconds": round(result.seconds, 3)})
    return result
