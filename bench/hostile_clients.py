#!/usr/bin/env python3
"""Hostile clients against a running `alert-receiver serve` (issue #15, findings 2-4): prints the figures.

    python3 bench/hostile_clients.py --url http://127.0.0.1:8080 [--slow-headers 200 --slow-bodies 100 --webhooks 100]

Starts nothing: point it at a serve you started (127.0.0.1 only). Phase 1 opens slow-header and slow-body
connections, then sends webhooks (a /-/healthy after every 5th) and reports their latencies, how many slow
connections the server still holds, and when it closed them. Phase 2 (unless --no-bodies) streams 1 GiB to /login
and /webhooks/pagerduty, a 70 MiB chunked webhook and four concurrent 50 MB chunked webhooks, and reports each
answer, the bytes sent before it and the workers' peak RSS growth. See bench/README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
import time
import urllib.parse

import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.support.fixtures import new_alert_bodies  # noqa: E402
from tests.support.hostile_clients import (RssSampler, SlowClients, mib, parent_pid, rss_of_tree,  # noqa: E402
                                           stream_body)

GIB, MIB = 2**30, 2**20
LARGE_BODY = 50 * 1000 * 1000
JUNK_JSON = b'{"version": "4", "padding": "'  # never valid: the server refuses it without parsing it


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8080", help="the running serve (127.0.0.1 only)")
    p.add_argument("--slow-headers", type=int, default=200)
    p.add_argument("--slow-bodies", type=int, default=100)
    p.add_argument("--webhooks", type=int, default=100)
    p.add_argument("--token", default="", help="bearer token of role webhook, when serve has tokens")
    p.add_argument("--serve-pid", type=int, help="serve's pid for RSS (default: the process listening on the port)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds a request may take before it counts as lost")
    p.add_argument("--max-lost", type=int, default=10, help="stop sending webhooks once this many were lost")
    p.add_argument("--close-wait", type=float, default=40.0, help="how long to wait for the server to close the "
                                                                  "slow connections")
    p.add_argument("--no-bodies", action="store_true", help="skip phase 2 (huge bodies)")
    args = p.parse_args(argv)
    if urllib.parse.urlsplit(args.url).hostname != "127.0.0.1":
        p.error("--url must be on 127.0.0.1")
    return args


# --- serve's pid -------------------------------------------------------------------------------------------


def listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def listener_pid(port: int) -> int | None:
    """The gunicorn arbiter (serve) listening on `port`: of the processes holding the socket, the one whose parent
    does not hold it too."""
    wanted = {f"socket:[{i}]" for i in listening_inodes(port)}
    holders = set()
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in wanted for fd in os.listdir(f"/proc/{pid}/fd")):
                holders.add(pid)
        except OSError:
            continue
    roots = [p for p in holders if parent_pid(p) not in holders]
    return roots[0] if len(roots) == 1 else None


# --- phase 1: slow clients ---------------------------------------------------------------------------------


def timed(send, timeout: float) -> float | None:
    started = time.perf_counter()
    try:
        ok = send(timeout).status_code == 200
    except requests.RequestException:
        return None
    return time.perf_counter() - started if ok else None


def latencies(name: str, times: list[float | None]) -> str:
    done = sorted(t for t in times if t is not None)
    lost = len(times) - len(done)
    if not done:
        return f"{name:<11} {len(times)} sent, none answered 200"
    p95 = done[min(len(done) - 1, int(len(done) * 0.95))]
    return (f"{name:<11} {len(times)} sent, {lost} lost; median {statistics.median(done) * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, max {done[-1] * 1000:.0f} ms")


def slow_phase(args, port: int, pid: int | None) -> None:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {args.token}"} if args.token else {})}
    slow = SlowClients("127.0.0.1", port, max_duration=args.close_wait + 60)
    before = rss_of_tree(pid) if pid else {}
    try:
        slow.open(args.slow_headers, args.slow_bodies)
        opened = time.monotonic()
        hooks, health = [], []
        for i, body in enumerate(new_alert_bodies(args.webhooks, "hostile-bench")):
            hooks.append(timed(lambda t: requests.post(args.url + "/webhook", data=body, headers=headers, timeout=t),
                               args.timeout))
            if i % 5 == 4:
                health.append(timed(lambda t: requests.get(args.url + "/-/healthy", timeout=t), args.timeout))
            if (hooks + health).count(None) >= args.max_lost:
                break  # the outcome is known: keep the run bounded in time
        print(f"phase 1: {args.slow_headers} slow-header + {args.slow_bodies} slow-body connections")
        print("  " + latencies("webhooks", hooks))
        print("  " + latencies("/-/healthy", health))
        print(f"  after {time.monotonic() - opened:.1f} s the server still holds {slow.open_count('header')} "
              f"slow-header and {slow.open_count('body')} slow-body connections")
        if pid:
            after = rss_of_tree(pid)
            print("  worker RSS: " + ", ".join(f"{w} {mib(before.get(w, 0))} -> {mib(r)}" for w, r in after.items()))
        _wait_closed(slow, opened + args.close_wait)
        for kind in ("header", "body"):
            delays = [d for d in slow.close_delays(kind) if d is not None]
            still = slow.open_count(kind)
            print(f"  slow-{kind} connections closed by the server: {len(delays)}"
                  + (f", after {min(delays):.1f}-{max(delays):.1f} s" if delays else "")
                  + (f"; {still} still open after {args.close_wait:.0f} s" if still else ""))
    finally:
        slow.close()


def _wait_closed(slow: SlowClients, deadline: float) -> None:
    """Poll until the server closed every slow connection, or the deadline."""
    while slow.open_count() and time.monotonic() < deadline:
        time.sleep(0.2)


# --- phase 2: huge bodies ----------------------------------------------------------------------------------


def body_phase(args, pid: int | None) -> None:
    webhook = {"Content-Type": "application/json", **({"Authorization": f"Bearer {args.token}"} if args.token else {})}
    cases = [("/login", GIB, False, {"Content-Type": "application/x-www-form-urlencoded"}, b"csrf=x&token="),
             ("/login", GIB, True, {"Content-Type": "application/x-www-form-urlencoded"}, b"csrf=x&token="),
             ("/webhooks/pagerduty", GIB, False, {"Content-Type": "application/json"}, b'{"event": "'),
             ("/webhooks/pagerduty", GIB, True, {"Content-Type": "application/json"}, b'{"event": "'),
             ("/webhook", 70 * MIB, True, webhook, JUNK_JSON)]
    print("phase 2: huge bodies (status, bytes sent before the answer, seconds, worker peak RSS growth)")
    for path, total, chunked, headers, prefix in cases:
        with _rss(pid) as rss:
            r = stream_body(args.url, total, chunked, path, headers, prefix=prefix, timeout=60)
        print(f"  {path:<20} {mib(total):>11} {'chunked' if chunked else 'length ':<7}  {r.status}  "
              f"{mib(r.sent_before_answer):>11}  {r.elapsed:5.1f} s  {_growth(rss)}")
    with _rss(pid) as rss:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: stream_body(args.url, LARGE_BODY, True, "/webhook", webhook,
                                                          prefix=JUNK_JSON, timeout=30, rate=LARGE_BODY), range(4)))
    print(f"  4 x {mib(LARGE_BODY)} chunked webhooks at once: {[(r.status, round(r.elapsed, 1)) for r in results]}"
          f"  {_growth(rss)}")


class _NoRss:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def _rss(pid: int | None):
    return RssSampler(pid, interval=0.05) if pid else _NoRss()


def _growth(rss) -> str:
    return ", ".join(mib(g) for g in rss.growth().values()) if rss else "(RSS: no serve pid)"


def main(argv=None) -> int:
    args = parse_args(argv)
    port = urllib.parse.urlsplit(args.url).port or 80
    pid = args.serve_pid or listener_pid(port)
    print(f"serve at {args.url}, pid {pid or 'unknown (no RSS figures)'}")
    requests.get(args.url + "/-/healthy", timeout=5).raise_for_status()
    slow_phase(args, port, pid)
    if not args.no_bodies:
        body_phase(args, pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
