"""One engine tick over many open alerts, few due: its time must follow the number due, not the number open.

    python3 bench/tick.py                          # SQLite and PostgreSQL, 100,000 open / 1,000 due, and the controls
    python3 bench/tick.py --backends sqlite --open 100000 --due 1000

For each backend it seeds a fresh database through the real ingest path (info alerts, the default route's `log`
channel, so each escalation writes its events and outbox rows), with the occurrences' receive times staggered so
that exactly `--due` are due at the measured tick, then times `engine.tick.tick()` once. Controls in the same run:
the same number due with a tenth as many open, and ten times as many due with the same number open.
PostgreSQL runs durable (fsync, synchronous_commit on), as in bench/ingest.py. Target (issue #3): < 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "bench")]

from receiver.config import Config  # noqa: E402
from receiver.engine.ingest import ingest, prepare  # noqa: E402
from receiver.engine.tick import tick  # noqa: E402
from receiver.payload import parse  # noqa: E402
from receiver.store import migrate  # noqa: E402
from receiver.store.db import create_db_engine, write_transaction  # noqa: E402
from receiver.store.write_port import DirectWrites  # noqa: E402

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)
BODY = 1000  # alerts per seeded webhook


def body(batch: int, n: int) -> bytes:
    alerts = [{"status": "firing", "labels": {"alertname": "BenchTick", "severity": "info", "service": f"svc-{i % 50}",
                                              "instance": f"b{batch}-n{i}:9100"},
               "annotations": {"summary": "bench"}, "startsAt": "2026-11-23T08:00:00Z",
               "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus/graph"} for i in range(n)]
    return json.dumps({"version": "4", "groupKey": f'{{}}:{{alertname="BenchTick", batch="{batch}"}}',
                       "truncatedAlerts": 0, "status": "firing", "receiver": "alert-receiver",
                       "groupLabels": {"alertname": "BenchTick"}, "commonLabels": {}, "commonAnnotations": {},
                       "externalURL": "http://alertmanager:9093", "alerts": alerts}).encode()


def seed(db, config: Config, plan: list[tuple[int, dt.timedelta]]) -> None:
    """plan: (alerts, received at T0 + offset). Their 5-minute L3 timers fall due at T0 + offset + 5m."""
    batch = 0
    for count, offset in plan:
        for start in range(0, count, BODY):
            payload = parse(body(batch, min(BODY, count - start)))
            now = T0 + offset
            prepared = prepare(payload, config=config, now=now)
            with write_transaction(db) as conn:
                ingest(conn, payload, config=config, now=now, prepared=prepared)
            batch += 1
    with db.connect() as conn:  # fresh statistics, as a database that has been running would have
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


def measure(url: str, open_: int, due: int) -> dict:
    db = create_db_engine(url)
    migrate.upgrade(db)
    config = Config()
    started = time.perf_counter()
    seed(db, config, [(due, dt.timedelta(0)), (open_ - due, dt.timedelta(minutes=3))])
    seeded = time.perf_counter() - started
    t = time.perf_counter()
    result = tick(DirectWrites(db), config, T0 + dt.timedelta(minutes=5))
    elapsed = time.perf_counter() - t
    escalated = sum(result.escalations.values())
    assert escalated == due, f"expected {due} escalations, got {escalated}"
    db.dispose()
    return {"open": open_, "due": due, "tick_s": elapsed, "seed_s": seeded, "messages": result.messages}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--no-controls", action="store_true")
    args = parser.parse_args()
    cases = [(args.open, args.due)]
    if not args.no_controls:
        cases += [(args.open // 10, args.due), (args.open, min(args.open, args.due * 10))]
    work = tempfile.mkdtemp(prefix="bench-tick-")
    pg = None
    rows = []
    try:
        for backend in args.backends.split(","):
            for n, (open_, due) in enumerate(cases):
                if backend == "sqlite":
                    url = f"sqlite:///{work}/tick-{n}.db"
                else:
                    if pg is None:
                        from ingest import DurablePostgres

                        pg = DurablePostgres().start()
                    url = pg.create_database(f"tick_{n}")
                r = measure(url, open_, due)
                r["backend"] = backend
                rows.append(r)
                print(f"{backend:10} open {open_:>7,}  due {due:>6,}  tick {r['tick_s'] * 1000:8.1f} ms  "
                      f"({r['messages']} messages; seeded in {r['seed_s']:.1f} s)"
                      + ("   target < 1 s: " + ("PASS" if r["tick_s"] < 1 else "FAIL")
                         if (open_, due) == (args.open, args.due) else ""), flush=True)
    finally:
        if pg is not None:
            pg.cleanup()
    by = {(r["backend"], r["open"], r["due"]): r["tick_s"] for r in rows}
    if not args.no_controls:
        for backend in args.backends.split(","):
            base = by.get((backend, args.open, args.due))
            fewer_open = by.get((backend, args.open // 10, args.due))
            more_due = by.get((backend, args.open, min(args.open, args.due * 10)))
            if base and fewer_open and more_due:
                print(f"{backend:10} ×10 open → tick ×{base / fewer_open:.2f};  ×10 due → tick ×{more_due / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
