"""Crash: SIGKILL anywhere in `alert-receiver serve` while an Alertmanager-like load generator posts, and nothing is
lost, nothing is stored twice, and every page still goes out.

    loadgen (3 senders, retries like Alertmanager) ─▶ serve: gunicorn workers ─▶ writer ─▶ SQLite │ PostgreSQL
                                                              engine ─▶ pagerduty channel ─▶ sink /v2/enqueue

A seeded schedule kills, in a shuffled order, twice each: a gunicorn worker, the engine child, the writer child (the
group commit of every worker, on both databases) and the whole serve process group (then started again on the same port). After each kill the test
waits, with a deadline, for serve (or the test, for the whole tree) to be whole again, so every kind of death is
also a restart. Afterwards every alert ever answered 2xx is stored (lost = 0), every alert sent was answered 2xx in
the end, none is stored twice, and each stored alert got exactly one PagerDuty trigger intent, delivered at least
once with its own dedup_key `alert-receiver/occurrence/<id>`.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import pytest
import sqlalchemy as sa
import yaml

from receiver.store.db import create_db_engine

from ..support.loadgen import LoadGenerator
from ..support.process import ReceiverProcess, wait_until
from .processes import start_serve, tree, wait_whole

pytestmark = pytest.mark.e2e

SEED = 20261123
WORKERS = 2
ROUTING_KEY = "crash-test-routing-key-5b8e21c4"
ALERTNAME = "LoadGenCrash"
DEADLINE_S = 60  # every wait; a passing run waits a few seconds at most for each


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/receiver.db"
    return request.getfixturevalue("pg_server").database_for(tmp_path, "crash")


def write_config(path, database_url: str, sink_url: str) -> None:
    path.write_text(yaml.safe_dump({
        "database": {"url": database_url, "lock_timeout": "2s"},
        # One page per alert, no repeats while the test runs: every PagerDuty event is a first trigger or its retry.
        "escalation": {"tick": "1s", "L1": {"repeat_every": "1h"}},
        "channels": {"pagerduty": {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": f"{sink_url}/v2/enqueue",
                                   "rate_limit_per_minute": 600000, "timeout": "5s"}},
        "routes": [{"levels": {"L1": ["pagerduty"]}}],
        # A message claimed by an engine that was killed is claimed again 3 s later, not 2 min.
        "delivery": {"lease": "3s", "retry": {"initial": "200ms", "max_backoff": "1s"}},
    }))


def kill(receiver: ReceiverProcess, victim: str, rng: random.Random, *, config_path,
         tmp_path) -> ReceiverProcess:
    """SIGKILL `victim` and wait until the tree is whole again; returns the serve now running."""
    t = tree(receiver)
    if victim == "serve":
        os.killpg(receiver.proc.pid, signal.SIGKILL)
        receiver.proc.wait(DEADLINE_S)
        receiver._log.close()
        receiver = start_serve(config_path, tmp_path, workers=WORKERS, port=receiver.port, timeout=DEADLINE_S)
        wait_whole(receiver, workers=WORKERS, writer=True, timeout=DEADLINE_S)
        return receiver
    pid = rng.choice({"worker": t.workers, "engine": t.engines, "writer": t.writers}[victim])
    os.kill(pid, signal.SIGKILL)
    wait_whole(receiver, workers=WORKERS, writer=True, not_pids={pid}, timeout=DEADLINE_S)
    return receiver


def stored_counts(database_url: str) -> dict[str, tuple[int, list[int]]]:
    """fingerprint → (occurrences, their ids) of the load generator's alerts."""
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT fingerprint, id FROM alerts WHERE alertname = :name"),
                                {"name": ALERTNAME}).all()
    finally:
        engine.dispose()
    out: dict[str, tuple[int, list[int]]] = {}
    for fp, alert_id in rows:
        count, ids = out.get(fp, (0, []))
        out[fp] = (count + 1, ids + [alert_id])
    return out


def outbox(database_url: str) -> tuple[Counter, Counter]:
    """Notification intents by (channel, kind), and outbox messages by status."""
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as conn:
            items = Counter({(c, k): n for c, k, n in conn.execute(sa.text(
                "SELECT channel, kind, count(*) FROM notification_items GROUP BY channel, kind"))})
            statuses = Counter({s: n for s, n in conn.execute(sa.text(
                "SELECT status, count(*) FROM notifications GROUP BY status"))})
    finally:
        engine.dispose()
    return items, statuses


def triggers(sink) -> Counter:
    """dedup_key → how many trigger events the stand-in for events.pagerduty.com accepted."""
    out: Counter = Counter()
    for request in sink.ok("/v2/enqueue"):
        event = request.json()
        assert event["routing_key"] == ROUTING_KEY and event["event_action"] == "trigger", event
        out[event["dedup_key"]] += 1
    return out


def test_sigkill_anywhere_loses_no_alert_and_no_page(database_url, tmp_path, sink, record_counts):
    sqlite = database_url.startswith("sqlite")
    config_path = tmp_path / "receiver.yml"
    write_config(config_path, database_url, sink.url)
    receiver = start_serve(config_path, tmp_path, workers=WORKERS, timeout=DEADLINE_S)
    wait_whole(receiver, workers=WORKERS, writer=True, timeout=DEADLINE_S)
    rng = random.Random(SEED)
    schedule = ["worker", "engine", "serve", "writer"]
    schedule = schedule * 2
    rng.shuffle(schedule)
    load = LoadGenerator(receiver.url, run="crash", senders=3, alerts_per_group=2, pace=0.1)
    started = time.monotonic()
    try:
        load.start()
        for victim in schedule:
            time.sleep(rng.uniform(0.3, 1.2))  # the seeded chaos schedule: when the next kill lands
            receiver = kill(receiver, victim, rng, config_path=config_path, tmp_path=tmp_path)
        load.stop(timeout=DEADLINE_S)

        sent, acknowledged, attempts = load.snapshot()
        stored = stored_counts(database_url)  # at once: a 2xx means committed, not "soon"
        lost = sorted(set(acknowledged) - set(stored))
        duplicated = sorted(fp for fp, (count, _) in stored.items() if count > 1)
        never_acknowledged = sorted(set(sent) - acknowledged)
        assert not lost, f"{len(lost)} alerts answered 2xx but not stored: {lost[:5]}\n{receiver.log()}"
        assert not duplicated, f"stored more than once: {duplicated[:5]}"
        assert not never_acknowledged, f"never answered 2xx: {never_acknowledged[:5]}"
        assert set(stored) == set(sent)
        statuses = Counter(a.status for a in attempts)
        assert set(statuses) <= {200, 503, 0}, f"unexpected answers {statuses}\n{receiver.log()}"
        assert all(a.retry_after for a in attempts if a.status == 503)

        expected = {f"alert-receiver/occurrence/{ids[0]}" for _, ids in stored.values()}
        wait_until(lambda: expected <= set(triggers(sink)), timeout=DEADLINE_S, interval=0.2,
                   what="a PagerDuty trigger for every stored alert")
        delivered = triggers(sink)
        assert set(delivered) == expected  # one dedup_key per alert, none for anything else
        items, _ = wait_until(lambda: (o := outbox(database_url)) and set(o[1]) == {"sent"} and o,
                              timeout=DEADLINE_S, interval=0.2, what="every outbox message recorded as sent")
        assert items == Counter({("pagerduty", "firing"): len(stored)})  # each page intended exactly once
    finally:
        load.stop(timeout=0)
        receiver.stop()
    record_counts(
        backend="sqlite" if sqlite else "postgresql", seconds=round(time.monotonic() - started, 1),
        kills="+".join(f"{v}x{n}" for v, n in sorted(Counter(schedule).items())),
        sent=len(sent), posts=len(attempts), answered_2xx=len(acknowledged), stored=len(stored), lost=len(lost),
        duplicated=len(duplicated), notifications_due=sum(items.values()), notifications_delivered=len(delivered),
        pagerduty_events=sum(delivered.values()),
        repeated_pages=sum(delivered.values()) - len(delivered),  # at least once: a batch sent, its engine killed
        answers=dict(sorted(statuses.items())))
