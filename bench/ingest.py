#!/usr/bin/env python3
"""Sustained webhook ingest through gunicorn, against the bare ceiling of the same stack.

    python3 bench/ingest.py [--duration 10] [--backends sqlite,postgresql] [--sizes 1,10,100]

For every body size: a bare Flask app under the receiver's own gunicorn settings (bench/bare_app.py: parse the
JSON, answer 200) gives the ceiling; then `alert-receiver serve` on a fresh database per backend × size takes the
same load. The load is Debian's `wrk` with bench/wrk_webhook.lua (new fingerprints on every request). After each
receiver run the server is stopped with SIGTERM (graceful: in-flight requests finish) and the database is counted:
alerts stored vs alerts acknowledged with 2xx, their events, notification items and messages.

Prints a table per backend × size and writes bench/results/ingest-<timestamp>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, REPO)

LUA = os.path.join(BENCH_DIR, "wrk_webhook.lua")
BARE = os.path.join(BENCH_DIR, "bare_app.py")
RESULTS = os.path.join(BENCH_DIR, "results")
TOKEN = "bench-webhook-token-0123456789abcdef"
CLK_TCK = os.sysconf("SC_CLK_TCK")
NOISY_CORES = 0.1  # CPU used by processes outside the bench above which a run is flagged

# The issues' targets (#6 for SQLite, #20 for PostgreSQL). (backend, alerts per body) -> description; checked in
# verdict().
TARGETS = {
    ("sqlite", 100): "≥10000 alerts/s",
    ("postgresql", 100): "≥15000 alerts/s",
    ("sqlite", 1): "≥20% bare req/s, p99<50ms",
    ("postgresql", 1): "≥20% bare req/s, p99<50ms",
}


# --- small helpers --------------------------------------------------------------------------------------------


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, deadline_s: float, log_path: str) -> None:
    """Poll `url` until it answers 200; fail if the process dies or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before ready:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = type(exc).__name__
        time.sleep(0.05)  # poll interval, bounded by the deadline above
    raise RuntimeError(f"{url} not ready after {deadline_s}s ({last}):\n{tail(log_path)}")


def stop(proc: subprocess.Popen, timeout: float = 40) -> int:
    """SIGTERM (gunicorn: graceful, in-flight requests finish) and wait; SIGKILL only past the timeout."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def proc_snapshot() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime+stime clock ticks) for every live process."""
    procs: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(")") + 2:].split()
        procs[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return procs


def cpu_by_group(before: dict, after: dict, roots: dict[str, int], wall: float) -> dict[str, float]:
    """CPU (in cores) used over a run by each process tree in `roots`, by kernel threads, and by everything else
    ("foreign": other users of this machine, e.g. a test suite running alongside, which makes the numbers unreliable).
    Processes that started during the run count from zero; processes that ended during it are missed."""
    by_root = {pid: name for name, pid in roots.items()}
    out = {name: 0.0 for name in roots}
    out.update(kernel=0.0, foreign=0.0)
    for pid, (ppid, ticks) in after.items():
        delta = ticks - before.get(pid, (0, 0))[1]
        if delta <= 0:
            continue
        group, p, seen = "foreign", pid, 0
        while p and seen < 64:
            if p in by_root:
                group = by_root[p]
                break
            if p == 2:
                group = "kernel"
                break
            p = after.get(p, before.get(p, (0, 0)))[0]
            seen += 1
        out[group] += delta / CLK_TCK / wall
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def server_split(before: dict, after: dict, root: int, wall: float) -> dict[str, float]:
    """The server tree's CPU (cores) by role: `workers` = the gunicorn workers, `writer` = the SQLite writer,
    `engine` = the escalation engine's process (`receiver worker`), `arbiter` = serve's own process."""
    out = {"workers": 0.0, "writer": 0.0, "engine": 0.0, "arbiter": 0.0}
    for pid, (ppid, ticks) in after.items():
        delta = ticks - before.get(pid, (0, 0))[1]
        if delta <= 0:
            continue
        p, seen, inside = pid, 0, False
        while p and seen < 64:
            if p == root:
                inside = True
                break
            p = after.get(p, before.get(p, (0, 0)))[0]
            seen += 1
        if not inside:
            continue
        cmdline = _cmdline(pid)
        role = ("arbiter" if pid == root else "writer" if "receiver.writer" in cmdline or "_writer" in cmdline
                else "engine" if " worker -c " in cmdline or cmdline.endswith(" worker") else "workers")
        out[role] += delta / CLK_TCK / wall
    return out


_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def system_ticks() -> list[int]:
    """All-CPU jiffies from /proc/stat: user nice system idle iowait irq softirq steal."""
    with open("/proc/stat") as f:
        return [int(v) for v in f.readline().split()[1:9]]


def system_breakdown(before: list[int], after: list[int], wall: float) -> dict:
    """Machine-wide CPU use over a run, in cores; `busy` excludes idle, iowait and steal."""
    d = {name: (a - b) / CLK_TCK / wall for name, a, b in zip(_STAT_FIELDS, after, before)}
    d["busy"] = sum(v for k, v in d.items() if k not in ("idle", "iowait", "steal"))
    return d


def idle_check(seconds: float = 1.0) -> float:
    """Cores used by other processes while the bench does nothing."""
    before = proc_snapshot()
    t0 = time.monotonic()
    time.sleep(seconds)  # measuring the machine at rest: the sleep is the measurement
    after = proc_snapshot()
    return round(cpu_by_group(before, after, {"bench": os.getpid()}, time.monotonic() - t0)["foreign"], 3)


def wait_quiet(max_seconds: float) -> float:
    """Wait (up to max_seconds) until other processes use less than NOISY_CORES; return what they used last."""
    deadline = time.monotonic() + max_seconds
    while True:
        used = idle_check(1.0)
        if used <= NOISY_CORES or time.monotonic() >= deadline:
            return used


# --- wrk --------------------------------------------------------------------------------------------------------


def run_wrk(port: int, *, alerts: int, prefix: str, seconds: float, threads: int, connections: int,
            token: str, watch: dict[str, int], log_dir: str) -> dict:
    """One wrk run; returns wrk's summary plus CPU use of wrk (rusage) and of the `watch` process trees."""
    env = {**os.environ, "BENCH_ALERTS": str(alerts), "BENCH_PREFIX": prefix, "BENCH_TOKEN": token,
           "BENCH_PATH": "/webhook"}
    out_path = os.path.join(log_dir, f"wrk-{prefix}.out")
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", LUA, f"http://127.0.0.1:{port}/webhook"]
    procs_before = proc_snapshot()
    sys_before = system_ticks()
    started = time.monotonic()
    with open(out_path, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, rusage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    sys_after = system_ticks()
    procs_after = proc_snapshot()
    text = open(out_path).read()
    line = next((l for l in text.splitlines() if l.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {' '.join(cmd)}\n{text[-2000:]}")
    result = json.loads(line[len("BENCH_JSON "):])
    ncpu = os.cpu_count() or 1
    cpu = cpu_by_group(procs_before, procs_after, {**watch, "bench": os.getpid()}, wall)
    cpu["wrk"] = (rusage.ru_utime + rusage.ru_stime) / wall  # wrk is reaped by now: its rusage, not /proc
    if "server" in watch:
        split = server_split(procs_before, procs_after, watch["server"], wall)
        if "writer" in watch:  # a writer the bench started itself (--sqlite-writer bench)
            split["writer"] += cpu.get("writer", 0.0)
        result["server_cores"] = {k: round(v, 3) for k, v in split.items()}
    result["machine_cores"] = {k: round(v, 3) for k, v in system_breakdown(sys_before, sys_after, wall).items()}
    result["cpu_cores"] = {k: round(v, 3) for k, v in cpu.items()}  # in cores (1.0 = one core busy)
    result["cpu_count"] = ncpu
    result["wall_s"] = round(wall, 3)
    return result


def summarise(w: dict, alerts: int) -> dict:
    seconds = w["duration_us"] / 1e6
    errors = w["errors"]
    ok = w["requests"] - errors["status"]
    p = w["latency_us"]["percentiles"]
    return {
        "requests": w["requests"],
        "ok_requests": ok,
        "non_2xx": errors["status"],
        "socket_errors": {k: v for k, v in errors.items() if k != "status"},
        "seconds": round(seconds, 3),
        "req_per_s": w["requests"] / seconds,
        "ok_req_per_s": ok / seconds,
        "alerts_per_s": ok * alerts / seconds,
        "p50_ms": p["50"] / 1000,
        "p90_ms": p["90"] / 1000,
        "p99_ms": p["99"] / 1000,
        "p999_ms": p["99.9"] / 1000,
        "max_ms": w["latency_us"]["max"] / 1000,
        "cpu_cores": w.get("cpu_cores", {}),  # absent when the caller measures CPU itself (scaleout.py)
        "server_cores": w.get("server_cores", {}),
        "machine_cores": w.get("machine_cores", {}),
        # CPU milliseconds per answered webhook, by role (the issue compares the workers' across backends)
        "cpu_ms_per_webhook": {k: round(v * 1000 / (ok / seconds), 3) if ok else None
                               for k, v in {**w.get("server_cores", {}),
                                            "postgres": w.get("cpu_cores", {}).get("postgres", 0.0)}.items()},
    }


# --- servers ----------------------------------------------------------------------------------------------------


def start_bare(port: int, workers: int | None, log_path: str, *, sync: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, BARE, "--host", "127.0.0.1", "--port", str(port)]
    if workers and not sync:
        cmd += ["--workers", str(workers)]
    if sync:
        cmd += ["--sync"]
    return subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, cwd=REPO)


def ensure_writer(url: str, mode: str, log_path: str) -> tuple[subprocess.Popen | None, str]:
    """SQLite group commit: `serve` starts the writer process itself once it is wired in; until then (or with
    --sqlite-writer bench) the bench starts it beside the server, on the same database. Returns (process we started,
    how the writer runs: serve | bench | none)."""
    from receiver.writer.wire import socket_path

    if mode == "none":
        return None, "none"
    path = socket_path(url[len("sqlite:///"):])
    if mode == "auto":
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if os.path.exists(path):
                return None, "serve"
            time.sleep(0.05)  # polling for serve's writer, bounded by the deadline
    cmd = [sys.executable, "-m", "receiver.writer", "--database-url", url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    proc = subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, cwd=REPO, env=env)
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"SQLite writer did not start:\n{tail(log_path)}")
        time.sleep(0.05)  # polling for its socket, bounded by the deadline
    return proc, "bench"


def write_config(path: str, url: str, token: str) -> None:
    import yaml

    config = {"database": {"url": url}}
    if token:
        config["auth"] = {"tokens": [{"name": "bench", "token": token, "role": "webhook"}]}
    with open(path, "w") as f:
        yaml.safe_dump(config, f)


def start_receiver(port: int, workers: int | None, config_path: str, log_path: str, *,
                   engine: bool = True) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "receiver", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers:
        cmd += ["--workers", str(workers)]
    if not engine:
        cmd += ["--no-engine"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECEIVER_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env["RECEIVER_CONFIG"] = config_path
    return subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, cwd=REPO, env=env)


class DurablePostgres:
    """PostgreSQL 15 with its durable defaults (fsync, synchronous_commit, full_page_writes all on), unlike the
    test server in tests/support/postgres.py, which turns them off for speed."""

    def __init__(self):
        from tests.support.postgres import PostgresServer

        self.server = PostgresServer()
        self.opts = (f"-p {self.server.port} -c listen_addresses=127.0.0.1 -k {self.server.root} "
                     f"-c max_connections=200")
        self.statements = False

    def track_statements(self) -> None:
        """Load pg_stat_statements (--pg-statements): what PostgreSQL spends its time on, per statement."""
        self.statements = True
        self.opts += " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"

    def _admin(self):
        import psycopg

        return psycopg.connect(f"host=127.0.0.1 port={self.server.port} user={self.server.user} dbname=postgres",
                               autocommit=True)

    def reset_statements(self) -> None:
        with self._admin() as c:
            c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            c.execute("SELECT pg_stat_statements_reset()")

    def top_statements(self, n: int) -> list[dict]:
        with self._admin() as c:
            rows = c.execute("SELECT calls, total_exec_time, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 110)"
                             " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT %s", (n,)).fetchall()
        return [{"calls": calls, "ms": round(ms, 1), "rows": nrows, "query": q} for calls, ms, nrows, q in rows]

    def start(self) -> "DurablePostgres":
        s = self.server
        subprocess.run(s._cmd(s.initdb, "-D", s.data, "-A", "trust", "-U", s.user, "-E", "UTF8", "--locale=C"),
                       check=True, capture_output=True)
        subprocess.run(s._cmd(s.pg_ctl, "-D", s.data, "-o", self.opts, "-l", os.path.join(s.root, "log"),
                              "-w", "-t", "60", "start"), check=True, capture_output=True)
        return self

    def settings(self) -> dict:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.server.port} user={self.server.user} dbname=postgres") as c:
            return {name: c.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method",
                                 "shared_buffers")}

    def postmaster_pid(self) -> int:
        with open(os.path.join(self.server.data, "postmaster.pid")) as f:
            return int(f.readline())

    def create_database(self, name: str) -> str:
        return self.server.create_database(name)

    def drop_database(self, url: str) -> None:
        """Drop a finished case's database and flush what it left in shared buffers, so that the next case does not
        pay for it: its autovacuum and the checkpoint of its pages ran inside the next cases' measured runs (the
        same round's 100-alert case measured 10.7 against 7.0 ms of PostgreSQL CPU per webhook run alone)."""
        with self._admin() as c:
            c.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
            c.execute("CHECKPOINT")

    def cleanup(self) -> None:
        self.server.cleanup()


def count_rows(url: str, prefix: str) -> dict:
    """What the measured phase left in the database (alerts whose fingerprint starts with its prefix)."""
    import sqlalchemy as sa

    from receiver.store.db import normalise_url

    engine = sa.create_engine(normalise_url(url))
    like = prefix + "%"
    try:
        with engine.connect() as conn:
            def q(sql):
                return conn.execute(sa.text(sql), {"like": like} if ":like" in sql else {}).scalar_one()

            counts = {
                "alerts": q("SELECT count(*) FROM alerts WHERE fingerprint LIKE :like"),
                "events": q("SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
                            "WHERE a.fingerprint LIKE :like"),
                "notification_items": q("SELECT count(*) FROM notification_items i JOIN alerts a ON a.id = i.alert_id "
                                        "WHERE a.fingerprint LIKE :like"),
                "notifications": q("SELECT count(DISTINCT i.notification_id) FROM notification_items i "
                                   "JOIN alerts a ON a.id = i.alert_id WHERE a.fingerprint LIKE :like"),
                "webhook_bodies_total": q("SELECT count(*) FROM webhook_bodies"),
                "alerts_total": q("SELECT count(*) FROM alerts"),
            }
            if engine.dialect.name == "sqlite":
                counts["sqlite_journal_mode"] = conn.exec_driver_sql("PRAGMA journal_mode").scalar_one()
    finally:
        engine.dispose()
    return counts


def sqlite_sizes(directory: str) -> dict:
    return {name: os.path.getsize(os.path.join(directory, name)) for name in sorted(os.listdir(directory))
            if name.startswith("bench.db")}


# --- one case ---------------------------------------------------------------------------------------------------


def new_prefix(phase: int) -> str:
    return f"{random.getrandbits(16):04x}{phase:02x}"


def load(port: int, alerts: int, args, watch: dict[str, int], log_dir: str,
         before_measure=None) -> tuple[str, dict, dict]:
    """Warm up, then measure. Returns the measured phase's fingerprint prefix, wrk result, summary."""
    if args.warmup > 0:
        run_wrk(port, alerts=alerts, prefix=new_prefix(0), seconds=args.warmup, threads=args.threads,
                connections=args.connections, token=args.token, watch=watch, log_dir=log_dir)
    if before_measure is not None:
        before_measure()
    prefix = new_prefix(1)
    w = run_wrk(port, alerts=alerts, prefix=prefix, seconds=args.duration, threads=args.threads,
                connections=args.connections, token=args.token, watch=watch, log_dir=log_dir)
    return prefix, w, summarise(w, alerts)


def run_bare(alerts: int, args, work: str, *, sync: bool = False) -> dict:
    """The bare app under the receiver's gunicorn settings, or (sync) under classic sync workers."""
    port = free_port()
    name = "bare-sync" if sync else "bare"
    log_path = os.path.join(work, f"{name}-{alerts}.log")
    proc = start_bare(port, args.workers, log_path, sync=sync)
    try:
        wait_ready(f"http://127.0.0.1:{port}/-/ready", proc, 30, log_path)
        _, w, s = load(port, alerts, args, {"server": proc.pid}, work)
    finally:
        stop(proc)
    return {"backend": name, "alerts_per_webhook": alerts, **s, "wrk": w}


def ceiling(runs: list[dict]) -> dict:
    """The faster of a round's bare runs: the ceiling that round's ratios are taken against."""
    return max(runs, key=lambda r: r["req_per_s"])


def run_receiver(backend: str, alerts: int, args, work: str, pg: DurablePostgres | None) -> dict:
    case_dir = tempfile.mkdtemp(prefix=f"{backend}-{alerts}-", dir=work)
    if backend == "sqlite":
        url = f"sqlite:///{os.path.join(case_dir, 'bench.db')}"
    else:
        url = pg.create_database(f"bench_{alerts}_{time.monotonic_ns()}")
    config_path = os.path.join(case_dir, "receiver.yml")
    write_config(config_path, url, args.token)
    port = free_port()
    log_path = os.path.join(case_dir, "receiver.log")
    proc = start_receiver(port, args.workers, config_path, log_path, engine=args.engine)
    watch = {"server": proc.pid}
    if pg is not None:
        watch["postgres"] = pg.postmaster_pid()
    writer, writer_log, writer_mode = None, os.path.join(case_dir, "writer.log"), "none"
    try:
        wait_ready(f"http://127.0.0.1:{port}/-/ready", proc, 60, log_path)
        if backend == "sqlite":
            writer, writer_mode = ensure_writer(url, args.sqlite_writer, writer_log)
            if writer is not None:
                watch["writer"] = writer.pid
        track = pg is not None and pg.statements
        prefix, w, s = load(port, alerts, args, watch, case_dir, before_measure=pg.reset_statements if track else None)
        if track:
            s["pg_statements"] = pg.top_statements(args.pg_statements)
            for st in s["pg_statements"]:
                print(f"      {st['ms']:9.1f} ms {st['calls']:7d} calls {st['rows']:8d} rows  {st['query']}")
    finally:
        code = stop(proc)
        if writer is not None:
            writer_code = stop(writer)
            if writer_code not in (0, None):
                code = code or f"writer {writer_code}"
    counts = count_rows(url, prefix)
    acked = s["ok_requests"] * alerts
    in_flight_bound = (args.connections + s["socket_errors"]["timeout"] + s["socket_errors"]["read"]) * alerts
    extra = counts["alerts"] - acked
    problems = []
    if extra < 0:
        problems.append(f"LOST: {-extra} acknowledged alerts not stored")
    if extra > in_flight_bound:
        problems.append(f"{extra} more alerts stored than acknowledged (bound {in_flight_bound})")
    if counts["events"] < counts["alerts"]:
        problems.append(f"events {counts['events']} < alerts {counts['alerts']}")
    if counts["notification_items"] < counts["alerts"]:
        problems.append(f"notification_items {counts['notification_items']} < alerts {counts['alerts']}")
    if counts["notifications"] == 0 and counts["alerts"]:
        problems.append("no notifications")
    if s["non_2xx"]:
        problems.append(f"{s['non_2xx']} non-2xx responses")
    log_text = open(log_path, errors="replace").read()
    if os.path.exists(writer_log):
        log_text += open(writer_log, errors="replace").read()
    error_lines = [l for l in log_text.splitlines() if "ERROR" in l or "Traceback" in l or "level=error" in l]
    if error_lines:
        problems.append(f"{len(error_lines)} error lines in the server log, e.g. {error_lines[0][:200]}")
    if code not in (0, None):
        problems.append(f"server exit code {code}")
    result = {
        "backend": backend, "alerts_per_webhook": alerts, **s, "wrk": w, "prefix": prefix,
        "acknowledged_alerts": acked, "stored": counts, "stored_minus_acknowledged": extra,
        "in_flight_bound": in_flight_bound, "integrity_ok": not problems, "problems": problems,
        "server_log_tail": tail(log_path, 10) if problems else "",
        "sqlite_writer": writer_mode,
    }
    if backend == "sqlite":
        result["sqlite_files"] = sqlite_sizes(case_dir)
    if not args.keep:
        if backend == "sqlite":
            shutil.rmtree(case_dir, ignore_errors=True)
        else:
            pg.drop_database(url)
    return result


def verdict(r: dict) -> tuple[str, bool | None]:
    """The issue's target for a receiver case, on its medians over the rounds (`ratio_to_bare`, `p99_ms`,
    `alerts_per_s` of the summary row); every round must also pass the integrity check."""
    key = (r["backend"], r["alerts_per_webhook"])
    if key == ("sqlite", 100):
        ok = r["alerts_per_s"] >= 10_000
    elif key == ("postgresql", 100):
        ok = r["alerts_per_s"] >= 15_000
    elif key in (("sqlite", 1), ("postgresql", 1)):
        ok = r["ratio_to_bare"] >= 0.20 and r["p99_ms"] < 50
    else:
        return "—", None
    ok = ok and r["integrity_ok"]
    return ("PASS" if ok else "FAIL"), ok


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def summarise_rounds(runs: list[dict]) -> dict:
    """One row for the rounds of a case: the run with the median ratio (its wrk numbers shown), and the medians of
    ratio, req/s, alerts/s and p99 over the rounds, which the verdict uses."""
    ordered = sorted(runs, key=lambda r: r.get("ratio_to_bare", r["req_per_s"]))
    row = dict(ordered[(len(ordered) - 1) // 2])
    row["rounds"] = len(runs)
    for key in ("ok_req_per_s", "req_per_s", "alerts_per_s", "p50_ms", "p99_ms"):
        row[key] = median([r[key] for r in runs])
    if "ratio_to_bare" in row:
        row["ratio_to_bare"] = median([r["ratio_to_bare"] for r in runs])
        row["ratios"] = [round(r["ratio_to_bare"], 3) for r in runs]
        row["integrity_ok"] = all(r["integrity_ok"] for r in runs)
        row["problems"] = [p for r in runs for p in r["problems"]]
    return row


# --- main -------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description="webhook ingest benchmark: receiver vs bare Flask ceiling")
    parser.add_argument("--duration", type=float, default=10, help="measured seconds per case [10]")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per case, not measured [2]")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="1,10,100", help="alerts per webhook")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers [receiver default: CPUs, at least 2]")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads [2]")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections [16]")
    parser.add_argument("--no-token", dest="token", action="store_const", const="", default=TOKEN,
                        help="run the receiver without auth tokens (default: one webhook bearer token)")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="before each case, wait up to SECONDS for other processes to go quiet [0: just check]")
    parser.add_argument("--noisy-retries", type=int, default=2, metavar="N",
                        help="run a case again (up to N times) when other processes disturbed it [2]")
    parser.add_argument("--no-engine", dest="engine", action="store_false",
                        help="serve without its escalation engine (which delivers every notification the load creates "
                             "while it is measured): the ingest path alone")
    parser.add_argument("--sqlite-writer", choices=["auto", "bench", "none"], default="auto",
                        help="SQLite group-commit writer: auto = serve's own, else started by the bench [auto]; "
                             "none = workers write directly (unless serve starts one)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per body size, each measuring the ceiling and then the receiver; the table shows "
                             "medians over the rounds [3]")
    parser.add_argument("--pg-statements", type=int, default=0, metavar="N",
                        help="print PostgreSQL's N most expensive statements of each measured run (pg_stat_statements)")
    parser.add_argument("--keep", action="store_true", help="keep databases and logs (printed at the end)")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    for b in backends:
        if b not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {b!r}")
    if not shutil.which("wrk"):
        parser.error("wrk not found: apt-get install wrk")

    from receiver.gunicorn_conf import settings

    gconf = settings("127.0.0.1", 0, workers=args.workers)
    work = tempfile.mkdtemp(prefix="alert-receiver-bench-")
    started = dt.datetime.now(dt.timezone.utc)
    meta = {
        "started": started.isoformat(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
        "duration_s": args.duration, "warmup_s": args.warmup, "wrk": {"threads": args.threads, "connections": args.connections},
        "gunicorn": {k: v for k, v in gconf.items() if not callable(v)}, "auth_token": bool(args.token),
        "engine": args.engine, "sqlite_writer": args.sqlite_writer,
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip(),
        "git_dirty": bool(subprocess.run(["git", "status", "--porcelain", "receiver"], cwd=REPO, capture_output=True,
                                         text=True).stdout.strip()),
    }
    print(f"alert-receiver ingest bench: {meta['cpus']} CPUs, gunicorn {gconf['worker_class']} × {gconf['workers']}"
          f"{' × ' + str(gconf['threads']) + ' threads' if gconf.get('threads') else ''}, "
          f"wrk -t{args.threads} -c{args.connections}, {args.warmup:g}s warm-up + {args.duration:g}s per case, "
          f"auth {'on' if args.token else 'off'}, engine {'on' if args.engine else 'off'}, "
          f"SQLite writer {args.sqlite_writer}", flush=True)

    meta["idle_check_foreign_cores"] = quiet = wait_quiet(args.wait_quiet)
    if quiet > NOISY_CORES:
        print(f"WARNING: before starting, other processes use {quiet:.2f} cores of {os.cpu_count()}: "
              "the numbers will be low and noisy", flush=True)

    bare_runs: dict[tuple[str, int], list[dict]] = {}
    receiver_runs: dict[tuple[str, int], list[dict]] = {}
    pg = None

    def measured(what: str, run) -> dict:
        for attempt in range(1 + args.noisy_retries):
            wait_quiet(args.wait_quiet)
            print(f"  {what} …", end=" ", flush=True)
            r = run()
            rate = r.get("ok_req_per_s", r["req_per_s"])
            if not noise(r) or attempt == args.noisy_retries:
                return r
            print(f"{rate:.0f} req/s{noise(r)}: again", flush=True)

    try:
        if "postgresql" in backends:
            pg = DurablePostgres()
            if args.pg_statements:
                pg.track_statements()
            pg.start()
            meta["postgresql"] = pg.settings()
        # Rounds interleave the ceiling and the receiver, so that a drift of the machine (a VM's neighbours) over
        # the minutes of a run moves both; each round's ratio is taken against that round's own ceiling.
        for n in sizes:
            for rnd in range(1, args.rounds + 1):
                label = f"round {rnd}/{args.rounds}, {n} alert(s)/webhook"
                runs = []
                for sync in (False, True):
                    r = measured(f"bare{'-sync' if sync else ''}, {label}", lambda: run_bare(n, args, work, sync=sync))
                    print(f"{r['req_per_s']:.0f} req/s{noise(r)}", flush=True)
                    runs.append(r)
                    bare_runs.setdefault((r["backend"], n), []).append(r)
                top = ceiling(runs)
                for backend in backends:
                    r = measured(f"{backend}, {label}", lambda: run_receiver(backend, n, args, work, pg))
                    r["round"] = rnd
                    r["ceiling"] = top["backend"]
                    r["ceiling_req_per_s"] = top["req_per_s"]
                    r["ratio_to_bare"] = r["ok_req_per_s"] / top["req_per_s"] if top["req_per_s"] else 0.0
                    receiver_runs.setdefault((backend, n), []).append(r)
                    print(f"{r['ok_req_per_s']:.0f} req/s, {r['alerts_per_s']:.0f} alerts/s, p99 {r['p99_ms']:.1f} ms, "
                          f"÷bare {r['ratio_to_bare']:.2f}{noise(r)}"
                          + ("" if r["integrity_ok"] else f"  !! {'; '.join(r['problems'])}"), flush=True)
    finally:
        if pg is not None:
            pg.cleanup()

    bare = {key: summarise_rounds(runs) for key, runs in bare_runs.items()}
    results = []
    for backend in backends:
        for n in sizes:
            row = summarise_rounds(receiver_runs[(backend, n)])
            row["target"] = TARGETS.get((backend, n), "")
            row["verdict"], _ = verdict(row)
            results.append(row)
    print_table(bare, results, sizes)
    os.makedirs(RESULTS, exist_ok=True)
    out = os.path.join(RESULTS, f"ingest-{started.strftime('%Y%m%dT%H%M%SZ')}.json")
    with open(out, "w") as f:
        json.dump({"meta": meta, "summary": {"bare": list(bare.values()), "receiver": results},
                   "bare_runs": [r for runs in bare_runs.values() for r in runs],
                   "receiver_runs": [r for runs in receiver_runs.values() for r in runs]}, f, indent=2, default=str)
    print(f"\nresults: {out}")
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["integrity_ok"] for runs in receiver_runs.values() for r in runs) else 1


def noise(r: dict) -> str:
    other = r["cpu_cores"].get("foreign", 0)
    return f"  (other processes used {other:.2f} cores: unreliable)" if other > NOISY_CORES else ""


def print_cpu_per_webhook(results: list[dict], sizes: list[int]) -> None:
    """CPU ms per webhook by role, and the workers' PostgreSQL ÷ SQLite ratio per body size."""
    print(f"\n{'CPU ms per webhook':<20}{'alerts/wh':>9}{'workers':>9}{'writer':>8}{'engine':>8}{'arbiter':>8}"
          f"{'postgres':>9}{'total':>8}")
    for r in results:
        c = r.get("cpu_ms_per_webhook") or {}
        if not c:
            continue
        total = sum(v for v in c.values() if v)
        print(f"{r['backend']:<20}{r['alerts_per_webhook']:>9}{c.get('workers') or 0:>9.2f}{c.get('writer') or 0:>8.2f}"
              f"{c.get('engine') or 0:>8.2f}{c.get('arbiter') or 0:>8.2f}{c.get('postgres') or 0:>9.2f}{total:>8.2f}")
    for n in sizes:
        by = {r["backend"]: r.get("cpu_ms_per_webhook") or {} for r in results if r["alerts_per_webhook"] == n}
        pg, lite = by.get("postgresql", {}).get("workers"), by.get("sqlite", {}).get("workers")
        if pg and lite:
            print(f"workers' CPU per webhook, PostgreSQL ÷ SQLite, {n} alert(s): {pg / lite:.2f}")


def print_table(bare: dict[tuple[str, int], dict], results: list[dict], sizes: list[int]) -> None:
    head = (f"\n{'backend':<11}{'alerts/wh':>9}{'req/s':>9}{'alerts/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}"
            f"{'÷bare':>7}  {'cpu srv/db/wrk/other':<21}{'stored/acked':>16}{'events':>8}{'items':>8}{'msgs':>7}"
            f"  {'target':<27}{'result'}")
    print(head)
    print("-" * (len(head) + 4))

    def cpu(r):
        c = r["cpu_cores"]
        return f"{c.get('server', 0) + c.get('writer', 0):.2f}/{c.get('postgres', 0):.2f}/{c.get('wrk', 0):.2f}/{c.get('foreign', 0):.2f}"

    rows = [bare[key] for n in sizes for key in (("bare", n), ("bare-sync", n)) if key in bare] + results
    for r in rows:
        n = r["alerts_per_webhook"]
        if r["backend"].startswith("bare"):
            top = max((bare[k] for k in (("bare", n), ("bare-sync", n)) if k in bare), key=lambda b: b["req_per_s"])
            ratio = f"{r['req_per_s'] / top['req_per_s']:.2f}" if top["req_per_s"] else "—"
            stored, ev, it, msgs, res = "—", "—", "—", "—", ""
            target = "ceiling (faster)" if r is top else "—"
        else:
            ratio = f"{r['ratio_to_bare']:.2f}"
            st = r["stored"]
            stored = f"{st['alerts']}/{r['acknowledged_alerts']}"
            ev, it, msgs = st["events"], st["notification_items"], st["notifications"]
            target, res = r["target"] or "—", r["verdict"] + ("" if r["integrity_ok"] else " (integrity!)")
        print(f"{r['backend']:<11}{n:>9}{r['ok_req_per_s']:>9.0f}{r['alerts_per_s']:>10.0f}{r['p50_ms']:>8.1f}"
              f"{r['p99_ms']:>8.1f}{r['non_2xx']:>8}{ratio:>7}  {cpu(r):<21}{stored:>16}{ev!s:>8}{it!s:>8}{msgs!s:>7}"
              f"  {target:<27}{res}")
    rounds = max((r.get("rounds", 1) for r in rows), default=1)
    print(f"\nreq/s, alerts/s, p50, p99 and ÷bare are medians over {rounds} round(s); cpu and the counts are those of "
          "the round with the median ratio. ÷bare per round (each against that round's faster bare run):")
    for r in results:
        print(f"  {r['backend']:<10}{r['alerts_per_webhook']:>4}: " + "  ".join(f"{x:.2f}" for x in r.get("ratios", [])))
    print_cpu_per_webhook(results, sizes)
    print("\ncpu: cores busy during the measured run (server = gunicorn arbiter + workers, db = postgres, "
          "wrk = load generator, other = processes that are not part of the bench), out of", os.cpu_count())
    noisy = [r for r in rows if r["cpu_cores"].get("foreign", 0) > NOISY_CORES]
    if noisy:
        print(f"WARNING: other processes used more than {NOISY_CORES} cores during "
              + ", ".join(f"{r['backend']}/{r['alerts_per_webhook']}" for r in noisy)
              + ": those numbers are not reliable; rerun on a quiet machine")
    for r in rows:
        m = r["machine_cores"]
        print(f"  machine {r['backend']:<10}{r['alerts_per_webhook']:>4}: busy {m['busy']:.2f} (user {m['user']:.2f}, "
              f"system {m['system']:.2f}, softirq {m['softirq']:.2f}), iowait {m['iowait']:.2f}, idle {m['idle']:.2f}, "
              f"steal {m['steal']:.2f}")
    print("stored/acked: alerts in the database with this run's fingerprints / alerts in 2xx answers seen by wrk "
          "(stored may exceed acked by requests still in flight when wrk stopped)")


if __name__ == "__main__":
    sys.exit(main())
