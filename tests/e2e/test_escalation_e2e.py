"""`alert-receiver serve` with its engine, real clock, second-scale timers, `webhook` channels pointing at a local
HTTP sink: the ladder in order, an ack that silences, a reload that changes a timer without a restart.
Every wait polls with a deadline; nothing sleeps a fixed time."""

from __future__ import annotations

import json

import pytest
import requests
import yaml

from ..support.fixtures import raw
from ..support.process import ReceiverProcess, wait_until
from ..support.sink import HttpSink

pytestmark = pytest.mark.e2e

FAST = {"tick": "1s", "L3": {"escalate_after": "2s"}, "L2": {"escalate_after": "2s"}, "L1": {"repeat_every": "2s"}}


def write_config(path, sink: HttpSink, db: str, escalation: dict) -> None:
    path.write_text(yaml.safe_dump({
        "database": {"url": db},
        "escalation": escalation,
        "channels": {name: {"type": "webhook", "url": f"{sink.url}/{name}"} for name in ("l3", "l2", "l1")},
        "routes": [{"levels": {"L3": ["l3"], "L2": ["l2"], "L1": ["l1"]}}],
    }))


@pytest.fixture
def receiver_for(tmp_path, sink):
    started = []

    def start(escalation: dict) -> tuple[ReceiverProcess, str]:
        path = tmp_path / "receiver.yml"
        write_config(path, sink, f"sqlite:///{tmp_path}/receiver.db", escalation)
        receiver = ReceiverProcess(path, workers=2).start().wait_ready()
        started.append(receiver)
        return receiver, str(path)

    yield start
    for receiver in started:
        receiver.stop()


def post(receiver: ReceiverProcess, name: str) -> None:
    r = requests.post(receiver.url + "/webhook", data=raw(name), headers={"Content-Type": "application/json"},
                      timeout=10)
    assert r.status_code == 200, r.text


def heard(sink: HttpSink, alertname: str | None = None) -> list[tuple[str, str, str]]:
    """(channel, kind, level) of every delivered document, optionally only those carrying `alertname`."""
    out = []
    for r in sink.ok():
        doc = r.json()
        if alertname is None or any(a["alertname"] == alertname for a in doc["alerts"]):
            out.append((doc["channel"], doc["kind"], doc["level"]))
    return out


def test_ladder_in_order_then_resolution_to_every_told_channel(receiver_for, sink):
    receiver, _ = receiver_for(FAST)
    post(receiver, "g_routing_info")  # HighErrorRate, severity info → L3
    wait_until(lambda: ("l1", "repeat", "L1") in heard(sink), timeout=30, what="an L1 repeat")
    post(receiver, "g_routing_critical_resolved")  # the same labels but critical: a different alert, resolved
    ladder = heard(sink)
    # Each channel hears its own messages in order. Across channels the engine sends in parallel (a slow provider
    # must not hold up another's page), so on a loaded machine a late first page may cross its escalation.
    assert sorted(ladder[:4]) == sorted([("l3", "firing", "L3"), ("l2", "escalated", "L2"),
                                         ("l1", "escalated", "L1"), ("l1", "repeat", "L1")]), ladder
    assert [m for m in ladder if m[0] == "l1"][:2] == [("l1", "escalated", "L1"), ("l1", "repeat", "L1")]
    alerts = requests.get(receiver.url + "/api/v1/alerts", params={"severity": "info"}, timeout=5).json()["alerts"]
    r = requests.post(f"{receiver.url}/api/v1/alerts/{alerts[0]['id']}/resolve", json={"actor": "e2e"}, timeout=10)
    assert r.status_code == 200, r.text
    resolved = wait_until(lambda: (got := [h for h in heard(sink) if h[1] == "resolved"]) and len(got) >= 3 and got,
                          timeout=15, what="three resolution notices")
    assert sorted(resolved) == [("l1", "resolved", "L1"), ("l2", "resolved", "L1"), ("l3", "resolved", "L1")]
    document = next(r.json() for r in sink.ok("/l1") if r.json()["kind"] == "resolved")
    assert document["alerts"][0]["status"] == "resolved" and document["group_key"]


def test_an_acked_alert_hears_nothing_more(receiver_for, sink):
    receiver, _ = receiver_for(FAST)
    post(receiver, "a_single_firing")
    first = sink.wait_for(1, timeout=15)[0].json()
    alert_id = first["alerts"][0]["id"]
    r = requests.post(f"{receiver.url}/api/v1/alerts/{alert_id}/ack", json={"actor": "e2e"}, timeout=10)
    assert r.status_code == 200 and r.json()["changed"], r.text
    # Another alert on the same timers climbs two levels meanwhile: time enough for the acked one to have moved.
    post(receiver, "g_routing_info")
    wait_until(lambda: ("l1", "escalated", "L1") in heard(sink, "HighErrorRate"), timeout=30,
               what="the unacked alert reaching L1")
    acked_at = r.json()["alert"]["acked_at"]
    mine = [json.loads(r.body) for r in sink.ok() if any(a["id"] == alert_id for a in r.json()["alerts"])]
    # On a loaded machine a timer may fire before the ack lands (its message then still goes out): what
    # matters is that nothing is created for the alert after the ack, except the acknowledged notice.
    notes = requests.get(f"{receiver.url}/api/v1/notifications", params={"alert_id": alert_id},
                         timeout=10).json()["notifications"]
    # One acknowledged notice per channel that was told (L2 too, if its timer beat the ack), nothing else.
    assert {n["kind"] for n in notes if n["created_at"] >= acked_at} == {"acknowledged"}
    assert sorted(m["kind"] for m in mine) == sorted(n["kind"] for n in notes)  # each delivered, once
    assert mine[0]["kind"] == "firing" and "acknowledged" in [m["kind"] for m in mine]


def test_reload_changes_a_timer_without_restart(receiver_for, sink, tmp_path):
    receiver, path = receiver_for({**FAST, "L3": {"escalate_after": "1h"}})
    post(receiver, "g_routing_info")
    sink.wait_for(1, timeout=15)
    pid = receiver.proc.pid
    workers_before = web_worker_pids(receiver)
    write_config(tmp_path / "receiver.yml", sink, f"sqlite:///{tmp_path}/receiver.db", FAST)
    r = requests.post(receiver.url + "/-/reload", timeout=10)
    assert r.status_code == 200, r.text
    wait_until(lambda: ("l2", "escalated", "L2") in heard(sink), timeout=20, what="escalation under the new timer")
    assert receiver.proc.poll() is None and receiver.proc.pid == pid
    # The valid reload restarts the web workers; each new one reports the arbiter's last reload as it starts. Let
    # them all be up first, or one booting late overwrites the refusal below with its 1 (seen on a loaded machine).
    wait_until(lambda: not (web_worker_pids(receiver) & workers_before) and len(web_worker_pids(receiver)) == 2,
               timeout=30, what="the web workers to be replaced")
    # An invalid file is refused and the running config stays.
    (tmp_path / "receiver.yml").write_text("escalation: {tick: 0s}\n")
    r = requests.post(receiver.url + "/-/reload", timeout=10)
    assert r.status_code == 400 and "tick" in r.json()["detail"]
    metrics = requests.get(receiver.url + "/metrics", timeout=10).text
    assert "alert_receiver_config_last_reload_successful 0.0" in metrics


def web_worker_pids(receiver: ReceiverProcess) -> set[int]:
    """serve's gunicorn workers: its children that run serve's own command line (forks), not the writer or engine."""
    import subprocess

    out = subprocess.run(["pgrep", "-P", str(receiver.proc.pid), "-f", "receiver serve"], capture_output=True,
                         text=True).stdout.split()
    return {int(pid) for pid in out}


def engine_pid(receiver: ReceiverProcess) -> int:
    import subprocess

    out = subprocess.run(["pgrep", "-P", str(receiver.proc.pid), "-f", "receiver.* worker( |$)"], capture_output=True,
                         text=True).stdout.split()
    assert len(out) == 1, out
    return int(out[0])


def test_engine_killed_between_claim_and_send_delivers_after_restart(tmp_path, sink):
    """SIGKILL the engine while its send hangs in the provider: serve restarts it, the lease of the dead
    engine's claim runs out, and the new engine delivers the message (at least once)."""
    import os
    import signal

    path = tmp_path / "receiver.yml"
    write_config(path, sink, f"sqlite:///{tmp_path}/receiver.db", {**FAST, "L3": {"escalate_after": "1h"}})
    config = yaml.safe_load(path.read_text())
    config["delivery"] = {"lease": "3s"}
    path.write_text(yaml.safe_dump(config))
    receiver = ReceiverProcess(path, workers=2).start().wait_ready()
    try:
        sink.hold(1)
        post(receiver, "g_routing_info")
        wait_until(lambda: sink.held(), timeout=15, what="the send to reach the (hanging) provider")
        old = engine_pid(receiver)
        os.kill(old, signal.SIGKILL)  # claimed, mid-send, never recorded
        wait_until(lambda: engine_pid(receiver) != old, timeout=15, what="serve to restart the engine")
        [delivered] = sink.wait_for(1, timeout=30)
        assert delivered.json()["kind"] == "firing" and delivered.json()["alerts"][0]["alertname"] == "HighErrorRate"
        sent = wait_until(lambda: (n := requests.get(receiver.url + "/api/v1/notifications", timeout=5).json()
                                   ["notifications"]) and n[0]["status"] == "sent" and n, timeout=15,
                          what="the notification recorded as sent")
        assert len(sent) == 1 and sent[0]["attempts"] == 1
    finally:
        sink.release()
        receiver.stop()
