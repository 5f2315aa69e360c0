#!/usr/bin/env python3
"""Scale-out: two `serve` replicas on one PostgreSQL, each loaded by its own wrk (issue #20).

    python3 bench/scaleout.py [--duration 10] [--warmup 2] [--alerts 1] [--workers N] [--threads 1] [--connections 8]

A durable PostgreSQL 15 (bench/ingest.py's DurablePostgres), one database, one receiver.yml, and two replicas A and B
(`python -m receiver serve`, each with its own escalation engine: the HA setup) on their own ports. After a warm-up,
phase `one` loads only A, phase `two` loads A and B at the same time, each for --duration seconds. Then both are
stopped with SIGTERM and every measured wrk run is checked: nothing acknowledged lost, no alert with two first
notifications, no non-2xx answer. Prints each replica's throughput and CPU, the sum, PostgreSQL's CPU per webhook and
the replica count one PostgreSQL of this size could carry, projected from phase two's CPU per webhook; writes
bench/results/scaleout-<timestamp>.json. Exit status 1 on any integrity failure. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

import ingest as ib  # noqa: E402  (also puts the repository on sys.path)

REPLICAS = ("A", "B")
ROLES = ("workers", "writer", "engine")  # the processes of one replica (replica_split)


# --- CPU of one replica by role ---------------------------------------------------------------------------------


def _args(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def _is_writer(args: list[str]) -> bool:
    """`python -m receiver.writer …` (formerly receiver.sqlite_writer)."""
    return any(a.startswith("receiver.") and a.endswith("writer") for a in args)


def replica_split(before: dict, after: dict, root: int, wall: float) -> dict[str, float]:
    """One serve tree's CPU (cores): `engine` = the engine child (`python -m receiver … worker`) plus serve's own
    process (gunicorn's arbiter and the supervisor, nearly idle); `writer` = serve's writer child (group commit,
    `receiver.writer`, when serve runs one); `workers` = the gunicorn workers (the rest)."""
    out = {"workers": 0.0, "writer": 0.0, "engine": 0.0}
    for pid, (_, ticks) in after.items():
        delta = ticks - before.get(pid, (0, 0))[1]
        if delta <= 0:
            continue
        p, seen = pid, 0
        while p and p != root and seen < 64:
            p = after.get(p, before.get(p, (0, 0)))[0]
            seen += 1
        if p != root:
            continue
        args = _args(pid)
        role = ("engine" if pid == root or ("worker" in args and "serve" not in args)
                else "writer" if _is_writer(args) else "workers")
        out[role] += delta / ib.CLK_TCK / wall
    return out


def reaped_ticks(pid: int) -> int:
    """CPU ticks of the children `pid` has waited for (cutime + cstime): for the postmaster, the backends and
    autovacuum workers that ended, which a /proc snapshot misses."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return 0
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[13]) + int(fields[14])


# --- two wrk at once --------------------------------------------------------------------------------------------


def run_wrks(loads: dict[str, tuple[int, str]], seconds: float, args, replicas: dict[str, subprocess.Popen],
             pg_pid: int, log_dir: str) -> dict:
    """Start one wrk per entry of `loads` (name -> (port, prefix)) at once, wait for all; CPU of every replica (by
    role), of PostgreSQL, of the wrk (rusage) and of the machine over the same interval."""
    seconds = max(1, round(seconds))
    procs, outs = {}, {}
    before, sys_before, pg_reaped = ib.proc_snapshot(), ib.system_ticks(), reaped_ticks(pg_pid)
    started = time.monotonic()
    try:
        for name, (port, prefix) in loads.items():
            env = {**os.environ, "BENCH_ALERTS": str(args.alerts), "BENCH_PREFIX": prefix, "BENCH_TOKEN": ib.TOKEN,
                   "BENCH_PATH": "/webhook"}
            outs[name] = os.path.join(log_dir, f"wrk-{name}-{prefix}.out")
            cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--timeout", "10s",
                   "-s", ib.LUA, f"http://127.0.0.1:{port}/webhook"]
            with open(outs[name], "w") as out:
                procs[name] = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        wrk_cpu = 0.0
        for name, proc in procs.items():  # wrk stops itself after -d; the timeout is a safety net only
            deadline = time.monotonic() + seconds + 30
            while True:
                pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    pid, status, rusage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.05)  # polling wrk, bounded by the deadline above
            proc.returncode = os.waitstatus_to_exitcode(status)
            wrk_cpu += rusage.ru_utime + rusage.ru_stime
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
                proc.wait()
    wall = time.monotonic() - started
    sys_after, after, pg_reaped = ib.system_ticks(), ib.proc_snapshot(), reaped_ticks(pg_pid) - pg_reaped
    roots = {**{name: p.pid for name, p in replicas.items()}, "postgres": pg_pid, "bench": os.getpid()}
    cpu = ib.cpu_by_group(before, after, roots, wall)
    cpu["wrk"] = wrk_cpu / wall  # reaped by now: their rusage, not /proc
    cpu["postgres_ended"] = pg_reaped / ib.CLK_TCK / wall  # already in `postgres`
    cpu["postgres"] += cpu["postgres_ended"]
    result = {"wall_s": round(wall, 3), "cpu_cores": {k: round(v, 3) for k, v in cpu.items()},
              "machine_cores": {k: round(v, 3) for k, v in ib.system_breakdown(sys_before, sys_after, wall).items()},
              "replica_cores": {name: {k: round(v, 3) for k, v in replica_split(before, after, p.pid, wall).items()}
                                for name, p in replicas.items()},
              "wrk": {}}
    counted = sum(v for k, v in cpu.items() if k != "postgres_ended")
    result["unaccounted_cores"] = round(result["machine_cores"]["busy"] - counted, 3)
    for name, proc in procs.items():
        text = open(outs[name]).read()
        line = next((l for l in text.splitlines() if l.startswith("BENCH_JSON ")), None)
        if proc.returncode != 0 or line is None:
            raise RuntimeError(f"wrk for {name} failed ({proc.returncode}):\n{text[-2000:]}")
        result["wrk"][name] = {**summarise(json.loads(line[len("BENCH_JSON "):]), args.alerts),
                               "prefix": loads[name][1]}
    return result


def summarise(w: dict, alerts: int) -> dict:
    """ingest.py's summary of one wrk run (this bench measures CPU for both runs at once, run_pair), and wrk's own."""
    return {**ib.summarise(w, alerts), "raw": w}


# --- integrity --------------------------------------------------------------------------------------------------


def duplicated_firsts(url: str, prefix: str) -> int:
    """Alerts of the prefix with more than one first (`firing`) notification item."""
    import sqlalchemy as sa

    from receiver.store.db import normalise_url

    engine = sa.create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(
                "SELECT count(*) FROM (SELECT i.alert_id FROM notification_items i JOIN alerts a ON a.id = i.alert_id"
                " WHERE a.fingerprint LIKE :p AND i.kind = 'firing' GROUP BY i.alert_id HAVING count(*) > 1) x"),
                {"p": prefix + "%"}).scalar_one()
    finally:
        engine.dispose()


def check(url: str, w: dict, args) -> dict:
    counts = ib.count_rows(url, w["prefix"])
    acked = w["ok_requests"] * args.alerts
    extra = counts["alerts"] - acked
    bound = (args.connections + w["socket_errors"]["timeout"] + w["socket_errors"]["read"]) * args.alerts
    dup = duplicated_firsts(url, w["prefix"])
    problems = []
    if extra < 0:
        problems.append(f"LOST: {-extra} acknowledged alerts not stored")
    if extra > bound:
        problems.append(f"{extra} more alerts stored than acknowledged (bound {bound})")
    if dup:
        problems.append(f"DUPLICATED: {dup} alerts with more than one first notification")
    if w["non_2xx"]:
        problems.append(f"{w['non_2xx']} non-2xx responses")
    return {"acknowledged_alerts": acked, "stored": counts, "lost": max(0, -extra), "duplicated": dup,
            "problems": problems}


def has_writer(root: int) -> bool:
    """Whether serve (pid `root`) runs a writer child (group commit; on PostgreSQL too, in newer versions)."""
    return any(ppid == root and _is_writer(_args(pid)) for pid, (ppid, _) in ib.proc_snapshot().items())


def connection_budget(pg: ib.DurablePostgres, url: str, workers: int, writer: bool) -> dict:
    """Connections the replicas may open (each process's SQLAlchemy pool: pool_size + max_overflow, see
    receiver/store/db.py) against PostgreSQL's max_connections."""
    import inspect

    import psycopg

    from receiver.config.model import DatabaseSettings
    from receiver.store.db import create_db_engine

    per_process = 2 * DatabaseSettings(url=url).pool_size  # max_overflow = pool_size
    # the writer builds its engine with create_db_engine's default pool size, not the config's
    per_writer = 2 * inspect.signature(create_db_engine).parameters["pool_size"].default if writer else 0
    with psycopg.connect(f"host=127.0.0.1 port={pg.server.port} user={pg.server.user} dbname=postgres") as c:
        max_conn = int(c.execute("SHOW max_connections").fetchone()[0])
        reserved = int(c.execute("SHOW superuser_reserved_connections").fetchone()[0])
    per_replica = workers * per_process + per_process + per_writer
    return {"per_process": per_process, "workers": workers, "per_writer": per_writer, "per_replica": per_replica,
            "replicas": len(REPLICAS), "total": len(REPLICAS) * per_replica, "max_connections": max_conn,
            "superuser_reserved": reserved, "replicas_that_fit": (max_conn - reserved) // per_replica}


# --- report -----------------------------------------------------------------------------------------------------


def phase_rows(phase: dict) -> list[dict]:
    """One row per replica (a replica without load shows its CPU only) and, when both were loaded, a `sum` row."""
    rows = []
    for name in REPLICAS:
        w = phase["wrk"].get(name)
        rc = phase["replica_cores"][name]
        cores = sum(rc[k] for k in ROLES)
        rate = w["ok_req_per_s"] if w else 0.0
        rows.append({"replica": name if w else f"{name} (idle)", "req_per_s": rate,
                     "alerts_per_s": w["alerts_per_s"] if w else 0.0, "p50_ms": w["p50_ms"] if w else None,
                     "p99_ms": w["p99_ms"] if w else None, **{k: rc[k] for k in ROLES},
                     "cpu_ms_per_webhook": cores * 1000 / rate if rate else None})
    if len(phase["wrk"]) > 1:
        rate = sum(r["req_per_s"] for r in rows)
        cores = sum(r[k] for r in rows for k in ROLES)
        rows.append({"replica": "sum", "req_per_s": rate, "alerts_per_s": sum(r["alerts_per_s"] for r in rows),
                     "p50_ms": None, "p99_ms": None, **{k: sum(r[k] for r in rows) for k in ROLES},
                     "cpu_ms_per_webhook": cores * 1000 / rate if rate else None})
    return rows


def print_phase(name: str, phase: dict) -> None:
    def f(v, spec):
        return "—" if v is None else format(v, spec)

    print(f"\nphase {name}: {'only A loaded' if len(phase['wrk']) == 1 else 'A and B loaded at once'}")
    head = (f"{'replica':<10}{'req/s':>8}{'alerts/s':>10}{'p50 ms':>8}{'p99 ms':>8}"
            f"  {'CPU cores (workers/writer/engine)':<34}{'CPU ms/webhook':>14}")
    print(head)
    print("-" * len(head))
    for r in phase["rows"]:
        cores = f"{sum(r[k] for k in ROLES):.2f} ({'/'.join(format(r[k], '.2f') for k in ROLES)})"
        print(f"{r['replica']:<10}{r['req_per_s']:>8.0f}{r['alerts_per_s']:>10.0f}{f(r['p50_ms'], '.1f'):>8}"
              f"{f(r['p99_ms'], '.1f'):>8}  {cores:<34}{f(r['cpu_ms_per_webhook'], '.2f'):>14}")
    c, m = phase["cpu_cores"], phase["machine_cores"]
    print(f"PostgreSQL {c['postgres']:.2f} cores, {f(phase['pg_ms_per_webhook'], '.2f')} ms per webhook; "
          f"wrk {c['wrk']:.2f} cores; machine busy {m['busy']:.2f} of {os.cpu_count()} (user {m['user']:.2f}, "
          f"system {m['system']:.2f}, softirq {m['softirq']:.2f}), iowait {m['iowait']:.2f}, steal {m['steal']:.2f}; "
          f"other processes {c['foreign']:.2f}, unaccounted {phase['unaccounted_cores']:.2f}"
          + ("  (unreliable: the machine was not quiet)" if noisy(phase) else ""))


def noisy(phase: dict) -> bool:
    """Other processes busy, or busy cores nobody accounts for (processes that started and ended within the phase,
    e.g. a test suite's, are in no snapshot: only in the machine's total)."""
    return phase["cpu_cores"]["foreign"] > ib.NOISY_CORES or phase["unaccounted_cores"] > 2 * ib.NOISY_CORES


def projection(two: dict, budget: dict) -> dict:
    n = os.cpu_count() or 1
    rate = sum(w["ok_req_per_s"] for w in two["wrk"].values())
    cores = sum(rc[k] for rc in two["replica_cores"].values() for k in ROLES)
    c_r = cores * 1000 / rate if rate else None
    c_pg = two["pg_ms_per_webhook"]
    out = {"cpus": n, "c_r_ms": c_r, "c_pg_ms": c_pg, "unreliable": noisy(two)}
    if c_r and c_pg:
        out.update(replica_max_webhooks_per_s=n * 1000 / c_r, postgres_max_webhooks_per_s=n * 1000 / c_pg,
                   replicas=c_r / c_pg, replicas_floor=math.floor(c_r / c_pg))
    return out


def print_projection(p: dict, budget: dict, alerts: int) -> None:
    n = p["cpus"]
    print("\nprojection (from phase two's measured CPU per webhook)"
          + ("  UNRELIABLE: the machine was not quiet during phase two" if p["unreliable"] else ""))
    if "replicas" not in p:
        print("  not computed: no webhooks answered or no PostgreSQL CPU measured in phase two")
    else:
        print(f"  c_r  = replicas' CPU per webhook (workers + writer + engine of A and B ÷ webhooks A and B answered) "
              f"= {p['c_r_ms']:.2f} ms")
        print(f"  c_pg = PostgreSQL's CPU per webhook (PostgreSQL's cores ÷ the same webhooks) = {p['c_pg_ms']:.2f} ms")
        r, pm = p["replica_max_webhooks_per_s"], p["postgres_max_webhooks_per_s"]
        print(f"  one replica on a machine of its own ({n} cores): R = {n} × 1000 ÷ c_r = {r:.0f} webhooks/s "
              f"({r * alerts:.0f} alerts/s)")
        print(f"  one PostgreSQL of this size ({n} cores): P = {n} × 1000 ÷ c_pg = {pm:.0f} webhooks/s "
              f"({pm * alerts:.0f} alerts/s)")
        print(f"  projected replicas one PostgreSQL carries: P ÷ R = c_r ÷ c_pg = {p['replicas']:.1f} "
              f"(floor {p['replicas_floor']})")
    print(f"  Both bounds assume CPU is the limit and scale linearly; kernel time for the sockets (system/softirq)"
          f" and PostgreSQL's disk (fsync per COMMIT) are in neither. On this machine both replicas, PostgreSQL and"
          f" both wrk share the same {n} cores, so phase two's per-replica throughput is bounded by that contention,"
          f" not by PostgreSQL: the sum is not what two machines would do.")
    b = budget
    print(f"  connections: {b['replicas']} replicas × ({b['workers']} workers × {b['per_process']} pool per process + "
          f"{b['per_process']} for the engine" + (f" + {b['per_writer']} for the writer" if b["per_writer"] else "")
          + f") = {b['total']} of max_connections {b['max_connections']} "
          f"({b['superuser_reserved']} reserved for superusers): {b['replicas_that_fit']} replicas of this shape fit")


# --- main -------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description="two serve replicas on one PostgreSQL, each under its own wrk")
    parser.add_argument("--duration", type=float, default=10, help="measured seconds per phase [10]")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds, both replicas, not measured [2]")
    parser.add_argument("--alerts", type=int, default=1, help="alerts per webhook [1]")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers per replica [receiver default]")
    parser.add_argument("--threads", type=int, default=1, help="threads per wrk [1]")
    parser.add_argument("--connections", type=int, default=8, help="connections per wrk [8]")
    parser.add_argument("--keep", action="store_true", help="keep the server and wrk logs (printed at the end)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        parser.error("wrk not found: apt-get install wrk")

    from receiver.gunicorn_conf import default_workers

    workers = args.workers or default_workers()  # passed explicitly: start_receiver drops RECEIVER_* variables
    work = tempfile.mkdtemp(prefix="alert-receiver-scaleout-")
    started = dt.datetime.now(dt.timezone.utc)
    meta = {"started": started.isoformat(), "cpus": os.cpu_count(), "duration_s": args.duration,
            "warmup_s": args.warmup, "alerts_per_webhook": args.alerts, "workers_per_replica": workers,
            "wrk": {"threads": args.threads, "connections": args.connections},
            "idle_check_foreign_cores": ib.idle_check(1.0)}
    print(f"alert-receiver scale-out bench: {meta['cpus']} CPUs, 2 replicas × {workers} workers (engine on), "
          f"one durable PostgreSQL, {args.alerts} alert(s)/webhook, wrk -t{args.threads} -c{args.connections} per "
          f"replica, {args.warmup:g}s warm-up + {args.duration:g}s per phase", flush=True)
    if meta["idle_check_foreign_cores"] > ib.NOISY_CORES:
        print(f"WARNING: other processes use {meta['idle_check_foreign_cores']:.2f} cores: the numbers will be noisy")

    pg, procs, phases, codes, problems, used = None, {}, {}, {}, [], set()

    def fresh(phase: int) -> str:  # a fingerprint prefix no other wrk run of this bench has used
        while (prefix := ib.new_prefix(phase)) in used:
            pass
        used.add(prefix)
        return prefix

    try:  # PostgreSQL is removed whatever happens; the replicas are stopped before it is counted
        try:
            pg = ib.DurablePostgres()
            pg.start()
            meta["postgresql"] = pg.settings()
            url = pg.create_database("scaleout")
            config_path = os.path.join(work, "receiver.yml")
            ib.write_config(config_path, url, ib.TOKEN)
            ports = {}
            for name in REPLICAS:  # one after the other: each serve migrates the database before it listens
                ports[name] = ib.free_port()
                log_path = os.path.join(work, f"replica-{name}.log")
                procs[name] = ib.start_receiver(ports[name], workers, config_path, log_path)
                ib.wait_ready(f"http://127.0.0.1:{ports[name]}/-/ready", procs[name], 60, log_path)
            pg_pid = pg.postmaster_pid()
            meta["budget"] = budget = connection_budget(pg, url, workers, has_writer(procs["A"].pid))
            if args.warmup > 0:
                print("  warm-up, A and B …", flush=True)
                run_wrks({n: (ports[n], fresh(0)) for n in REPLICAS}, args.warmup, args, procs, pg_pid, work)
            for phase, loaded in (("one", ("A",)), ("two", REPLICAS)):
                print(f"  phase {phase} …", end=" ", flush=True)
                r = run_wrks({n: (ports[n], fresh(len(phases) + 1)) for n in loaded}, args.duration, args,
                             procs, pg_pid, work)
                rate = sum(w["ok_req_per_s"] for w in r["wrk"].values())
                r["pg_ms_per_webhook"] = r["cpu_cores"]["postgres"] * 1000 / rate if rate else None
                r["rows"] = phase_rows(r)
                phases[phase] = r
                print(f"{rate:.0f} req/s", flush=True)
        finally:
            for name, proc in procs.items():
                codes[name] = ib.stop(proc)
        for name, code in codes.items():
            if code not in (0, None):
                problems.append(f"replica {name} exit code {code}")
            text = open(os.path.join(work, f"replica-{name}.log"), errors="replace").read()
            errors = [l for l in text.splitlines() if "ERROR" in l or "Traceback" in l or "level=error" in l]
            if errors:
                problems.append(f"replica {name}: {len(errors)} error lines in its log, e.g. {errors[0][:200]}")
        for phase, r in phases.items():
            for name, w in r["wrk"].items():
                w["integrity"] = check(url, w, args)
                problems += [f"phase {phase}, wrk {name}: {p}" for p in w["integrity"]["problems"]]
    finally:
        if pg is not None:
            pg.cleanup()

    for phase, r in phases.items():
        print_phase(phase, r)
    proj = projection(phases["two"], budget)
    print_projection(proj, budget, args.alerts)
    print("\nintegrity (per wrk run: lost = acknowledged − stored, duplicated = alerts with two first notifications):")
    for phase, r in phases.items():
        for name, w in r["wrk"].items():
            i = w["integrity"]
            print(f"  {phase}/{name}: stored {i['stored']['alerts']} of {i['acknowledged_alerts']} acknowledged, lost "
                  f"{i['lost']}, duplicated {i['duplicated']}, non-2xx {w['non_2xx']}, socket errors "
                  f"{sum(w['socket_errors'].values())}")
    print("  " + ("OK" if not problems else "!! " + "\n  !! ".join(problems)))
    os.makedirs(ib.RESULTS, exist_ok=True)
    out = os.path.join(ib.RESULTS, f"scaleout-{started.strftime('%Y%m%dT%H%M%SZ')}.json")
    with open(out, "w") as f:
        json.dump({"meta": meta, "phases": phases, "projection": proj, "problems": problems}, f, indent=2, default=str)
    print(f"\nresults: {out}")
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
