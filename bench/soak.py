#!/usr/bin/env python3
"""Soak: a steady open-loop webhook load for a long time, with the engine escalating and delivering over HTTP.

    python3 bench/soak.py [--minutes 30] [--rate 200] [--backend sqlite|postgresql] [--sample 10]

`alert-receiver serve` (engine on, auth on) runs on a fresh database with short escalation timers; every level
goes to a `webhook` channel pointing at a local sink (a separate process answering 200 and counting deliveries by
kind). A load generator posts Alertmanager v4 bodies shaped like the genuine `b_group_5_firing` capture at a fixed
rate, paced by schedule: new firing groups, and resolved webhooks for groups that fired 5 s – 3 min earlier.
Every --sample seconds it records RSS per process of the serve tree, outbox depth, latency and rates; at the end
the RSS slope per process, the outbox drain, p99 stability and an integrity check (every alert answered 2xx is
stored). Prints a table, writes bench/results/soak-<timestamp>.json, exits 1 on a failure. See bench/README.md.
"""

from __future__ import annotations

import argparse
import array
import collections
import copy
import datetime as dt
import heapq
import http.client
import json
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)

from ingest import (  # noqa: E402  (bench/ is not a package: ingest.py puts the repository on sys.path)
    NOISY_CORES, REPO, RESULTS, TOKEN, DurablePostgres, cpu_by_group, free_port, proc_snapshot, start_receiver, stop, tail,
    wait_ready,
)

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 2**20
SINK_SECRET = "soak-sink-hmac-secret-5d1e"
FIRING_ENDS_AT = "0001-01-01T00:00:00Z"  # what Alertmanager writes for an alert still firing
SEVERITIES = (("critical", 0.25), ("warning", 0.35), ("info", 0.40))  # → L1, L2, L3: alerts start at every level
ALERTNAMES = ("InstanceDown", "HighErrorRate", "HighLatency", "DiskFillingUp", "QueueBacklog")
SERVICES = ("billing", "checkout", "search", "auth", "inventory", "payments")
UNDELIVERED = ("pending", "failed", "sending")


# --- the sink: a separate process, so that its work does not share the load generator's interpreter --------------


def run_sink(port: int) -> None:
    """Answer 200 to every POST and count deliveries by kind, level and channel; GET /counts returns them.
    Checks each body's HMAC signature, as a real consumer of the webhook channel would."""
    import hmac
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from receiver.channels.webhook import SIGNATURE_HEADER, signature

    lock = threading.Lock()
    counts = {"deliveries": 0, "alerts": 0, "bad_signature": 0, "bad_body": 0,
              "by_kind": collections.Counter(), "alerts_by_kind": collections.Counter(),
              "by_level": collections.Counter(), "by_channel": collections.Counter()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the receiver's requests.Session expects

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            signed = hmac.compare_digest(self.headers.get(SIGNATURE_HEADER, ""), signature(SINK_SECRET, body))
            try:
                doc = json.loads(body)
                kind, level, channel, alerts = doc["kind"], doc["level"], doc["channel"], len(doc["alerts"])
            except (ValueError, KeyError, TypeError):
                kind = None
            with lock:
                counts["deliveries"] += 1
                counts["bad_signature"] += not signed
                if kind is None:
                    counts["bad_body"] += 1
                else:
                    counts["alerts"] += alerts
                    counts["by_kind"][kind] += 1
                    counts["alerts_by_kind"][kind] += alerts
                    counts["by_level"][level] += 1
                    counts["by_channel"][channel] += 1
            self._answer(b"{}")

        def do_GET(self):
            with lock:
                text = json.dumps(counts)
            self._answer(text.encode())

        def _answer(self, payload: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):  # one line per delivery would be the sink's main cost
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def start_sink(port: int, log_path: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--sink-port", str(port)],
                            stdout=open(log_path, "w"), stderr=subprocess.STDOUT, cwd=REPO)
    wait_ready(f"http://127.0.0.1:{port}/counts", proc, 30, log_path)
    return proc


def sink_counts(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/counts", timeout=10) as resp:
        return json.load(resp)


# --- receiver.yml ---------------------------------------------------------------------------------------------


def write_config(path: str, url: str, sink_port: int, args) -> None:
    import yaml

    channels = {f"sink-{lvl.lower()}": {"type": "webhook", "url": f"http://127.0.0.1:{sink_port}/{lvl}",
                                         "hmac_secret": SINK_SECRET} for lvl in ("L1", "L2", "L3")}
    config = {
        "database": {"url": url},
        "auth": {"tokens": [{"name": "alertmanager", "token": TOKEN, "role": "webhook"}]},
        "escalation": {"tick": f"{args.tick:g}s",
                       "L3": {"escalate_after": f"{args.l3_after:g}s"},
                       "L2": {"escalate_after": f"{args.l2_after:g}s"},
                       "L1": {"repeat_every": f"{args.l1_repeat:g}s"}},
        "channels": channels,
        "routes": [{"levels": {lvl: [f"sink-{lvl.lower()}"] for lvl in ("L1", "L2", "L3")}}],
    }
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)


# --- the load: Alertmanager v4 bodies shaped like the genuine b_group_5_firing capture ---------------------------


def iso_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Bodies:
    """Builds firing and resolved webhooks of groups of 1–5 alerts from the captured body's shape."""

    def __init__(self, rng: random.Random):
        from receiver.domain import fingerprint
        from tests.support.fixtures import raw

        self.fingerprint = fingerprint
        self.rng = rng
        self.template = json.loads(raw("b_group_5_firing"))
        self.alert_template = self.template["alerts"][0]

    def new_group(self, gid: int) -> dict:
        rng = self.rng
        severity = rng.choices([s for s, _ in SEVERITIES], [w for _, w in SEVERITIES])[0]
        alertname, service = rng.choice(ALERTNAMES), rng.choice(SERVICES)
        # `cluster` is in Alertmanager's group_by: one value per group keeps every group (and fingerprint) new.
        cluster = f"soak-{gid:07d}"
        starts_at = iso_now()
        alerts = []
        for i in range(1, rng.randint(1, 5) + 1):
            instance = f"{service}-{i}.{cluster}.internal:8080"
            labels = {"alertname": alertname, "cluster": cluster, "instance": instance, "job": f"{service}-api",
                      "service": service, "severity": severity}
            alert = copy.deepcopy(self.alert_template)
            alert.update(labels=labels, startsAt=starts_at, endsAt=FIRING_ENDS_AT,
                         fingerprint=self.fingerprint(labels),
                         annotations={"summary": f"{instance} {alertname}",
                                      "description": f"{alertname} on {instance} of job {service}-api."})
            alerts.append(alert)
        group_labels = {"alertname": alertname, "cluster": cluster, "service": service}
        common = {k: v for k, v in alerts[0]["labels"].items() if all(a["labels"][k] == v for a in alerts)}
        doc = {**self.template, "status": "firing", "alerts": alerts, "groupLabels": group_labels,
               "commonLabels": common, "commonAnnotations": {},
               "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group_labels.items()) + "}"}
        return {"gid": gid, "doc": doc, "fingerprints": [a["fingerprint"] for a in alerts]}

    @staticmethod
    def firing(group: dict) -> bytes:
        return json.dumps(group["doc"]).encode()

    @staticmethod
    def resolved(group: dict) -> bytes:
        ends_at = iso_now()
        doc = {**group["doc"], "status": "resolved",
               "alerts": [{**a, "status": "resolved", "endsAt": ends_at} for a in group["doc"]["alerts"]]}
        return json.dumps(doc).encode()


class Window:
    """What happened between two samples."""

    def __init__(self):
        self.offered = 0
        self.answered = 0
        self.latencies_ms: list[float] = []
        self.statuses: collections.Counter = collections.Counter()


class LoadGenerator:
    """Open loop: a scheduler thread puts one webhook on a queue every 1/rate seconds, whatever the answers; a
    pool of sender threads posts them. Latency runs from the scheduled send time, so time spent waiting for a free
    sender (the server stalling) counts: coordinated omission does not hide it."""

    def __init__(self, port: int, args, rng: random.Random):
        self.port = port
        self.args = args
        self.rng = random.Random(rng.random())  # the senders' own: the scheduler thread uses `rng` for bodies
        self.bodies = Bodies(rng)
        self.jobs: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.window = Window()
        self.all_latencies_ms = array.array("f")
        self.totals: collections.Counter = collections.Counter()
        self.resolve_heap: list[tuple[float, int]] = []  # (monotonic due time, gid) of groups answered 2xx
        self.groups: dict[int, dict] = {}
        self.acked_firing: set[str] = set()  # fingerprints in firing webhooks answered 2xx
        self.acked_resolved: set[str] = set()
        self.never_resolved = 0
        self.answered_groups: list[int] = []  # gids answered 2xx (some resolved since: a repeat of those is skipped)
        self.pick = random.Random(rng.random())  # the scheduler's choice of which group Alertmanager re-sends
        self.started = self.ends = 0.0
        self.threads: list[threading.Thread] = []

    def start(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.ends = self.started + seconds
        for i in range(self.args.senders):
            t = threading.Thread(target=self._send_loop, name=f"sender-{i}", daemon=True)
            t.start()
            self.threads.append(t)
        self.scheduler = threading.Thread(target=self._schedule, name="scheduler", daemon=True)
        self.scheduler.start()

    def _schedule(self) -> None:
        interval = 1.0 / self.args.rate
        n = 0
        while True:
            due = self.started + n * interval
            if due >= self.ends:
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing by schedule is the point: the load does not wait for answers
            repeat = None
            with self.lock:
                resolve = self.resolve_heap and self.resolve_heap[0][0] <= due
                gid = heapq.heappop(self.resolve_heap)[1] if resolve else n
                if not resolve and self.pick.random() < self.args.repeat_share:
                    repeat = self._firing_group()
            if resolve:
                kind, group = "resolved", self.groups.pop(gid)
                body = Bodies.resolved(group)
            elif repeat is not None:
                # Alertmanager sends a firing group again every group_interval and repeat_interval, and each HA
                # peer sends its own copy: the same snapshot, which changes nothing and notifies no one.
                kind, group = "firing", repeat
                body = Bodies.firing(group)
            else:
                kind, group = "firing", self.bodies.new_group(gid)
                self.groups[gid] = group
                body = Bodies.firing(group)
            self.jobs.put((due, kind, group, body, repeat is not None))
            with self.lock:
                self.window.offered += 1
                self.totals["offered"] += 1
                self.totals[f"offered_{kind}"] += 1
                if repeat is not None:
                    self.totals["offered_repeats"] += 1
            n += 1
        for _ in self.threads:
            self.jobs.put(None)

    def _firing_group(self) -> dict | None:
        """A group answered 2xx and not resolved yet, at random (resolved ones are dropped as they are met)."""
        ids = self.answered_groups
        while ids:
            i = self.pick.randrange(len(ids))
            group = self.groups.get(ids[i])
            if group is not None:
                return group
            ids[i] = ids[-1]
            ids.pop()
        return None

    def _send_loop(self) -> None:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        while (job := self.jobs.get()) is not None:
            due, kind, group, body, repeat = job
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.args.timeout)
            try:
                conn.request("POST", "/webhook", body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):  # refused, reset, timed out, garbled: a failed attempt
                status = 0
            finally:
                conn.close()
            latency_ms = (time.monotonic() - due) * 1000
            ok = 200 <= status < 300
            with self.lock:
                w = self.window
                w.answered += 1
                w.latencies_ms.append(latency_ms)
                w.statuses[status] += 1
                self.all_latencies_ms.append(latency_ms)
                self.totals[f"status_{status}"] += 1
                self.totals["answered"] += 1
                n = len(group["fingerprints"])
                self.totals[f"alerts_sent_{kind}"] += n
                if ok:
                    self.totals["ok"] += 1
                    self.totals[f"alerts_ok_{kind}"] += n
                    if kind == "resolved":
                        self.acked_resolved.update(group["fingerprints"])
                    elif repeat:
                        self.acked_firing.update(group["fingerprints"])
                    else:
                        self.acked_firing.update(group["fingerprints"])
                        self.answered_groups.append(group["gid"])
                        if self.rng.random() < self.args.never_resolve:
                            self.never_resolved += 1
                        else:
                            heapq.heappush(self.resolve_heap, (
                                due + self.rng.uniform(self.args.resolve_min, self.args.resolve_max), group["gid"]))

    def take_window(self) -> Window:
        with self.lock:
            w, self.window = self.window, Window()
        return w

    def join(self, deadline_s: float) -> bool:
        """Wait for the schedule to end and every request to be answered; False past the deadline."""
        deadline = time.monotonic() + deadline_s
        for t in [self.scheduler, *self.threads]:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in [self.scheduler, *self.threads])


# --- what the bench samples ------------------------------------------------------------------------------------


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [p.decode(errors="replace") for p in f.read().split(b"\0") if p]
    except OSError:
        return []


def memory(pid: int) -> tuple[float, float | None] | None:
    """(RSS, PSS) in MB; PSS shares the pages a forked worker still shares with the arbiter fairly among them."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            rss = int(f.read().split()[1]) * PAGE / MB
    except OSError:
        return None
    pss = None
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) / 1024
                    break
    except OSError:
        pass
    return rss, pss


class ServeTree:
    """Names the processes of `serve`: the arbiter (serve itself runs gunicorn's arbiter), its forked workers,
    the engine (`receiver worker`) and the SQLite writer. A replaced process gets a new name (worker-6, engine#2)."""

    def __init__(self, root: int):
        self.root = root
        self.names: dict[int, str] = {root: "arbiter"}
        self.kind_counts: collections.Counter = collections.Counter()

    def kind(self, pid: int) -> str:
        argv = cmdline(pid)
        if "receiver.writer" in argv:
            return "sqlite-writer"
        if "worker" in argv and "receiver" in argv:
            return "engine"
        if argv == cmdline(self.root):
            return "worker"
        return "other"

    def processes(self, procs: dict[int, tuple[int, int]]) -> dict[str, int]:
        live = {self.root} | {pid for pid, (ppid, _) in procs.items() if ppid == self.root}
        for pid in sorted(live - set(self.names)):
            kind = self.kind(pid)
            self.kind_counts[kind] += 1
            n = self.kind_counts[kind]
            self.names[pid] = f"worker-{n}" if kind == "worker" else (kind if n == 1 else f"{kind}#{n}")
        return {self.names[pid]: pid for pid in sorted(live, key=self._order)}

    def _order(self, pid: int) -> tuple:
        name = self.names[pid]
        kind = name.split("-")[0] if name.startswith("worker-") else name.split("#")[0]
        rank = ("arbiter", "worker", "engine", "sqlite-writer").index(kind) if kind != "other" else 4
        return rank, pid


class Database:
    """The few read-only counts the bench needs, each one indexed statement."""

    def __init__(self, url: str):
        import sqlalchemy as sa

        from receiver.store.db import normalise_url

        self.sa = sa
        self.engine = sa.create_engine(normalise_url(url))

    def scalar_rows(self, sql: str, **params) -> list:
        with self.engine.connect() as conn:
            return list(conn.execute(self.sa.text(sql), params))

    def outbox(self) -> dict:
        rows = self.scalar_rows("SELECT status, count(*) FROM notifications "
                                "WHERE status IN ('pending', 'failed', 'sending', 'dead') GROUP BY status")
        counts = {s: 0 for s in (*UNDELIVERED, "dead")} | {s: n for s, n in rows}
        counts["depth"] = counts["pending"] + counts["failed"]
        return counts

    def firing_by_level(self) -> dict:
        rows = self.scalar_rows("SELECT level, count(*) FROM alerts WHERE status = 'firing' GROUP BY level")
        return {lvl: 0 for lvl in ("L1", "L2", "L3")} | {lvl: n for lvl, n in rows}

    def last_notification_id(self) -> int:
        return self.scalar_rows("SELECT coalesce(max(id), 0) FROM notifications")[0][0]

    def undelivered_up_to(self, last_id: int) -> int:
        return self.scalar_rows("SELECT count(*) FROM notifications WHERE status IN ('pending', 'failed', 'sending') "
                                "AND id <= :last", last=last_id)[0][0]

    def final(self) -> dict:
        return {
            "alerts": dict(self.scalar_rows("SELECT status, count(*) FROM alerts GROUP BY status")),
            "notifications": dict(self.scalar_rows("SELECT status, count(*) FROM notifications GROUP BY status")),
            "notification_items": self.scalar_rows("SELECT count(*) FROM notification_items")[0][0],
            "events": dict(self.scalar_rows("SELECT kind, count(*) FROM alert_events GROUP BY kind")),
        }

    def fingerprints(self) -> tuple[dict[str, str], int]:
        """fingerprint → status of its occurrence, and how many fingerprints have more than one occurrence."""
        rows = self.scalar_rows("SELECT fingerprint, status FROM alerts")
        status: dict[str, str] = {}
        repeated = 0
        for fp, st in rows:
            repeated += fp in status
            status[fp] = st
        return status, repeated

    def dispose(self) -> None:
        self.engine.dispose()


def percentile(sorted_values, q: float) -> float | None:
    if not sorted_values:
        return None
    return round(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))], 1)


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) in value per hour; None with fewer than 3 points."""
    if len(points) < 3:
        return None
    xs = [x / 3600 for x, _ in points]
    ys = [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else None


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# --- one run ---------------------------------------------------------------------------------------------------


def take_sample(t: float, gen: LoadGenerator, tree: ServeTree, db: Database, sink_port: int, seconds: float,
                roots: dict[str, int], procs_before: dict) -> tuple[dict, dict]:
    w = gen.take_window()
    procs = proc_snapshot()
    lat = sorted(w.latencies_ms)
    rss = {}
    for name, pid in tree.processes(procs).items():
        m = memory(pid)
        if m is not None:
            rss[name] = {"pid": pid, "rss_mb": round(m[0], 1), "pss_mb": None if m[1] is None else round(m[1], 1)}
    cpu = cpu_by_group(procs_before, procs, roots, seconds)
    sample = {
        "t_s": round(t, 1),
        "offered_per_s": round(w.offered / seconds, 1),
        "answered_per_s": round(w.answered / seconds, 1),
        "statuses": {str(k): v for k, v in sorted(w.statuses.items())},
        "non_2xx": sum(v for k, v in w.statuses.items() if not 200 <= k < 300),
        "p50_ms": percentile(lat, 0.50), "p99_ms": percentile(lat, 0.99), "max_ms": round(lat[-1], 1) if lat else None,
        "outbox": db.outbox(),
        "firing_by_level": db.firing_by_level(),
        "sink": sink_counts(sink_port),
        "processes": rss,
        "cpu_cores": {k: round(v, 2) for k, v in cpu.items()},
        "queued_jobs": gen.jobs.qsize(),
    }
    return sample, procs


def print_sample_header() -> None:
    print(f"\n{'t s':>6}{'offer/s':>8}{'ans/s':>7}{'p50ms':>7}{'p99ms':>8}{'non2xx':>7}{'outbox':>7}{'sink/s':>7}"
          f"  {'firing L3/L2/L1':<20}{'RSS MB arbiter/workers/engine/writer':<38}{'cpu srv/db/bench/other'}",
          flush=True)


def print_sample(s: dict, prev_sink: int, seconds: float) -> None:
    p = s["processes"]
    workers = [v["rss_mb"] for k, v in p.items() if k.startswith("worker-")]
    wtxt = f"{min(workers):.0f}–{max(workers):.0f}" if workers else "—"
    mb = lambda name: f"{p[name]['rss_mb']:.0f}" if name in p else "—"  # noqa: E731
    rss = f"{mb('arbiter')}/{wtxt}/{mb('engine')}/{mb('sqlite-writer')}"
    f = s["firing_by_level"]
    firing = f"{f['L3']}/{f['L2']}/{f['L1']}"
    c = s["cpu_cores"]
    fmt = lambda v: "—" if v is None else f"{v:.1f}"  # noqa: E731
    print(f"{s['t_s']:>6.0f}{s['offered_per_s']:>8.1f}{s['answered_per_s']:>7.1f}{fmt(s['p50_ms']):>7}"
          f"{fmt(s['p99_ms']):>8}{s['non_2xx']:>7}{s['outbox']['depth']:>7}"
          f"{(s['sink']['deliveries'] - prev_sink) / seconds:>7.1f}  {firing:<20}"
          f"{rss:<38}{c.get('server', 0):.2f}/{c.get('postgres', 0):.2f}/{c.get('bench', 0):.2f}/"
          f"{c.get('foreign', 0):.2f}", flush=True)


def summarise_processes(samples: list[dict], warmup_s: float) -> dict:
    series: dict[str, list[tuple[float, float, float | None, int]]] = collections.defaultdict(list)
    for s in samples:
        for name, m in s["processes"].items():
            series[name].append((s["t_s"], m["rss_mb"], m["pss_mb"], m["pid"]))
    out = {}
    for name, pts in series.items():
        after = [(t, rss) for t, rss, _, _ in pts if t >= warmup_s]
        after_pss = [(t, pss) for t, _, pss, _ in pts if t >= warmup_s and pss is not None]
        slope = slope_per_hour(after)
        pss_slope = slope_per_hour(after_pss)
        out[name] = {
            "pid": pts[0][3], "samples": len(pts), "first_t_s": pts[0][0], "last_t_s": pts[-1][0],
            "rss_start_mb": pts[0][1], "rss_end_mb": pts[-1][1], "rss_max_mb": max(p[1] for p in pts),
            "rss_after_warmup_start_mb": after[0][1] if after else None,
            "rss_slope_mb_per_hour": rounded(slope, 2),
            "pss_end_mb": pts[-1][2],
            "pss_slope_mb_per_hour": rounded(pss_slope, 2),
        }
    return out


def run(args) -> int:
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="alert-receiver-soak-")
    started = dt.datetime.now(dt.timezone.utc)
    seconds = args.minutes * 60
    warmup_s = args.warmup * 60
    if warmup_s > seconds / 2:
        warmup_s = seconds / 4
        print(f"note: the warm-up is clipped to a quarter of the run ({warmup_s:g} s) for the slopes", flush=True)
    meta = {
        "started": started.isoformat(), "cpus": os.cpu_count(), "python": sys.version.split()[0],
        "backend": args.backend, "minutes": args.minutes, "rate_per_s": args.rate, "sample_s": args.sample,
        "warmup_s": warmup_s, "senders": args.senders, "timeout_s": args.timeout, "workers": args.workers,
        "escalation": {"tick_s": args.tick, "L3_escalate_after_s": args.l3_after,
                       "L2_escalate_after_s": args.l2_after, "L1_repeat_every_s": args.l1_repeat},
        "resolve_after_s": [args.resolve_min, args.resolve_max], "never_resolve": args.never_resolve, "repeat_share": args.repeat_share,
        "severities": dict(SEVERITIES), "seed": args.seed,
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True).stdout.strip(),
        "git_dirty": bool(subprocess.run(["git", "status", "--porcelain", "receiver"], cwd=REPO, capture_output=True,
                                         text=True).stdout.strip()),
    }
    pg = server = sink = db = None
    samples: list[dict] = []
    problems: list[str] = []
    warnings: list[str] = []
    try:
        if args.backend == "sqlite":
            url = f"sqlite:///{os.path.join(work, 'soak.db')}"
        else:
            pg = DurablePostgres().start()
            meta["postgresql"] = pg.settings()
            url = pg.create_database(f"soak_{time.monotonic_ns()}")
        sink_port, port = free_port(), free_port()
        sink = start_sink(sink_port, os.path.join(work, "sink.log"))
        config_path = os.path.join(work, "receiver.yml")
        write_config(config_path, url, sink_port, args)
        log_path = os.path.join(work, "receiver.log")
        server = start_receiver(port, args.workers, config_path, log_path, engine=True)
        wait_ready(f"http://127.0.0.1:{port}/-/ready", server, 60, log_path)
        tree = ServeTree(server.pid)
        db = Database(url)
        roots = {"server": server.pid, "bench": os.getpid()}  # the sink is the bench's child
        if pg is not None:
            roots["postgres"] = pg.postmaster_pid()

        print(f"alert-receiver soak: {args.backend}, {args.minutes:g} min at {args.rate:g} webhooks/s, sample every "
              f"{args.sample:g} s, slopes after {warmup_s:g} s; timers L3→L2 {args.l3_after:g} s, L2→L1 "
              f"{args.l2_after:g} s, L1 repeat {args.l1_repeat:g} s, tick {args.tick:g} s; work dir {work}", flush=True)
        gen = LoadGenerator(port, args, rng)
        procs_before = proc_snapshot()
        baseline, procs_before = take_sample(0.0, gen, tree, db, sink_port, 1.0, roots, procs_before)
        samples.append(baseline)
        print_sample_header()
        gen.start(seconds)
        k, prev_sink, last = 1, 0, gen.started
        while True:
            at = gen.started + k * args.sample
            if at > gen.ends + 1e-6:
                break
            time.sleep(max(0.0, at - time.monotonic()))  # sampling on a fixed schedule
            now = time.monotonic()
            s, procs_before = take_sample(now - gen.started, gen, tree, db, sink_port, now - last, roots,
                                          procs_before)
            print_sample(s, prev_sink, now - last)
            samples.append(s)
            prev_sink, last, k = s["sink"]["deliveries"], now, k + 1
            if server.poll() is not None:
                problems.append(f"serve exited with {server.returncode} during the run")
                break

        # Drain: every request answered, then every notification created so far delivered.
        if not gen.join(args.timeout + 30):
            problems.append("requests still unanswered 30 s after the load's timeout")
        last_w = gen.take_window()
        load_stopped = time.monotonic()
        last_id = db.last_notification_id()
        drain_s, outbox_at_stop = None, db.outbox()
        deadline = load_stopped + args.drain_deadline
        while time.monotonic() < deadline:
            if db.undelivered_up_to(last_id) == 0:
                drain_s = time.monotonic() - load_stopped
                break
            time.sleep(0.5)  # polling the outbox, bounded by the drain deadline
        outbox_final = db.outbox()
        final_sink = sink_counts(sink_port)
        final_db = db.final()
        stored, repeated = db.fingerprints()
    finally:
        code = stop(server) if server is not None else None
        if sink is not None:
            stop(sink, timeout=5)
        if db is not None:
            db.dispose()
        if pg is not None:
            pg.cleanup()

    # --- verdict ---
    t = gen.totals
    non_2xx = {k[len("status_"):]: v for k, v in t.items() if k.startswith("status_") and not k[7:].startswith("2")}
    bad = {k: v for k, v in non_2xx.items() if k != "503"}
    if bad:
        problems.append(f"non-2xx other than 503: {bad} (0 = connection error or timeout)")
    lost = sorted(fp for fp in gen.acked_firing if fp not in stored)
    unresolved = sorted(fp for fp in gen.acked_resolved if stored.get(fp) != "resolved")
    if lost:
        problems.append(f"LOST: {len(lost)} alerts answered 2xx are not stored, e.g. {lost[:3]}")
    if unresolved:
        problems.append(f"LOST resolutions: {len(unresolved)} alerts resolved with a 2xx are not resolved, "
                        f"e.g. {unresolved[:3]}")
    if repeated:
        problems.append(f"{repeated} fingerprints stored as more than one occurrence (each fired once)")
    if drain_s is None:
        problems.append(f"outbox did not drain within {args.drain_deadline:g} s after the load stopped "
                        f"({outbox_final['pending']} pending, {outbox_final['failed']} failed, "
                        f"{outbox_final['sending']} sending)")
    if outbox_final["dead"]:
        problems.append(f"{outbox_final['dead']} dead notifications (the sink always answers 200)")
    if final_sink["bad_signature"] or final_sink["bad_body"]:
        problems.append(f"sink: {final_sink['bad_signature']} bad signatures, {final_sink['bad_body']} bad bodies")
    if code not in (0, None):
        problems.append(f"serve exit code {code}")
    log_text = open(os.path.join(work, "receiver.log"), errors="replace").read()
    error_lines = [l for l in log_text.splitlines() if "ERROR" in l or "Traceback" in l or "level=error" in l]
    if error_lines:
        warnings.append(f"{len(error_lines)} error lines in the server log, e.g. {error_lines[0][:200]}")

    steady = [s for s in samples[1:] if s["t_s"] >= warmup_s]
    offered = sum(s["offered_per_s"] for s in steady)
    answered = sum(s["answered_per_s"] for s in steady)
    if offered and answered < 0.95 * offered:
        warnings.append(f"the receiver answered {answered / offered:.0%} of the offered rate after the warm-up: the "
                        "load is above what it sustains on this machine, so latency measures a growing queue")
    foreign = statistics.fmean(s["cpu_cores"].get("foreign", 0) for s in samples[1:]) if samples[1:] else 0.0
    if foreign > NOISY_CORES:
        warnings.append(f"other processes used {foreign:.2f} cores on average during the run: the numbers are "
                        "not reliable; run on a quiet machine")
    windows = [s for s in samples[1:] if s["p99_ms"] is not None]
    p99s = sorted(s["p99_ms"] for s in windows if s["t_s"] >= warmup_s)  # the steady state: after the warm-up
    all_lat = sorted(gen.all_latencies_ms)
    depths = [s["outbox"]["depth"] for s in samples]
    depth_after = [(s["t_s"], s["outbox"]["depth"]) for s in samples if s["t_s"] >= warmup_s]
    p99_after = [(s["t_s"], s["p99_ms"]) for s in windows if s["t_s"] >= warmup_s]
    sent_db = final_db["notifications"].get("sent", 0)
    summary = {
        "processes": summarise_processes(samples, warmup_s),
        "outbox": {"max_depth": max(depths + [outbox_at_stop["depth"]]), "max_depth_sampled": max(depths), "depth_at_load_stop": outbox_at_stop["depth"],
                   "final": outbox_final, "depth_slope_per_hour": rounded(slope_per_hour(depth_after)),
                   "drained": drain_s is not None, "drain_s": None if drain_s is None else round(drain_s, 1),
                   "drain_deadline_s": args.drain_deadline, "last_notification_id_at_stop": last_id},
        "latency": {"p99_per_window_after_warmup_ms": {"windows": len(p99s), "min": p99s[0] if p99s else None,
                                          "median": statistics.median(p99s) if p99s else None,
                                          "max": p99s[-1] if p99s else None},
                    "p99_slope_ms_per_hour": rounded(slope_per_hour(p99_after)),
                    "overall_ms": {"p50": percentile(all_lat, 0.5), "p99": percentile(all_lat, 0.99),
                                   "p999": percentile(all_lat, 0.999), "max": round(all_lat[-1], 1) if all_lat else None}},
        "totals": {"offered": t["offered"], "offered_firing": t["offered_firing"],
                   "offered_resolved": t["offered_resolved"], "offered_repeats": t["offered_repeats"], "answered": t["answered"], "ok_2xx": t["ok"],
                   "non_2xx": non_2xx, "alerts_sent_firing": t["alerts_sent_firing"],
                   "alerts_ok_firing": t["alerts_ok_firing"], "alerts_sent_resolved": t["alerts_sent_resolved"],
                   "alerts_ok_resolved": t["alerts_ok_resolved"], "groups_never_resolved": gen.never_resolved,
                   "groups_still_firing_at_end": len(gen.groups),
                   "stored_alerts": sum(final_db["alerts"].values()), "stored_by_status": final_db["alerts"],
                   "lost": len(lost), "lost_resolutions": len(unresolved), "duplicated": repeated,
                   "notifications": final_db["notifications"], "notification_items": final_db["notification_items"],
                   "notifications_sent": sent_db, "events": final_db["events"], "sink": final_sink,
                   "last_partial_window": {"answered": last_w.answered, "statuses": dict(last_w.statuses)}},
        "ok": not problems, "problems": problems, "warnings": warnings,
        "server_log_tail": tail(os.path.join(work, "receiver.log"), 20) if problems else "",
    }
    print_summary(summary, warmup_s)
    os.makedirs(RESULTS, exist_ok=True)
    out = os.path.join(RESULTS, f"soak-{started.strftime('%Y%m%dT%H%M%SZ')}.json")
    with open(out, "w") as f:
        json.dump({"meta": meta, "summary": summary, "samples": samples}, f, indent=2, default=str)
    print(f"\nresults: {out}")
    if args.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not problems else 1


def print_summary(s: dict, warmup_s: float) -> None:
    fmt = lambda v, spec=".1f": "—" if v is None else format(v, spec)  # noqa: E731
    print(f"\n{'process':<16}{'pid':>8}{'RSS start':>10}{'end':>8}{'max':>8}{'slope MB/h':>12}{'PSS end':>9}"
          f"{'PSS MB/h':>10}  (slopes: least squares over t ≥ {warmup_s:g} s)")
    for name, p in s["processes"].items():
        span = "" if p["first_t_s"] == 0 else f"  (from t={p['first_t_s']:g} s: replaced a process)"
        print(f"{name:<16}{p['pid']:>8}{p['rss_start_mb']:>10.1f}{p['rss_end_mb']:>8.1f}{p['rss_max_mb']:>8.1f}"
              f"{fmt(p['rss_slope_mb_per_hour'], '+.1f'):>12}{fmt(p['pss_end_mb']):>9}"
              f"{fmt(p['pss_slope_mb_per_hour'], '+.1f'):>10}{span}")
    o = s["outbox"]
    drained = f"drained in {o['drain_s']:g} s" if o["drained"] else f"NOT drained within {o['drain_deadline_s']:g} s"
    print(f"\noutbox (pending+failed): max {o['max_depth']}, at load stop {o['depth_at_load_stop']}, at the end "
          f"{o['final']['depth']} ({o['final']['dead']} dead); slope after the warm-up "
          f"{fmt(o['depth_slope_per_hour'], '+.0f')}/h; what existed at load stop {drained} (the end count also "
          "holds escalations and repeats of alerts still firing, created since)")
    lat = s["latency"]
    w, a = lat["p99_per_window_after_warmup_ms"], lat["overall_ms"]
    print(f"latency from the scheduled send: p99 of the {w['windows']} windows after the warm-up min/median/max "
          f"{fmt(w['min'])}/{fmt(w['median'])}/{fmt(w['max'])} ms (slope {fmt(lat['p99_slope_ms_per_hour'], '+.1f')} "
          f"ms/h); whole run p50 "
          f"{fmt(a['p50'])}, p99 {fmt(a['p99'])}, p99.9 {fmt(a['p999'])}, max {fmt(a['max'])} ms")
    t = s["totals"]
    print(f"webhooks: offered {t['offered']} ({t['offered_firing']} firing of which {t.get('offered_repeats', 0)} "
          f"re-sent unchanged, {t['offered_resolved']} resolved), "
          f"answered {t['answered']}, 2xx {t['ok_2xx']}, non-2xx {t['non_2xx'] or 0}")
    print(f"alerts: firing sent {t['alerts_sent_firing']}, 2xx {t['alerts_ok_firing']}; resolved sent "
          f"{t['alerts_sent_resolved']}, 2xx {t['alerts_ok_resolved']}; stored {t['stored_alerts']} "
          f"{t['stored_by_status']}; lost {t['lost']}, lost resolutions {t['lost_resolutions']}, duplicated "
          f"{t['duplicated']}; groups never resolved {t['groups_never_resolved']}, still firing at the end "
          f"{t['groups_still_firing_at_end']}")
    sink = t["sink"]
    print(f"notifications: {t['notifications']} in the outbox, {t['notification_items']} items; sink received "
          f"{sink['deliveries']} deliveries ({sink['alerts']} alerts) by kind {sink['by_kind']}, by level "
          f"{sink['by_level']}")
    esc = {k: v for k, v in t["events"].items() if k in ("escalated", "repeated", "resolved", "received")}
    if esc:
        print(f"events: {esc}")
    for w in s["warnings"]:
        print(f"warning: {w}")
    for p in s["problems"]:
        print(f"!! {p}")
    print("RESULT: " + ("PASS" if s["ok"] else "FAIL"))


def main() -> int:
    parser = argparse.ArgumentParser(description="soak: steady webhook load with the engine escalating")
    parser.add_argument("--sink-port", type=int, help=argparse.SUPPRESS)  # the sink process runs this script
    parser.add_argument("--minutes", type=float, default=30, help="load duration [30]")
    parser.add_argument("--rate", type=float, default=200, help="webhooks per second, open loop [200]")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sample", type=float, default=10, help="seconds between samples [10]")
    parser.add_argument("--warmup", type=float, default=2, help="minutes left out of the slopes [2]")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers [receiver default: 2×CPUs+1]")
    parser.add_argument("--senders", type=int, default=64,
                        help="sender threads: enough that a slow answer does not lower the offered rate [64]")
    parser.add_argument("--timeout", type=float, default=30, help="seconds before a webhook POST gives up [30]")
    parser.add_argument("--tick", type=float, default=5, help="engine tick, seconds [5]")
    parser.add_argument("--l3-after", type=float, default=20, help="L3 → L2 after, seconds [20]")
    parser.add_argument("--l2-after", type=float, default=40, help="L2 → L1 after, seconds [40]")
    parser.add_argument("--l1-repeat", type=float, default=60, help="L1 repeats every, seconds [60]")
    parser.add_argument("--resolve-min", type=float, default=5, help="a group resolves after at least [5] s")
    parser.add_argument("--resolve-max", type=float, default=180, help="… and at most [180] s")
    parser.add_argument("--repeat-share", type=float, default=0.0,
                        help="share of the webhooks that re-send a firing group unchanged, as Alertmanager does every "
                             "group_interval/repeat_interval and per HA peer (they notify no one) [0]")
    parser.add_argument("--never-resolve", type=float, default=0.01,
                        help="share of groups never resolved within the run (they repeat at L1) [0.01]")
    parser.add_argument("--drain-deadline", type=float, default=120,
                        help="seconds after the load for the outbox to deliver what was created [120]")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the load (default: random)")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs (path printed at the end)")
    args = parser.parse_args()
    if args.sink_port:
        run_sink(args.sink_port)
        return 0
    if args.rate <= 0 or args.minutes <= 0 or args.sample <= 0:
        parser.error("--rate, --minutes and --sample must be positive")
    if not 0 <= args.resolve_min <= args.resolve_max:
        parser.error("need 0 ≤ --resolve-min ≤ --resolve-max")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
