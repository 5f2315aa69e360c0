"""Export and retention on a big history: 1,000,000 occurrences over 90 days (with their events, notifications and
intents, seeded like bench/stats.py) on SQLite and PostgreSQL.

    python3 bench/export.py                                      # both backends, 1,000,000 alerts
    python3 bench/export.py --backends sqlite --alerts 200000 --no-retention

Export: each case downloads GET /api/v1/alerts/export.csv (…?format=json|ndjson, and filtered) over real HTTP from
`alert-receiver serve --no-engine` (gunicorn sync workers, the receiver's own settings), counts the rows received
against the database, and reads the serving worker's peak RSS (VmHWM in /proc; target < 200 MB).

gunicorn kills a sync worker that has not called its heartbeat for `timeout` seconds (30 in receiver/gunicorn_conf):
an export longer than that is cut off. The bench shows it on the slowest full export, run under gunicorn with the
receiver's settings but a timeout of a third of its duration: cut off without, complete with a post_worker_init
hook that hands the app the worker's heartbeat (`worker.notify`, which receiver/web/export_api.py calls after every
batch). Any case that came close to the real timeout runs again with the hook.

Retention: purges three 10-day slices of the seeded history with batches of 250, 500 and 2,000 occurrences, and
reports the time of each batch (one write transaction, p50/p99/max) and what a one-row writer in another process
(a webhook, on SQLite) waited meanwhile.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "bench")]

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from stats import NOW, seed  # noqa: E402  (bench/stats.py: the same history the statistics bench uses)

TARGET_RSS_MB = 200
CASES = [
    ("csv, all rows", "/api/v1/alerts/export.csv", {}),
    ("json, all rows", "/api/v1/alerts/export.csv", {"format": "json"}),
    ("ndjson, all rows", "/api/v1/alerts/export", {"format": "ndjson"}),
    ("csv, status=resolved", "/api/v1/alerts/export.csv", {"status": "resolved"}),
    ("csv, one service, 30 d", "/api/v1/alerts/export.csv",
     {"service": "svc-07", "since": (NOW - dt.timedelta(days=30)).isoformat()}),
    ("csv, label matcher", "/api/v1/alerts/export.csv", {"match": 'instance=~"host-1.:9100"'}),
]

GUNICORN_CONF = '''
from receiver.gunicorn_conf import settings as _settings

globals().update(_settings("127.0.0.1", {port}, workers={workers}))
{timeout}
{hook}
'''
HOOK = '''
def post_worker_init(worker):
    # The proposed change to receiver/gunicorn_conf.py: a streamed export beats the worker's heartbeat per batch.
    worker.wsgi.extensions["alert_receiver_heartbeat"] = worker.notify
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


def status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Server:
    """`alert-receiver serve --no-engine` (mode "serve"), or gunicorn with the receiver's settings, optionally
    another timeout and the heartbeat hook (modes "gunicorn", "gunicorn+heartbeat")."""

    def __init__(self, url: str, work: str, workers: int, mode: str = "serve", timeout: int | None = None):
        self.port = free_port()
        self.label = mode + (f" (timeout {timeout} s)" if timeout else "")
        config = os.path.join(work, f"receiver-{self.port}.yml")
        with open(config, "w") as f:
            json.dump({"database": {"url": url}, "server": {"host": "127.0.0.1", "port": self.port}}, f)
        env = {**os.environ, "RECEIVER_CONFIG": config, "PYTHONPATH": REPO}
        self.log = open(os.path.join(work, f"server-{self.port}.log"), "w")
        if mode == "serve":
            cmd = [sys.executable, "-m", "receiver", "serve", "--no-engine", "--no-migrate", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", str(workers)]
        else:
            conf = os.path.join(work, f"gunicorn-{self.port}.py")
            with open(conf, "w") as f:
                f.write(GUNICORN_CONF.format(port=self.port, workers=workers,
                                             timeout=f"timeout = {timeout}" if timeout else "",
                                             hook=HOOK if mode.endswith("+heartbeat") else ""))
            env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-export-metrics-")
            cmd = [sys.executable, "-m", "gunicorn", "-c", conf, "receiver.wsgi:app"]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=work)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/-/healthy", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"receiver did not start; see {self.log.name}")

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def download(port: int, path: str, params: dict) -> dict:
    started = time.perf_counter()
    lines = size = 0
    complete = True
    try:
        with requests.get(f"http://127.0.0.1:{port}{path}", params=params, stream=True, timeout=600) as r:
            r.raise_for_status()
            for chunk in r.iter_content(1 << 20):
                size += len(chunk)
                lines += chunk.count(b"\n")
    except requests.exceptions.ChunkedEncodingError:
        complete = False  # the worker died mid-stream (gunicorn's timeout)
    fmt = params.get("format", "csv")
    # CSV: a header line. JSON: "[", one line an object, "]" (an empty array is "[\n]\n"). NDJSON: a line an object.
    rows = {"csv": lines - 1, "json": lines - 2}.get(fmt, lines)
    return {"seconds": time.perf_counter() - started, "bytes": size, "rows": max(rows, 0), "complete": complete}


def expected_rows(url: str, params: dict) -> int:
    from werkzeug.datastructures import MultiDict

    from receiver.store.db import create_db_engine
    from receiver.store.queries import count_alerts
    from receiver.web.params import alert_filter

    db = create_db_engine(url)
    try:
        with db.connect() as conn:
            return count_alerts(conn, alert_filter(MultiDict({k: v for k, v in params.items() if k != "format"})))
    finally:
        db.dispose()


def _run_case(server: Server, name: str, path: str, params: dict, want: int) -> dict:
    before = {pid: status_kb(pid, "VmHWM") for pid in server.workers()}
    result = download(server.port, path, params)
    after = {pid: status_kb(pid, "VmHWM") for pid in server.workers()}
    # The worker that served it is the one whose high-water mark moved (else: the highest; a killed worker is gone).
    grown = [after[p] for p in after if after[p] != before.get(p)]
    peak_kb = max(grown or list(after.values()) or [0])
    result.update(case=name, server=server.label, expected=want, peak_rss_mb=peak_kb / 1024,
                  idle_rss_mb=min(before.values(), default=0) / 1024,
                  ok=result["complete"] and result["rows"] == want)
    print(f"  {name:24} {server.label:16} {result['rows']:>9,}/{want:<9,} rows  {result['seconds']:6.1f} s  "
          f"{result['rows'] / max(result['seconds'], 1e-9):>8,.0f} rows/s  {result['bytes'] / 1e6:7.1f} MB  "
          f"worker peak RSS {result['peak_rss_mb']:4.0f} MB (idle {result['idle_rss_mb']:.0f})  "
          f"{'OK' if result['ok'] else 'CUT OFF' if not result['complete'] else 'ROWS MISSING'}", flush=True)
    return result


def measure_exports(url: str, work: str, workers: int, timeout_s: int) -> list[dict]:
    """Every case through `serve`. Then the timeout: the slowest full export under gunicorn with the receiver's
    settings but a timeout of a third of its duration, without and with the heartbeat hook; and any case that was
    cut off, or came close to the timeout, again with the hook."""
    out = []
    cases = [(name, path, params, expected_rows(url, params)) for name, path, params in CASES]
    server = Server(url, work, workers)
    try:
        for name, path, params, want in cases:
            out.append(_run_case(server, name, path, params, want))
    finally:
        server.stop()
    slowest = max(out, key=lambda r: r["seconds"])
    short = max(3, int(slowest["seconds"] / 3))
    again = [c for c in cases if c[0] == slowest["case"]]
    again += [c for c, r in zip(cases, out) if c[0] != slowest["case"] and (not r["ok"] or r["seconds"] > 0.8 * timeout_s)]
    for mode, timeout in (("gunicorn", short), ("gunicorn+heartbeat", short), ("gunicorn+heartbeat", None)):
        if mode == "gunicorn+heartbeat" and timeout is None and len(again) == 1:
            continue  # nothing came close to the real timeout
        server = Server(url, work, workers, mode, timeout)
        try:
            for name, path, params, want in (again[:1] if timeout else again[1:]):
                out.append(_run_case(server, name, path, params, want))
        finally:
            server.stop()
    return out


def _probe(url: str, stop, results) -> None:
    """Another process writing one row every 20 ms through the receiver's writer lock: what a webhook waits."""
    from receiver.store.db import create_db_engine, write_transaction

    db = create_db_engine(url)
    waits = []
    while not stop.is_set():
        t = time.perf_counter()
        with write_transaction(db) as conn:
            conn.execute(sa.text("SELECT 1"))
        waits.append(time.perf_counter() - t)
        stop.wait(0.02)
    results.put(waits)


def measure_retention(url: str) -> list[dict]:
    import multiprocessing

    from receiver.engine import retention
    from receiver.store.write_port import DirectWrites
    from receiver.store.db import create_db_engine

    db = create_db_engine(url)
    out = []
    ctx = multiprocessing.get_context("spawn")
    try:
        for days, batch in ((80, 250), (70, 500), (60, 2000)):
            cutoff = retention.cutoff_for(NOW, dt.timedelta(days=days))
            stop, results = ctx.Event(), ctx.Queue()
            probe = ctx.Process(target=_probe, args=(url, stop, results))
            probe.start()
            time.sleep(1.0)
            batches: list[float] = []
            started = time.perf_counter()
            result = retention.purge(DirectWrites(db), cutoff, batch_size=batch,
                                     progress=lambda r: batches.append(r.last_batch_seconds))
            total = time.perf_counter() - started
            stop.set()
            waits = sorted(results.get(timeout=30))
            probe.join(10)
            batches.sort()

            def pct(values, q):
                return 1000 * values[min(len(values) - 1, int(len(values) * q))] if values else 0.0

            row = {"cutoff_days": days, "batch": batch, "alerts": result.counts.alerts,
                   "events": result.counts.events, "notifications": result.counts.notifications,
                   "rollup_rows": result.counts.rollup_rows, "seconds": total,
                   "alerts_per_s": result.counts.alerts / total if total else 0,
                   "batch_p50_ms": pct(batches, 0.5), "batch_p99_ms": pct(batches, 0.99),
                   "batch_max_ms": 1000 * result.longest_batch_seconds,
                   "writer_wait_p50_ms": pct(waits, 0.5), "writer_wait_p99_ms": pct(waits, 0.99),
                   "writer_wait_max_ms": 1000 * waits[-1] if waits else 0}
            out.append(row)
            print(f"  purge before {cutoff.date()} batch {batch:>5}: {row['alerts']:>7,} alerts "
                  f"({row['events']:,} events) in {total:5.1f} s = {row['alerts_per_s']:>6,.0f}/s; batch "
                  f"p50 {row['batch_p50_ms']:.0f} ms p99 {row['batch_p99_ms']:.0f} ms max {row['batch_max_ms']:.0f} ms; "
                  f"a writer in another process waited p50 {row['writer_wait_p50_ms']:.0f} ms, "
                  f"p99 {row['writer_wait_p99_ms']:.0f} ms, max {row['writer_wait_max_ms']:.0f} ms", flush=True)
    finally:
        db.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-retention", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    from receiver.gunicorn_conf import settings

    timeout_s = settings("127.0.0.1", 1)["timeout"]
    work = tempfile.mkdtemp(prefix="bench-export-")
    pg = None
    report = {"alerts": args.alerts, "gunicorn_timeout_s": timeout_s, "backends": {}}
    failed = False
    try:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite:///{work}/export.db"
            else:
                from ingest import DurablePostgres

                pg = DurablePostgres().start()
                url = pg.create_database("export")
            seconds = seed(url, args.alerts)
            print(f"{backend}: seeded {args.alerts:,} alerts with events and notifications in {seconds:.0f} s",
                  flush=True)
            exports = measure_exports(url, work, args.workers, timeout_s)
            for r in exports:
                # A case counts by its run with the heartbeat when it had one; the short-timeout runs are demos.
                if "timeout" in r["server"]:
                    continue
                last = [x for x in exports if x["case"] == r["case"] and "timeout" not in x["server"]][-1]
                failed |= r is last and (not r["ok"] or r["peak_rss_mb"] >= TARGET_RSS_MB)
            purges = [] if args.no_retention else measure_retention(url)
            report["backends"][backend] = {"seed_seconds": seconds, "exports": exports, "retention": purges}
    finally:
        if pg is not None and not args.keep:
            pg.cleanup()
    path = os.path.join(REPO, "bench", "results", f"export-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"results: {path}" + ("" if args.keep else f"  (work dir {work})"))
    print("medians:", {b: statistics.median([e["rows"] / e["seconds"] for e in v["exports"] if e["seconds"]])
                       for b, v in report["backends"].items()})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
