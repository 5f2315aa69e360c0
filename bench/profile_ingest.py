#!/usr/bin/env python3
"""Where the time of one webhook goes, in one process, without HTTP: parse (pydantic), BEGIN, each SQL statement,
the Python of ingest between statements, COMMIT. Same bodies as bench/wrk_webhook.lua (new fingerprints).

    python3 bench/profile_ingest.py [--backends sqlite,postgresql] [--sizes 1,10,100] [--seconds 4]
                                    [--cprofile] [--app] [--sqlite-synchronous FULL|NORMAL]

--app   also posts the same bodies through the whole Flask app (create_app + test client: auth, metrics, JSON
        answer) to show the web layer's share; --cprofile prints the top functions of the ingest loop.
PostgreSQL runs durable (fsync, synchronous_commit on), like bench/ingest.py.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, REPO)
sys.path.insert(0, BENCH_DIR)
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-prom-"))

ALERT = ('{"status":"firing","labels":{"alertname":"BenchIngest","bench_id":"%s","instance":"bench-%s.internal:8080",'
         '"job":"bench-api","service":"bench","severity":"critical"},'
         '"annotations":{"description":"bench-%s.internal:8080 of job bench-api has been down for more than 1 minute.",'
         '"summary":"bench-%s.internal:8080 is down"},'
         '"startsAt":"2026-11-23T08:09:20.177Z","endsAt":"0001-01-01T00:00:00Z",'
         '"generatorURL":"http://127.0.0.1:9090/graph?g0.expr=up%%7Bjob%%3D%%22bench-api%%22%%7D%%20%%3D%%3D%%200\\u0026g0.tab=1",'
         '"fingerprint":"%s"}')
HEAD = '{"receiver":"webhook-receiver","status":"firing","alerts":['
TAIL = ('],"groupLabels":{"alertname":"BenchIngest","service":"bench"},'
        '"commonLabels":{"alertname":"BenchIngest","job":"bench-api","service":"bench","severity":"critical"},'
        '"commonAnnotations":{},"externalURL":"http://127.0.0.1:9093","version":"4",'
        '"groupKey":"{}:{alertname=\\"BenchIngest\\", bench_request=\\"%s\\"}","truncatedAlerts":0}')


def make_body(n: int, prefix: str, seq: int) -> bytes:
    fps = [f"{prefix}{(seq * n + i):010x}" for i in range(n)]
    return (HEAD + ",".join(ALERT % (fp, fp, fp, fp, fp) for fp in fps) + TAIL % f"{prefix}{seq:010x}").encode()


def statement_kind(sql: str) -> str:
    s = " ".join(sql.split()).upper()
    m = re.match(r"(INSERT INTO \w+|UPDATE \w+|DELETE FROM \w+|BEGIN\w*|COMMIT|ROLLBACK|PRAGMA \w+)", s)
    if m:
        return m.group(1)
    m = re.match(r"SELECT .*? FROM (\w+)(?: AS \w+)?(?: WHERE (.{0,48}))?", s)
    if m:
        return f"SELECT FROM {m.group(1)}" + (f" WHERE {m.group(2)}…" if m.group(2) else "")
    return s[:40]


class StatementTimer:
    """Time inside the driver (sqlite3 / psycopg 3) per statement kind, whoever calls it: SQLAlchemy or code that
    goes straight to the driver. sqlite3: execute + fetch (a SELECT steps in fetch); psycopg: execute (the client
    cursor has the whole result when execute returns)."""

    def __init__(self):
        self.totals: collections.Counter = collections.Counter()
        self.counts: collections.Counter = collections.Counter()
        self._install()

    def add(self, kind: str, seconds: float, count: bool = True) -> None:
        self.totals[kind] += seconds
        if count:
            self.counts[kind] += 1

    def _install(self) -> None:
        import sqlite3

        timer = self
        perf = time.perf_counter

        class TimedCursor(sqlite3.Cursor):
            _kind = "?"

            def _timed(self, run, sql, args):
                self._kind = statement_kind(sql)
                t = perf()
                try:
                    return run(sql, *args)
                finally:
                    timer.add(self._kind, perf() - t)

            def execute(self, sql, *args):
                return self._timed(super().execute, sql, args)

            def executemany(self, sql, *args):
                return self._timed(super().executemany, sql, args)

            def fetchall(self):
                t = perf()
                try:
                    return super().fetchall()
                finally:
                    timer.add(self._kind, perf() - t, count=False)

            def fetchone(self):
                t = perf()
                try:
                    return super().fetchone()
                finally:
                    timer.add(self._kind, perf() - t, count=False)

            def fetchmany(self, *args):
                t = perf()
                try:
                    return super().fetchmany(*args)
                finally:
                    timer.add(self._kind, perf() - t, count=False)

        class TimedConnection(sqlite3.Connection):
            def cursor(self, factory=TimedCursor):
                return super().cursor(factory)

        import sqlite3.dbapi2  # what SQLAlchemy's pysqlite dialect calls

        for module in (sqlite3, sqlite3.dbapi2):
            if getattr(module.connect, "_bench_timed", False):
                continue

            def connect(*args, _original=module.connect, **kwargs):
                kwargs.setdefault("factory", TimedConnection)
                return _original(*args, **kwargs)

            connect._bench_timed = True
            module.connect = connect

        try:
            import psycopg
        except ImportError:
            return
        for cls in (psycopg.Cursor,):
            for name in ("execute", "executemany"):
                original = getattr(cls, name)
                if getattr(original, "_bench_timed", False):
                    continue

                def wrapper(self, query, *args, _original=original, **kwargs):
                    if isinstance(query, bytes):
                        text = query.decode("utf-8", "replace")
                    elif isinstance(query, str):
                        text = query
                    else:  # psycopg.sql.Composed
                        text = query.as_string(self)
                    t = perf()
                    try:
                        return _original(self, query, *args, **kwargs)
                    finally:
                        timer.add(statement_kind(text), perf() - t)

                wrapper._bench_timed = True
                setattr(cls, name, wrapper)

    def reset(self):
        self.totals.clear()
        self.counts.clear()

    def sql_total(self) -> float:
        return sum(v for k, v in self.totals.items() if not k.startswith(("BEGIN", "COMMIT", "ROLLBACK")))


TIMER: StatementTimer | None = None


def build(backend: str, url: str, synchronous: str):
    from receiver.config import Config
    from receiver.store import migrate

    config = Config.model_validate({"database": {"url": url, "sqlite_synchronous": synchronous}})
    from receiver.app import build_db

    db = build_db(config)
    migrate.upgrade(db)
    return config, db


def profile_case(backend: str, url: str, n: int, seconds: float, args) -> dict:
    from receiver import payload as payload_mod
    from receiver.clock import SystemClock
    from receiver.engine.ingest import ingest
    from receiver.store.db import write_transaction

    global TIMER
    if TIMER is None:
        TIMER = StatementTimer()
    timer = TIMER
    config, db = build(backend, url, args.sqlite_synchronous)
    clock = SystemClock()
    prefix = f"{os.getpid() & 0xffff:04x}{n:02x}"
    # Warm up: pool, statement caches.
    for i in range(5):
        body = make_body(n, prefix, 10_000_000 + i)
        with write_transaction(db) as conn:
            ingest(conn, payload_mod.parse(body), config=config, now=clock.now(), raw_body=body)
    timer.reset()
    phases = collections.Counter()
    profiler = cProfile.Profile() if args.cprofile else None
    requests = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        body = make_body(n, prefix, requests)
        if profiler:
            profiler.enable()
        t0 = time.perf_counter()
        parsed = payload_mod.parse(body)
        t1 = time.perf_counter()
        sql_before = timer.sql_total()
        with write_transaction(db) as conn:
            t2 = time.perf_counter()
            ingest(conn, parsed, config=config, now=clock.now(), raw_body=body)
            t3 = time.perf_counter()
        t4 = time.perf_counter()
        if profiler:
            profiler.disable()
        sql = timer.sql_total() - sql_before
        phases["parse"] += t1 - t0
        phases["connect+BEGIN"] += t2 - t1  # includes waiting for the writer lock, if the receiver has one
        phases["ingest SQL"] += sql
        phases["ingest Python"] += (t3 - t2) - sql
        phases["COMMIT"] += t4 - t3
        phases["total"] += t4 - t0
        requests += 1
    db.dispose()
    out = {
        "backend": backend, "alerts_per_webhook": n, "requests": requests,
        "ms_per_request": {k: round(v / requests * 1000, 3) for k, v in phases.items()},
        "us_per_alert": {k: round(v / requests / n * 1e6, 1) for k, v in phases.items()},
        "statements_ms_per_request": {k: round(v / requests * 1000, 3) for k, v in timer.totals.most_common()},
        "statements_per_request": {k: round(c / requests, 2) for k, c in timer.counts.most_common()},
        "serial_req_per_s": round(requests / phases["total"], 1),
        "serial_alerts_per_s": round(requests * n / phases["total"], 1),
    }
    if profiler:
        s = io.StringIO()
        pstats.Stats(profiler, stream=s).sort_stats("tottime").print_stats(25)
        out["cprofile_tottime"] = s.getvalue()
    return out


def profile_app(backend: str, url: str, n: int, seconds: float, args) -> dict:
    """The whole Flask app (auth, parse, ingest, commit, metrics, JSON answer) through the test client."""
    from receiver.app import create_app
    from receiver.config import Config

    token = "bench-webhook-token-0123456789abcdef"
    config = Config.model_validate({"database": {"url": url, "sqlite_synchronous": args.sqlite_synchronous},
                                    "auth": {"tokens": [{"name": "bench", "token": token, "role": "webhook"}]}})
    build(backend, url, args.sqlite_synchronous)[1].dispose()
    app = create_app(config)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    prefix = f"{(os.getpid() + 1) & 0xffff:04x}{n:02x}"
    for i in range(5):
        client.post("/webhook", data=make_body(n, prefix, 20_000_000 + i), headers=headers)
    profiler = cProfile.Profile() if args.cprofile else None
    requests, total = 0, 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        body = make_body(n, prefix, requests)
        if profiler:
            profiler.enable()
        t0 = time.perf_counter()
        resp = client.post("/webhook", data=body, headers=headers)
        total += time.perf_counter() - t0
        if profiler:
            profiler.disable()
        assert resp.status_code == 200, resp.get_data()[:300]
        requests += 1
    out = {"backend": backend, "alerts_per_webhook": n, "requests": requests,
           "app_ms_per_request": round(total / requests * 1000, 3)}
    if profiler:
        s = io.StringIO()
        pstats.Stats(profiler, stream=s).sort_stats("tottime").print_stats(20)
        out["cprofile_tottime"] = s.getvalue()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="in-process breakdown of webhook ingest")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--sqlite-synchronous", default="FULL", choices=["FULL", "NORMAL"])
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--app", action="store_true", help="also time the whole Flask app per request")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = tempfile.mkdtemp(prefix="bench-profile-")
    results = []
    pg = None
    try:
        for backend in args.backends.split(","):
            if backend == "postgresql":
                from ingest import DurablePostgres

                pg = DurablePostgres().start()
            for n in sizes:
                if backend == "sqlite":
                    url = f"sqlite:///{work}/profile-{n}.db"
                else:
                    url = pg.create_database(f"profile_{n}")
                r = profile_case(backend, url, n, args.seconds, args)
                if args.app:
                    url2 = f"sqlite:///{work}/app-{n}.db" if backend == "sqlite" else pg.create_database(f"app_{n}")
                    a = profile_app(backend, url2, n, args.seconds, args)
                    r["app_ms_per_request"] = a["app_ms_per_request"]
                    if args.cprofile:
                        r["app_cprofile_tottime"] = a["cprofile_tottime"]
                results.append(r)
                if not args.json:
                    report(r)
            if pg is not None:
                pg.cleanup()
                pg = None
    finally:
        if pg is not None:
            pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def report(r: dict) -> None:
    n = r["alerts_per_webhook"]
    print(f"\n== {r['backend']}, {n} alert(s)/webhook: {r['requests']} requests, one process, serial: "
          f"{r['serial_req_per_s']} req/s = {r['serial_alerts_per_s']} alerts/s")
    for k, v in r["ms_per_request"].items():
        print(f"   {k:<16}{v:>9.3f} ms/request {r['us_per_alert'][k]:>9.1f} µs/alert")
    if "app_ms_per_request" in r:
        print(f"   {'whole Flask app':<16}{r['app_ms_per_request']:>9.3f} ms/request (test client: auth, parse, ingest, "
              f"commit, metrics, answer)")
    print("   statements (ms/request, count/request):")
    for k, v in r["statements_ms_per_request"].items():
        print(f"     {v:>8.3f}  ×{r['statements_per_request'][k]:<5} {k}")
    for key in ("cprofile_tottime", "app_cprofile_tottime"):
        if key in r:
            text = r[key]
            start = text.find("   ncalls")
            print(f"   {key}:\n" + "\n".join("     " + l for l in text[start:].splitlines()[:28]))


if __name__ == "__main__":
    sys.exit(main())
