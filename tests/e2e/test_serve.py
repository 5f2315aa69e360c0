"""The README's run command for real: `alert-receiver serve` under gunicorn, on SQLite and PostgreSQL."""

from __future__ import annotations

import collections
import concurrent.futures
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
import yaml

from ..support.fixtures import captures, raw, source_of
from ..support.process import ReceiverProcess, wait_until
from ..web.test_webhook import expected_occurrences

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite", "postgresql"])
def config_path(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/receiver.db"
    else:
        url = request.getfixturevalue("pg_server").database_for(tmp_path, "e2e")
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({"database": {"url": url}}))
    return path


def all_alerts(base: str) -> list[dict]:
    out, cursor = [], None
    while True:
        page = requests.get(base + "/api/v1/alerts", params={"limit": 1000, **({"cursor": cursor} if cursor else {})},
                            timeout=10).json()
        out.extend(page["alerts"])
        cursor = page["next_cursor"]
        if not cursor:
            return out


def post(base: str, body: bytes, path: str = "/webhook") -> requests.Response:
    return requests.post(base + path, data=body, headers={"Content-Type": "application/json"}, timeout=30)


def test_serve_ingests_every_capture_dedupes_concurrent_posts_and_survives_a_restart(config_path):
    receiver = ReceiverProcess(config_path).start().wait_ready()
    try:
        base = receiver.url
        for cap in captures():
            name = cap["_file"][:-5]
            src = source_of(cap)
            r = post(base, raw(name), f"/webhook/{src}" if src else "/webhook")
            assert r.status_code == 200, (name, r.text)
        listed = all_alerts(base)
        assert {(a["fingerprint"], a["status"]) for a in listed} == expected_occurrences()
        assert len(listed) == len(expected_occurrences())

        for cap in captures():  # everything again: no count changes
            assert post(base, raw(cap["_file"][:-5])).status_code == 200
        assert len(all_alerts(base)) == len(listed)

        # 20 concurrent duplicates of a body never seen before (as two HA peers and retries would send).
        body = json.loads(raw("a_single_firing"))
        body["alerts"][0]["labels"]["instance"] = "concurrency-test:9100"
        body["alerts"][0].pop("fingerprint")
        data = json.dumps(body).encode()
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            codes = list(pool.map(lambda _: post(base, data).status_code, range(20)))
        assert codes == [200] * 20
        same = [a for a in all_alerts(base) if a["instance"] == "concurrency-test:9100"]
        assert len(same) == 1
        detail = requests.get(f"{base}/api/v1/alerts/{same[0]['id']}", timeout=10).json()
        assert [e["kind"] for e in detail["timeline"] if e["kind"] != "notified"] == ["received"]
        assert len([e for e in detail["timeline"] if e["kind"] == "notified"]) == 1  # one first page, not 20

        # Metrics are aggregated over every gunicorn worker.
        metrics = requests.get(base + "/metrics", timeout=10).text
        total_200 = sum(float(line.split()[-1]) for line in metrics.splitlines()
                        if line.startswith('alert_receiver_webhook_requests_total{code="200"}'))
        assert total_200 == 2 * len(captures()) + 20
        before = all_alerts(base)
    finally:
        assert receiver.stop() == 0, receiver.log()

    # The engine may have delivered first pages meanwhile: first_notified_at is the engine's, not the restart's.
    def kept(alerts):
        return [{k: v for k, v in a.items() if k != "first_notified_at"} for a in alerts]

    again = ReceiverProcess(config_path).start().wait_ready()
    try:
        assert kept(all_alerts(again.url)) == kept(before)
    finally:
        again.stop()


def test_serve_refuses_a_public_address_without_tokens(tmp_path):
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({"database": {"url": f"sqlite:///{tmp_path}/r.db"}}))
    proc = subprocess.run([sys.executable, "-m", "receiver", "serve", "--host", "0.0.0.0", "--port", "1"],
                          env={"RECEIVER_CONFIG": str(path), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert "refusing to listen on 0.0.0.0 without tokens" in proc.stderr
    assert "auth.required: false" in proc.stderr


def test_serve_on_a_taken_port_fails_at_once_with_one_line_and_starts_nothing(tmp_path):
    """A second serve on a busy port: exit 1 with one line that names the address, before any migration or child
    (it used to log `serving`, start a writer and an engine, retry the bind five times and exit after ~7 s)."""
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({"database": {"url": f"sqlite:///{tmp_path}/r.db"}}))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "receiver", "serve", "--host", "127.0.0.1", "--port", str(port)],
                              env={"RECEIVER_CONFIG": str(path), "PATH": "/usr/bin:/bin"}, capture_output=True,
                              text=True, timeout=60)
        took = time.monotonic() - started
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "cannot listen" in line]
    assert errors == [f"Error: cannot listen on 127.0.0.1:{port}: the address is already in use (another "
                      "alert-receiver or another program holds it). Fix: stop that process, or choose another port "
                      "with --port or RECEIVER_PORT."], proc.stderr
    assert "serving" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r.db").exists(), "migrated before finding the port taken"
    assert took < 5, took  # no bind retries (gunicorn's five take ~5 s)


def test_a_port_left_in_time_wait_by_a_quick_restart_is_not_refused():
    from receiver.server import check_can_listen

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the server side closes first: its end of the connection stays in TIME_WAIT
    listener.close()
    client.close()
    check_can_listen("127.0.0.1", port)  # raises OSError if refused
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        with pytest.raises(OSError):
            check_can_listen("127.0.0.1", busy.getsockname()[1])


def webhook_requests_by_process(metrics_dir) -> dict[int, float]:
    """alert_receiver_webhook_requests_total per process, from prometheus_client's per-process files."""
    from prometheus_client.mmap_dict import MmapedDict

    counts: dict[int, float] = collections.Counter()
    for name in os.listdir(metrics_dir):
        if name.startswith("counter_") and name.endswith(".db"):
            pid = int(name[len("counter_"):-len(".db")])
            for key, value, *_ in MmapedDict.read_all_values_from_file(os.path.join(metrics_dir, name)):
                if json.loads(key)[1] == "alert_receiver_webhook_requests_total":
                    counts[pid] += value
    return counts


def test_kept_alive_connections_are_closed_after_each_webhook_and_reach_every_worker(tmp_path):
    """Alertmanager keeps its connections alive. Every answer says `Connection: close`, so no connection stays
    pinned to the worker that accepted it, and a worker accepts only while it has a free thread: concurrent
    senders are spread over every worker."""
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({"database": {"url": f"sqlite:///{tmp_path}/receiver.db"}}))
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    receiver = ReceiverProcess(path, workers=2, extra_env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    receiver.start("--threads", "2").wait_ready()
    try:
        conn = http.client.HTTPConnection(receiver.host, receiver.port, timeout=30)
        conn.request("POST", "/webhook", body=raw("a_single_firing"),
                     headers={"Content-Type": "application/json", "Connection": "keep-alive"})
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200 and answer.getheader("Connection") == "close"
        conn.close()

        def send(sender: int) -> list[int]:
            with requests.Session() as session:  # keeps its connection alive, as Alertmanager does
                return [session.post(receiver.url + "/webhook", data=body, timeout=30,
                                     headers={"Content-Type": "application/json"}).status_code
                        for body in (_numbered_body(sender, i) for i in range(10))]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = [c for codes in pool.map(send, range(8)) for c in codes]
        assert codes == [200] * 80
        served = {pid: n for pid, n in webhook_requests_by_process(metrics_dir).items() if n}
        assert sum(served.values()) == 81
        assert len(served) == 2, served  # both workers took webhooks
    finally:
        assert receiver.stop() == 0, receiver.log()


def _numbered_body(sender: int, i: int) -> bytes:
    """The captured single-alert webhook, made a distinct alert per (sender, i)."""
    payload = json.loads(raw("a_single_firing"))
    alert = payload["alerts"][0]
    alert["fingerprint"] = f"{sender:08x}{i:08x}"
    alert["labels"]["instance"] = f"keepalive-{sender}-{i}:9100"
    return json.dumps(payload).encode()


def test_a_stop_signal_to_the_whole_process_group_stops_every_child_without_restarting_it(tmp_path):
    """Ctrl-C, systemd's default KillMode and `kill -- -PGID` signal serve and its children at once. The children
    stop on their own while gunicorn finishes its requests; serve must not take that for a crash and start them
    again (it used to, a second later)."""
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({"database": {"url": f"sqlite:///{tmp_path}/receiver.db"}}))
    receiver = ReceiverProcess(path, workers=2)
    receiver.start().wait_ready()
    body = raw("a_single_firing")
    slow = socket.create_connection((receiver.host, receiver.port), timeout=30)
    try:
        assert post(receiver.url, body).status_code == 200

        def children() -> set[int]:
            return {int(pid) for pid in os.listdir("/proc")
                    if pid.isdigit() and int(pid) != receiver.proc.pid and _session_of(int(pid)) == receiver.proc.pid}

        helpers = {pid for pid in children() if b"receiver.writer" in _cmdline(pid) or b" worker" in _cmdline(pid)}
        assert len(helpers) == 2, "expected the SQLite writer and the engine"
        # A request in flight keeps gunicorn's graceful shutdown going for as long as this test likes.
        slow.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
        os.killpg(receiver.proc.pid, signal.SIGTERM)
        wait_until(lambda: not helpers & children(), timeout=30, what="the writer and the engine to stop")
        # The supervisor looks every 0.5 s and restarted after 1 s: watch for longer than that for a new child.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            started = {pid for pid in children() if b"receiver.writer" in _cmdline(pid) or b" worker" in _cmdline(pid)}
            assert not started, f"restarted during shutdown: {started}"
            time.sleep(0.1)
        slow.sendall(body[10:])
        assert slow.recv(1000).startswith(b"HTTP/1.1 200"), "the request in flight is finished (written directly)"
        assert receiver.proc.wait(60) == 0, receiver.log()
    finally:
        slow.close()
        receiver.stop()
    log = receiver.log()
    assert "child exited; restarting" not in log and log.count("started child") == 2, log


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ")
    except OSError:
        return b""


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None
