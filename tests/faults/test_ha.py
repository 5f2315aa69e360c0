"""HA: two real Alertmanagers clustered on loopback, each posting every group to its own replica of
`alert-receiver serve` (two replicas, each with its engine, on one PostgreSQL database).

    the test ──push──▶ Alertmanager 1 ◀─gossip─▶ Alertmanager 2 ◀──push── the test   (as Prometheus: to every peer)
                         │ proxy 1                 │ proxy 2
                         ▼                         ▼
                     replica 1 ───── one PostgreSQL ───── replica 2 ──▶ sink /l1 /l2 (webhook channels)

Alertmanager's HA deduplication is best effort: a peer sends unless the notification log gossiped by the other has
reached it within `--cluster.peer-timeout` of its turn. Here that timeout is 0s and the gossip slow, as across a
partition between the peers, so both peers send every group's webhooks: the worst case for the receiver, and the
proxies show that it happened. Then: each alert is one occurrence, each level change one event and one notification
intent per channel, and no channel hears any (alert, kind, level) twice, for the first pages (critical: L1,
warning: L2), the escalation of the warnings to L1 (3 s), and resolution.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import signal
import time
from collections import Counter

import pytest
import sqlalchemy as sa
import yaml

from receiver.store import migrate
from receiver.store.db import create_db_engine

from ..support.alertmanager import AlertmanagerProcess, RecordingProxy, generated_copy
from ..support.binaries import require_binary
from ..support.process import ReceiverProcess, wait_until
from .processes import start_serve

pytestmark = [pytest.mark.e2e, pytest.mark.binaries, pytest.mark.postgres]

DEADLINE_S = 60
# Each peer's turn comes at once, and the notification log is gossiped (and fully synced) only once a minute, long
# after this test: each peer posts every group, as the two sides of a partitioned pair do.
CLUSTER_FLAGS = ("--cluster.peer-timeout=0s", "--cluster.gossip-interval=1m", "--cluster.pushpull-interval=1m",
                 "--cluster.settle-timeout=1s")
WARNINGS = [("HaDiskFilling", "warning", "ha-storage", f"disk-{i}:9100") for i in range(10)]
CRITICALS = [("HaApiErrors", "critical", "ha-api", f"api-{i}:8080") for i in range(6)]


@dataclasses.dataclass
class Peer:
    alertmanager: AlertmanagerProcess
    proxy: RecordingProxy
    replica: ReceiverProcess


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def postable(alertname: str, severity: str, service: str, instance: str, *, starts_at: dt.datetime,
             ends_at: dt.datetime | None = None) -> dict:
    """An alert as Prometheus posts it to every Alertmanager of the pair."""
    return {"labels": {"alertname": alertname, "severity": severity, "service": service, "instance": instance,
                       "cluster": "ha"},
            "annotations": {"summary": f"{alertname} on {instance}"},
            "startsAt": starts_at.isoformat(), "endsAt": (ends_at or starts_at + dt.timedelta(hours=1)).isoformat()}


def write_config(path, url: str, sink_url: str) -> None:
    path.write_text(yaml.safe_dump({
        "database": {"url": url, "lock_timeout": "2s"},
        "escalation": {"tick": "1s", "L3": {"escalate_after": "1h"}, "L2": {"escalate_after": "3s"},
                       "L1": {"repeat_every": "1h"}},
        "channels": {name: {"type": "webhook", "url": f"{sink_url}/{name}"} for name in ("l1", "l2", "l3")},
        "routes": [{"levels": {"L1": ["l1"], "L2": ["l2"], "L3": ["l3"]}}],
    }))


@pytest.fixture
def pair(tmp_path, pg_server, sink):
    """Two clustered Alertmanagers, each → its proxy → its replica; both replicas on one database."""
    binary = require_binary("prometheus-alertmanager")
    url = pg_server.database_for(tmp_path, "ha")
    token_file = tmp_path / "alert-receiver-token"  # alertmanager.yml reads a bearer token; the receiver is open
    token_file.write_text("ha-test-token\n")
    engine = create_db_engine(url)
    migrate.upgrade(engine)  # once, here: the replicas start together, without migrating
    engine.dispose()
    with contextlib.ExitStack() as cleanup:
        peers = []
        for i in (1, 2):
            workdir = tmp_path / f"peer{i}"
            workdir.mkdir()
            config = workdir / "receiver.yml"
            write_config(config, url, sink.url)
            replica = start_serve(config, workdir, "--no-migrate", workers=1, wait=False)
            proxy = RecordingProxy(replica.url).start()
            cleanup.callback(proxy.stop)
            am_config = generated_copy(workdir, webhook_base=proxy.url, credentials_file=token_file, fast=True)
            alertmanager = AlertmanagerProcess(binary, am_config, workdir / "alertmanager", clustered=True,
                                               cluster_flags=CLUSTER_FLAGS)
            peers.append(Peer(alertmanager, proxy, replica))
        cleanup.callback(stop_replicas, [p.replica for p in peers])
        first, second = peers
        first.alertmanager.peers = (second.alertmanager.cluster_address,)
        second.alertmanager.peers = (first.alertmanager.cluster_address,)
        for peer in peers:
            peer.alertmanager.start()
        cleanup.callback(stop_together, [p.alertmanager for p in peers])
        for peer in peers:
            peer.replica.wait_ready(timeout=DEADLINE_S)
            peer.alertmanager.wait_ready(timeout=DEADLINE_S)
        members = sorted(p.alertmanager.cluster_address for p in peers)
        wait_until(lambda: all(p.alertmanager.cluster_peers() == members for p in peers), timeout=DEADLINE_S,
                   interval=0.1, what="the two Alertmanagers to see each other")
        yield peers, url


def stop_together(alertmanagers: list[AlertmanagerProcess]) -> None:
    """SIGTERM both, then kill what is left after 2 s: a graceful leave waits for gossip slowed down on purpose."""
    for alertmanager in alertmanagers:
        alertmanager.proc.terminate()
    for alertmanager in alertmanagers:
        alertmanager.stop(timeout=2)


def stop_replicas(replicas: list[ReceiverProcess]) -> None:
    """Both shut down gracefully at the same time (each takes a few seconds)."""
    for replica in replicas:
        if replica.proc.poll() is None:
            replica.proc.send_signal(signal.SIGTERM)
    for replica in replicas:
        replica.stop()


def rows(url: str, sql: str) -> list:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).all()
    finally:
        engine.dispose()


def heard(sink) -> Counter:
    """(alert id, channel, kind, level) → how many times the channel delivered it."""
    return Counter((a["id"], d["channel"], d["kind"], d["level"])
                   for d in (r.json() for r in sink.ok()) for a in d["alerts"])


def test_two_alertmanagers_two_replicas_one_occurrence_one_intent_one_message(pair, sink, record_counts):
    peers, url = pair
    started_at = time.monotonic()

    def explain() -> str:
        return "\n".join(f"--- peer {i}: alertmanager\n{p.alertmanager.log()}\n--- replica\n{p.replica.log()}"
                         for i, p in enumerate(peers, 1))

    def wait(predicate, what: str):
        try:
            return wait_until(predicate, timeout=DEADLINE_S, interval=0.1, what=what)
        except TimeoutError as exc:
            pytest.fail(f"{exc}\n{explain()}")

    starts = now() - dt.timedelta(minutes=5)  # older than group_wait: Alertmanager sends at once
    pushed = [postable(*spec, starts_at=starts) for spec in WARNINGS + CRITICALS]
    for peer in peers:
        peer.alertmanager.push(*pushed)
    n = len(pushed)

    def kinds() -> Counter:
        return Counter((c, k, lv) for (_, c, k, lv) in heard(sink))

    # First pages (L2 for the warnings, L1 for the criticals), then the warnings' escalation to L1.
    wait(lambda: (heard_now := kinds())[("l1", "escalated", "L1")] >= len(WARNINGS)
         and heard_now[("l1", "firing", "L1")] >= len(CRITICALS) and heard_now[("l2", "firing", "L2")] >= len(WARNINGS),
         "first pages and the escalation to L1")
    ended = now()
    for peer in peers:
        peer.alertmanager.push(*[{**alert, "endsAt": ended.isoformat()} for alert in pushed])
    wait(lambda: sum(v for (c, k, lv), v in kinds().items() if k == "resolved") >= 2 * len(WARNINGS) + len(CRITICALS),
         "the resolution notices")
    wait(lambda: {s for (s,) in rows(url, "SELECT status FROM notifications")} == {"sent"}, "the outbox to drain")

    # Both Alertmanagers post the groups, each to its replica: the receiver really gets HA duplicates. One peer's
    # resolution webhooks may come after the other's have already been delivered, so wait for both before counting.
    def posted_by_each() -> list[Counter]:
        return [Counter(e.json()["status"] for e in p.proxy.recorded()) for p in peers]

    wait(lambda: all(c["firing"] >= 2 and c["resolved"] >= 2 for c in posted_by_each()),  # 2 groups each
         "both Alertmanagers to post both groups firing and resolved")
    wait(lambda: {s for (s,) in rows(url, "SELECT status FROM notifications")} == {"sent"}, "the outbox to drain")
    posted = posted_by_each()
    assert all(e.status == 200 for p in peers for e in p.proxy.recorded())

    occurrences = Counter(fp for (fp,) in rows(url, "SELECT fingerprint FROM alerts"))
    assert len(occurrences) == n and set(occurrences.values()) == {1}, occurrences  # one occurrence each
    assert {s for (s,) in rows(url, "SELECT status FROM alerts")} == {"resolved"}
    escalations = rows(url, "SELECT alert_id, from_level, to_level FROM alert_events WHERE kind = 'escalated'")
    assert sorted((f, t) for _, f, t in escalations) == [("L2", "L1")] * len(WARNINGS)  # one level change each
    intents = Counter((c, k, lv) for c, k, lv in rows(url, "SELECT channel, kind, level FROM notification_items"))
    assert intents == Counter({("l2", "firing", "L2"): len(WARNINGS), ("l1", "escalated", "L1"): len(WARNINGS),
                               ("l1", "firing", "L1"): len(CRITICALS), ("l1", "resolved", ""): n,
                               ("l2", "resolved", ""): len(WARNINGS)}), intents  # resolutions have no level
    deliveries = heard(sink)
    twice = {key: count for key, count in deliveries.items() if count > 1}
    assert not twice, f"heard more than once: {twice}"
    assert (Counter((c, k) for (_, c, k, _) in deliveries)  # every intent delivered, once
            == Counter({(c, k): v for (c, k, _), v in intents.items()}))

    record_counts(
        seconds=round(time.monotonic() - started_at, 1), alerts_pushed_to_each_alertmanager=n,
        webhooks_per_alertmanager="/".join(str(sum(c.values())) for c in posted),
        answered_2xx=sum(e.status == 200 for p in peers for e in p.proxy.recorded()), stored=len(occurrences),
        lost=n - len(occurrences), duplicated=sum(v - 1 for v in occurrences.values()),
        level_changes=len(escalations), notifications_due=sum(intents.values()),
        notifications_delivered=len(deliveries), heard_twice=len(twice))
