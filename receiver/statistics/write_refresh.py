"""The statistics refresh: moves the aggregates' watermark (write_aggregates.py) up to `now − settle_delay`,
re-deriving only the hours that gained settled occurrences, in short write transactions. Run by the engine's
stats loop about every REFRESH_EVERY seconds, by `alert-receiver stats refresh`, and by the tests and bench.

The first build walks the history in batches of whole hours (about BUILD_ROWS occurrences each) towards a fixed
target watermark, published with the last batch; until then readers use raw rows, exactly as without aggregates.
An incremental step covers at most STEP of watermark movement, so that a transaction stays short after downtime.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from typing import Callable

from sqlalchemy.engine import Engine

from ..config import Config
from ..store.db import is_sqlite, read_transaction
from ..store.write_port import Writes
from . import write_aggregates as aggregates

log = logging.getLogger("receiver.stats")

REFRESH_EVERY = 30.0  # seconds between refreshes: the raw tail a reader adds is at most this (plus the settle delay)
# A first-build transaction covers the whole hours holding about BUILD_ROWS occurrences (at most BUILD_MAX_HOURS):
# ~0.3 s of SQLite's writer lock; empty stretches of history cost nothing.
BUILD_ROWS = 5000
BUILD_MAX_HOURS = 24 * 31
STEP = dt.timedelta(hours=6)  # watermark movement per incremental transaction
# An attempt's time is taken before its outcome commits (a send can take a while): look back this much further.
REDELIVERY_MARGIN = dt.timedelta(minutes=5)
SQLITE_PAUSE = 0.02  # between two batches on SQLite, queued writers (webhooks) go first


@dataclasses.dataclass
class RefreshResult:
    watermark: dt.datetime | None = None
    hours: int = 0  # hours re-derived
    occurrences: int = 0  # settled occurrences aggregated in those hours
    batches: int = 0
    complete: bool = True  # False: stopped by the budget; call again
    seconds: float = 0.0


def refresh(writes: Writes, config: Config, now: dt.datetime, *, budget: float | None = None,
            should_stop: Callable[[], bool] | None = None) -> RefreshResult:
    """Bring the aggregates up to `now − settle_delay(config)`. Safe in several engines at once."""
    db = writes.db  # for reads
    target = now - aggregates.settle_delay(config)
    result = RefreshResult()
    started = time.monotonic()
    pause = SQLITE_PAUSE if is_sqlite(db) else 0.0
    while True:
        if (should_stop and should_stop()) or (budget is not None and time.monotonic() - started >= budget):
            result.complete = False
            break
        # Which hours changed is found in a read transaction: under a steady load that search (recent deliveries
        # joined to their alerts) held SQLite's writer lock for up to a second every REFRESH_EVERY, and every
        # webhook waited behind it. The write transaction then uses the plan if nobody moved the state since.
        with read_transaction(db) as conn:
            seen = aggregates.read_state(conn)
            planned = _plan(conn, seen, target) if seen.watermark is not None else None
        with writes.transaction() as conn:
            before = aggregates.lock_state(conn, now)
            if planned is not None and before == seen:
                done, hours, n, state = _apply(conn, before, *planned, now)
            else:
                done, hours, n, state = _step(conn, before, target, now)
            aggregates.write_state(conn, state, now)
        if before.watermark is None and state.watermark is not None:
            log.info("statistics aggregates built", extra={"watermark": state.watermark.isoformat(),
                                                           "seconds": round(time.monotonic() - started, 3)})
            if is_postgresql(db):
                _analyze(db)  # plan with real row counts at once (autovacuum would come later)
        result.watermark = state.watermark
        result.hours += hours
        result.occurrences += n
        if hours or not done:
            result.batches += 1
        if done:
            break
        if pause:
            time.sleep(pause)
    result.seconds = time.monotonic() - started
    return result


def is_postgresql(db: Engine) -> bool:
    return db.dialect.name == "postgresql"


def _analyze(db: Engine) -> None:
    with db.connect() as conn:
        conn.exec_driver_sql("ANALYZE alert_stats, alert_stats_by_alert, alert_stats_repeats, alert_stats_sla")
        conn.commit()


def _step(conn, state: aggregates.State, target: dt.datetime, now: dt.datetime):
    """One transaction's worth: (done, hours re-derived, occurrences, new state)."""
    floor = aggregates.rollup_floor(conn)
    if floor is not None:
        aggregates.drop_before(conn, floor)
    if state.watermark is None:  # the first build: every hour, towards a fixed target
        build_target = state.target or target
        cursor = state.cursor or _first_hour(conn, floor)
        # The last hour to build: a settled occurrence may claim to start after it resolved (clock skew).
        last = aggregates.floor_hour(max(build_target, aggregates.last_start(conn) or build_target))
        if cursor is None or cursor > last:
            return True, 0, 0, aggregates.State(watermark=build_target, refreshed_at=state.refreshed_at or now)
        nxt = aggregates.batch_end(conn, cursor, BUILD_ROWS, max_hours=BUILD_MAX_HOURS)
        hours = [cursor + aggregates.HOUR * i for i in range(int((nxt - cursor) / aggregates.HOUR))]
        n = aggregates.rebuild_hours(conn, hours, build_target)
        # Deliveries during the build may concern hours already written: the first refresh after it looks back to
        # the build's start.
        started = state.refreshed_at or now
        if nxt > last:
            return True, len(hours), n, aggregates.State(watermark=build_target, refreshed_at=started)
        return False, len(hours), n, aggregates.State(target=build_target, cursor=nxt, refreshed_at=started)
    return _apply(conn, state, *_plan(conn, state, target), now, drop=False)


def _plan(conn, state: aggregates.State, target: dt.datetime) -> tuple[dt.datetime, bool, list[dt.datetime]]:
    """An incremental step's new watermark, whether it reaches the target, and the hours to re-derive."""
    new = max(state.watermark, min(target, state.watermark + STEP))
    hours = set(aggregates.touched_hours(conn, state.watermark, new))
    if state.refreshed_at is not None:
        hours.update(aggregates.redelivered_hours(conn, state.refreshed_at - REDELIVERY_MARGIN, new))
    return new, new >= target, sorted(hours)


def _apply(conn, state: aggregates.State, new: dt.datetime, done: bool, hours: list[dt.datetime], now: dt.datetime,
           *, drop: bool = True):
    if drop:
        floor = aggregates.rollup_floor(conn)
        if floor is not None:
            aggregates.drop_before(conn, floor)
    n = aggregates.rebuild_hours(conn, hours, new) if hours else 0
    return done, len(hours), n, aggregates.State(watermark=new, refreshed_at=now)


def _first_hour(conn, floor: dt.datetime | None) -> dt.datetime | None:
    first = aggregates.first_start(conn)
    if first is None:
        return None
    first = aggregates.floor_hour(first)
    return max(first, floor) if floor else first
