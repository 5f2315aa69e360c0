"""Database outage: PostgreSQL stopped mid-load, then started again, under `alert-receiver serve` and an
Alertmanager-like load generator.

While the database is down the webhook answers 503 with Retry-After, quickly (never a 500, never a hang: every
answer within Alertmanager's ~10 s), `/-/ready` says not ready, and the engine pauses (it logs so, and is not
restarted). Once the server is back, the receiver and its engine recover by themselves: the load generator's
retries land, every alert answered 2xx is stored once, and every page due is delivered.

The server is this test's own (`private_pg`): stopping it breaks no other test running beside it under xdist.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import pytest
import requests
import sqlalchemy as sa
import yaml

from receiver.store import migrate
from receiver.store.db import create_db_engine

from ..support.loadgen import LoadGenerator
from ..support.process import wait_until
from .processes import start_serve, tree

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

DEADLINE_S = 30
ANSWER_WITHIN_S = 10  # Alertmanager's webhook timeout is about 10 s: a slower answer is as bad as none
ENGINE_PAUSES = "database unavailable; the engine pauses and retries"


def stored(url: str) -> Counter:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return Counter(dict(conn.execute(sa.text(
                "SELECT fingerprint, count(*) FROM alerts WHERE alertname = 'LoadGenOutage' GROUP BY fingerprint"))
                .all()))
    finally:
        engine.dispose()


def notifications_sent(url: str) -> int:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM notifications WHERE status = 'sent'")).scalar_one()
    finally:
        engine.dispose()


def engine_pauses(receiver) -> int:
    with open(receiver.log_path, encoding="utf-8", errors="replace") as f:
        return f.read().count(ENGINE_PAUSES)


def test_postgresql_stopped_mid_load_costs_503s_and_nothing_else(private_pg, tmp_path, sink, record_counts):
    url = private_pg.create_database("outage")
    config_path = tmp_path / "receiver.yml"
    config_path.write_text(yaml.safe_dump({
        "database": {"url": url, "lock_timeout": "2s"},
        "escalation": {"tick": "1s", "L1": {"repeat_every": "1h"}},
        "channels": {"pager": {"type": "webhook", "url": f"{sink.url}/pager", "timeout": "5s"}},
        "routes": [{"levels": {"L1": ["pager"]}}],
        # A message sent just as the database went away is recorded by nobody: its lease lets it go again soon.
        "delivery": {"lease": "3s", "retry": {"initial": "200ms", "max_backoff": "1s"}},
    }))
    receiver = start_serve(config_path, tmp_path, workers=2)
    engine_before = tree(receiver).engines
    load = LoadGenerator(receiver.url, run="outage", senders=2, alerts_per_group=2, pace=0.05, timeout=30)
    started = time.monotonic()

    def wait(predicate, what: str):
        try:
            return wait_until(predicate, timeout=DEADLINE_S, interval=0.05, what=what)
        except TimeoutError as exc:
            pytest.fail(f"{exc}\n{receiver.log()}")

    def answered_since(t: float, status: int) -> int:
        return sum(1 for a in load.snapshot()[2] if a.started >= t and a.status == status)

    try:
        load.start()
        wait(lambda: len(load.snapshot()[1]) >= 20, "load before the outage")
        wait(lambda: notifications_sent(url), "the engine to page (it is running)")
        pauses_before = engine_pauses(receiver)
        down_at = time.monotonic()
        private_pg.stop("fast")  # terminates every session: in-flight transactions fail too
        # The outage lasts until each sender has been told "later" 7 times over (its backoff grows to 1 s).
        wait(lambda: answered_since(down_at, 503) >= 7 * load.senders,
             "503s from the webhook while the database is down")
        api = requests.get(receiver.url + "/api/v1/alerts", timeout=ANSWER_WITHIN_S)
        assert api.status_code == 503 and api.headers.get("Retry-After"), (api.status_code, api.text)
        probe_started = time.monotonic()
        ready = requests.get(receiver.url + "/-/ready", timeout=ANSWER_WITHIN_S)
        ready_seconds = time.monotonic() - probe_started
        assert ready.status_code == 503 and ready.json()["status"] == "not ready", ready.text
        assert "unavailable" in ready.json()["checks"]["database"]
        wait(lambda: engine_pauses(receiver) > pauses_before, "the engine to pause")
        acknowledged_before_restart = len(load.snapshot()[1])

        up_at = time.monotonic()
        private_pg.start_again()
        wait(lambda: requests.get(receiver.url + "/-/ready", timeout=5).status_code == 200, "ready again")
        wait(lambda: answered_since(up_at, 200) >= 20, "the load to be answered 2xx again")
        load.stop(timeout=DEADLINE_S)

        sent, acknowledged, attempts = load.snapshot()
        rows = stored(url)
        lost = sorted(set(acknowledged) - set(rows))
        duplicated = sorted(fp for fp, n in rows.items() if n > 1)
        assert not lost and not duplicated, (lost[:5], duplicated[:5])
        assert set(rows) == set(sent) == acknowledged
        statuses = Counter(a.status for a in attempts)
        assert set(statuses) <= {200, 503}, statuses  # never a 500, never a dropped or timed-out request
        assert all(a.retry_after for a in attempts if a.status == 503)
        slowest = max(a.seconds for a in attempts)
        assert slowest < ANSWER_WITHIN_S and ready_seconds < ANSWER_WITHIN_S, (slowest, ready_seconds)

        # The engine recovered by itself (the same process) and every page due went out.
        assert tree(receiver).engines == engine_before, "the engine was restarted instead of pausing"
        engine = create_db_engine(url)
        with engine.connect() as conn:
            ids = set(conn.execute(sa.text("SELECT id FROM alerts WHERE alertname = 'LoadGenOutage'")).scalars())
            due = conn.execute(sa.text("SELECT count(*) FROM notification_items WHERE channel = 'pager'")).scalar_one()
        engine.dispose()
        assert due == len(ids)

        def delivered() -> Counter:
            return Counter(a["id"] for r in sink.ok("/pager") for a in r.json()["alerts"])

        wait(lambda: set(delivered()) >= ids, "every page delivered after the outage")
        pages = delivered()
    finally:
        load.stop(timeout=0)
        receiver.stop()
    record_counts(
        seconds=round(time.monotonic() - started, 1), outage_seconds=round(up_at - down_at, 1), sent=len(sent),
        answered_2xx=len(acknowledged), stored=len(rows), lost=len(lost), duplicated=len(duplicated),
        answers=dict(sorted(statuses.items())), slowest_answer_s=round(slowest, 2),
        acknowledged_before_restart=acknowledged_before_restart, notifications_due=due,
        notifications_delivered=len(set(pages) & ids), repeated_deliveries=sum(pages.values()) - len(pages))


def test_an_engine_started_during_the_outage_waits_for_the_database(private_pg, tmp_path):
    """serve restarts its engine whenever it dies: one started while the database is down must wait, not exit
    (which made serve restart it every few seconds, each time with a traceback)."""
    url = private_pg.create_database("outage")
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    config_path = tmp_path / "receiver.yml"
    config_path.write_text(yaml.safe_dump({"database": {"url": url, "lock_timeout": "1s"},
                                           "escalation": {"tick": "1s"}}))
    private_pg.stop("fast")
    log_path = tmp_path / "worker.log"
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "receiver", "worker", "-c", str(config_path)], env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        def logged(text: str) -> bool:
            assert worker.poll() is None, log_path.read_text()
            return text in log_path.read_text()

        wait_until(lambda: logged("the engine waits for it before starting"), timeout=DEADLINE_S,
                   what="the engine to wait for the database")
        private_pg.start_again()
        wait_until(lambda: logged('msg="engine started"'), timeout=DEADLINE_S, what="the engine to start")
    finally:
        worker.terminate()
        code = worker.wait(DEADLINE_S)
    assert code == 0 and "Traceback" not in log_path.read_text(), log_path.read_text()
