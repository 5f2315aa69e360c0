"""Statistics endpoints on a big history: 1,000,000 occurrences over 90 days with their events, notifications
and intents, on SQLite and PostgreSQL; p50/p95 of every stats endpoint over the last 7 and 30 days.

    python3 bench/stats.py                                   # both backends, 1,000,000 alerts, 20 runs each
    python3 bench/stats.py --backends sqlite --alerts 200000 --runs 10

Targets (issue #5): p95 < 100 ms for summary, top and trends over 7 days; < 500 ms over 30 days. Requests go
through the Flask app in-process (the endpoint's own cost; no HTTP stack). Seeding writes rows straight through
the driver (SQLite executemany, PostgreSQL COPY), in the shapes the receiver itself writes. Then the engine's
statistics refresh builds the pre-aggregates (statistics/write_aggregates.py; its time is printed, and the time of
one incremental refresh a minute later); `--no-aggregates` measures the raw queries alone. Each line also shows the
process CPU time per request (p50): on SQLite that is the whole cost, and it does not grow when other work shares
the machine, which wall-clock times do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "bench")]

from prometheus_client import CollectorRegistry  # noqa: E402

from receiver.app import create_app  # noqa: E402
from receiver.config import Config  # noqa: E402
from receiver.clock import FixedClock  # noqa: E402
from receiver.store import migrate  # noqa: E402
from receiver.store.db import create_db_engine  # noqa: E402
from receiver.store.write_port import DirectWrites  # noqa: E402

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)
DAYS = 90
SEVERITIES = (("critical", "L1", 0.1), ("warning", "L2", 0.3), ("info", "L3", 0.6))

ALERT_COLUMNS = ("id", "fingerprint", "status", "starts_at", "ends_at", "alertname", "severity", "service",
                 "instance", "labels", "annotations", "generator_url", "group_key", "group_id", "receiver", "source",
                 "external_url", "level", "route", "escalate", "level_entered_at", "next_action_at",
                 "escalation_count", "repeat_count", "first_acked_at", "acked_at", "acked_by",
                 "resolved_at", "resolved_by", "received_at", "updated_at")
FIRST_COLUMNS = ("alert_id", "notified_at")
EVENT_COLUMNS = ("alert_id", "at", "kind", "actor", "from_level", "to_level")
MESSAGE_COLUMNS = ("id", "channel", "kind", "level", "group_key", "group_id", "status", "attempts", "created_at",
                   "sent_at")
ITEM_COLUMNS = ("notification_id", "alert_id", "channel", "kind", "level", "repeat_no")


def ts(t: dt.datetime | None, pg: bool):
    if t is None:
        return None
    return t if pg else t.strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(n: int, seed: int = 1, now: dt.datetime = NOW):
    """Yield (alert row, [first notification row], [event rows], [message rows], [item rows]) for n occurrences
    over the DAYS days before `now`."""
    rnd = random.Random(seed)
    services = [f"svc-{i:02d}" for i in range(30)]
    names = [f"Alert{i:03d}" for i in range(200)]
    start = now - dt.timedelta(days=DAYS)
    span = DAYS * 86400
    message_id = 0
    for i in range(1, n + 1):
        r = rnd.random()
        severity, level = next((s, lv) for s, lv, p in _cumulative() if r < p)
        starts = start + dt.timedelta(seconds=span * i / n + rnd.random())
        firing = starts > now - dt.timedelta(hours=6) and rnd.random() < 0.5
        duration = dt.timedelta(seconds=min(86400 * 3, math.exp(rnd.gauss(7, 1.5))))
        ends = None if firing else starts + duration
        notified = starts + dt.timedelta(seconds=rnd.randint(0, 90)) if rnd.random() < 0.8 else None
        acked = notified + dt.timedelta(seconds=math.exp(rnd.gauss(5.5, 1.2))) if notified and rnd.random() < 0.4 else None
        escalations = 0 if acked or level == "L1" else rnd.choice((0, 0, 1, 1, 2))
        svc, name = rnd.choice(services), rnd.choice(names)
        fp = f"{i:016x}"
        gid = f"{hash((svc, name, i // 5)) & 0xFFFFFFFFFFFFFFFF:016x}"
        row = (i, fp, "firing" if firing else "resolved", starts, ends, name, severity, svc, f"host-{i % 500}:9100",
               json.dumps({"alertname": name, "service": svc, "severity": severity, "instance": f"host-{i % 500}:9100"}),
               json.dumps({"summary": f"{name} on {svc}"}), "http://prometheus/graph", f"{{}}:{{alertname=\"{name}\"}}",
               gid, "alert-receiver", "", "http://alertmanager:9093", level, "default", True, starts,
               None if not firing else starts + dt.timedelta(minutes=5), escalations, 0, acked, acked,
               "oncall" if acked else None, ends, "alertmanager" if ends else None, starts, ends or starts)
        events = [(i, starts, "received", "alertmanager", None, level)]
        lv = level
        for k in range(escalations):
            up = {"L3": "L2", "L2": "L1"}.get(lv, "L1")
            events.append((i, starts + dt.timedelta(minutes=5 * (k + 1)), "escalated", "engine", lv, up))
            lv = up
        if notified:
            events.append((i, notified, "notified", "engine", None, level))
        if acked:
            events.append((i, acked, "acked", "oncall", None, None))
        if ends:
            events.append((i, ends, "resolved", "alertmanager", None, None))
        messages, items = [], []
        for kind, at in (("firing", notified), ("resolved", ends if notified else None)):
            if at is None:
                continue
            message_id += 1
            status = "sent" if rnd.random() < 0.97 else "dead"
            messages.append((message_id, "slack", kind, level, "", gid, status, 1, at, at if status == "sent" else None))
            items.append((message_id, i, "slack", kind, level, 0))
        yield row, [(i, notified)] if notified else [], events, messages, items


def _cumulative():
    total = 0.0
    for s, lv, p in SEVERITIES:
        total += p
        yield s, lv, total


def seed(url: str, n: int, *, alerts_only: bool = False, now: dt.datetime = NOW) -> float:
    """n occurrences over the DAYS days before `now` into a migrated database; `alerts_only` leaves out their
    events and messages (a third of the rows, for tests that only filter alerts). A test that runs an engine on the
    real clock seeds at the real now: at the fixed NOW, retention would purge more of the history each day."""
    started = time.perf_counter()
    db = create_db_engine(url)
    migrate.upgrade(db)
    pg = db.dialect.name == "postgresql"
    raw = db.raw_connection()
    try:
        cur = raw.cursor()
        batch: dict[str, list] = {"alerts": [], "alert_first_notifications": [], "alert_events": [],
                                  "notifications": [], "notification_items": []}

        def flush():
            if not pg:  # the receiver's SQLite connections run in autocommit: one transaction per flush
                cur.execute("BEGIN")
            for table, cols in (("alerts", ALERT_COLUMNS), ("alert_first_notifications", FIRST_COLUMNS),
                                ("alert_events", EVENT_COLUMNS),
                                ("notifications", MESSAGE_COLUMNS), ("notification_items", ITEM_COLUMNS)):
                rows = batch[table]
                if not rows:
                    continue
                if pg:
                    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                    [tuple(ts(v, False) if isinstance(v, dt.datetime) else v for v in row)
                                     for row in rows])
                rows.clear()
            raw.commit()

        for row, firsts, events, messages, items in generate(n, now=now):
            batch["alerts"].append(row)
            batch["alert_first_notifications"].extend(firsts)
            if alerts_only:
                continue
            batch["alert_events"].extend(events)
            batch["notifications"].extend(messages)
            batch["notification_items"].extend(items)
            if len(batch["alerts"]) >= 20000:
                flush()
        flush()
        if pg:
            cur.execute("SELECT setval(pg_get_serial_sequence('alerts', 'id'), (SELECT max(id) FROM alerts))")
            cur.execute("SELECT setval(pg_get_serial_sequence('notifications', 'id'), (SELECT max(id) FROM notifications))")
        raw.commit()
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
        db.dispose()
    return time.perf_counter() - started


def endpoints(days: int) -> list[tuple[str, str, dict]]:
    since = (NOW - dt.timedelta(days=days)).isoformat().replace("+00:00", "Z")
    period = {"since": since, "until": NOW.isoformat().replace("+00:00", "Z")}
    return [
        ("summary", "/api/v1/stats/summary", period),
        ("summary service", "/api/v1/stats/summary", {**period, "service": "svc-07"}),
        ("top count", "/api/v1/stats/top", {**period, "by": "count"}),
        ("top duration", "/api/v1/stats/top", {**period, "by": "duration"}),
        ("top escalations", "/api/v1/stats/top", {**period, "by": "escalations"}),
        ("top noise", "/api/v1/stats/top", {**period, "by": "noise"}),
        ("trends hour", "/api/v1/stats/trends", {**period, "interval": "hour"}),
        ("trends day tz", "/api/v1/stats/trends", {**period, "interval": "day", "tz": "Europe/Paris"}),
        ("trends service", "/api/v1/stats/trends", {**period, "interval": "day", "group_by": "service"}),
        ("health", "/api/v1/stats/services/svc-07/health", period),
    ]


def build_aggregates(url: str, now: dt.datetime = NOW) -> tuple[float, float]:
    """The first build of the statistics aggregates at `now`, then one incremental refresh a minute later."""
    from receiver.statistics import write_refresh as aggregates

    config = Config.model_validate({"database": {"url": url}})
    db = create_db_engine(url)
    try:
        t = time.perf_counter()
        aggregates.refresh(DirectWrites(db), config, now)
        first = time.perf_counter() - t
        t = time.perf_counter()
        aggregates.refresh(DirectWrites(db), config, now + dt.timedelta(minutes=1))
        return first, time.perf_counter() - t
    finally:
        db.dispose()


def measure(url: str, runs: int) -> list[dict]:
    config = Config.model_validate({"database": {"url": url}})
    app = create_app(config, clock=FixedClock(NOW), registry=CollectorRegistry())
    client = app.test_client()
    out = []
    for days in (7, 30):
        for name, path, params in endpoints(days):
            times, cpu = [], []
            for _ in range(runs + 1):
                t, c = time.perf_counter(), time.process_time()
                resp = client.get(path, query_string=params)
                times.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
                assert resp.status_code == 200, resp.get_json()
            times, cpu = sorted(times[1:]), sorted(cpu[1:])  # the first run warms caches
            p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
            target = 100 if days == 7 else 500
            gated = name.split()[0] in ("summary", "top", "trends")
            source = (resp.get_json() or {}).get("source", "")
            out.append({"days": days, "endpoint": name, "p50_ms": times[len(times) // 2], "p95_ms": p95,
                        "cpu_p50_ms": cpu[len(cpu) // 2], "source": source,
                        "target_ms": target if gated else None,
                        "result": ("PASS" if p95 < target else "FAIL") if gated else ""})
    app.extensions["alert_receiver"].db.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file / PostgreSQL server")
    parser.add_argument("--no-aggregates", action="store_true", help="measure the raw queries alone")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench-stats-")
    pg = None
    failed = False
    try:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite:///{work}/stats.db"
            else:
                from ingest import DurablePostgres

                pg = DurablePostgres().start()
                url = pg.create_database("stats")
            seconds = seed(url, args.alerts)
            print(f"{backend}: seeded {args.alerts:,} alerts with events and notifications in {seconds:.0f} s",
                  flush=True)
            if not args.no_aggregates:
                first, incremental = build_aggregates(url)
                print(f"{backend}: statistics aggregates built in {first:.0f} s; an incremental refresh took "
                      f"{incremental * 1000:.0f} ms", flush=True)
            for r in measure(url, args.runs):
                failed |= r["result"] == "FAIL"
                print(f"{backend:10} {r['days']:>2} d  {r['endpoint']:16} p50 {r['p50_ms']:7.1f} ms  "
                      f"p95 {r['p95_ms']:7.1f} ms  cpu {r['cpu_p50_ms']:6.1f} ms  {r['source'] or '':17} "
                      f"{('target < ' + str(r['target_ms']) + ' ms ' + r['result']) if r['target_ms'] else ''}",
                      flush=True)
    finally:
        if pg is not None and not args.keep:
            pg.cleanup()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)  # the SQLite file of a million alerts is ~2 GB
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
