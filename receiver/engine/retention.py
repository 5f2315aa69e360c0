"""Retention: delete resolved history older than a cutoff, in short batches, each folded into the daily rollups
first (store/rollups.py) in the same write transaction. Used by the engine (automatic, `retention.days`, about once
an hour), by `DELETE /api/v1/history` and by `alert-receiver purge`.

Batches are small (BATCH ids) so that a transaction never holds SQLite's writer lock for long: webhooks queue behind
it, and Alertmanager retries a webhook that takes more than about 10 s. Between batches the lock is released.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from typing import Any, Callable

from sqlalchemy.engine import Engine

from ..config import Config
from ..store import replay_guards
from ..store import retention as store
from ..store.db import is_sqlite, read_transaction, write_transaction
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


def purge(db: Engine, cutoff: dt.datetime, *, batch_size: int | None = None, budget: float | None = None,
          should_stop: Callable[[], bool] | None = None, pause: float | None = None,
          progress: Callable[[RetentionResult], None] | None = None) -> RetentionResult:
    """Fold and delete eligible occurrences before `cutoff` until none is left, `budget` seconds have passed, or
    `should_stop()` says so; then remove finished messages that lost all their items."""
    result = RetentionResult(cutoff=cutoff)
    started = time.monotonic()
    batch_size = batch_size or BATCH.get(db.dialect.name, 500)
    if pause is None:
        pause = SQLITE_PAUSE if is_sqlite(db) else 0.0
    while True:
        if (should_stop and should_stop()) or (budget is not None and time.monotonic() - started >= budget):
            result.complete = False
            break
        t = time.monotonic()
        with write_transaction(db) as conn:
            counts = store.purge_batch(conn, cutoff, batch_size)
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
            with write_transaction(db) as conn:
                swept = store.sweep_messages(conn, cutoff, batch_size)
            result.counts.notifications += swept
            if swept < batch_size:
                break
    result.seconds = time.monotonic() - started
    return result


def count(db: Engine, cutoff: dt.datetime) -> int:
    """How many occurrences a purge at this cutoff would delete now."""
    with read_transaction(db) as conn:
        return store.count_eligible(conn, cutoff)


def purge_replay_guards(db: Engine, now: dt.datetime) -> replay_guards.Purged:
    """Revoked sessions whose cookie has expired, PagerDuty event ids past their week: small, so one transaction."""
    with write_transaction(db) as conn:
        purged = replay_guards.purge(conn, now)
    if purged.session_revocations or purged.pagerduty_events:
        log.info("retention deleted expired replay guards", extra=dataclasses.asdict(purged))
    return purged


def run_retention(db: Engine, config: Config, now: dt.datetime, *, budget: float | None = 300.0,
                  should_stop: Callable[[], bool] | None = None) -> RetentionResult:
    """Automatic retention: history older than `retention.days` (whole UTC days) goes, rolled up first; expired
    replay guards (revoked sessions, PagerDuty event ids) go too.

    Call about once an hour; when the result is not `complete` (a first run on a large history stops after
    `budget` seconds), call again soon. Safe in several engines at once."""
    purge_replay_guards(db, now)
    cutoff = cutoff_for(now, dt.timedelta(days=config.retention.days))
    result = purge(db, cutoff, budget=budget, should_stop=should_stop)
    if result.counts.alerts or result.counts.notifications:
        log.info("retention deleted old history", extra={"cutoff": iso(cutoff), "alerts": result.counts.alerts,
                                                         "events": result.counts.events,
                                                         "notifications": result.counts.notifications,
                                                         "rollup_rows": result.counts.rollup_rows,
                                                         "complete": result.complete,
                                                         "seconds": round(result.seconds, 3)})
    return result
