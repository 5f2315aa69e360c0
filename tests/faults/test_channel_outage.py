"""Channel outage: the provider behind a `webhook` channel answers 500, then 429 with Retry-After, then hangs past
the channel's timeout, then recovers. Every notification arrives after the recovery: by the dispatcher's own retries,
or, for those past `delivery.retry.max_attempts` (dead: listed by GET /api/v1/notifications?status=dead and counted
in /metrics), by POST /api/v1/notifications/{id}/retry.

Each phase lasts until the sink has seen what the phase is for (a wait with a deadline, never a fixed sleep):

    error (500)      alerts A1-A3 posted; until all three are dead (max_attempts 4, backoff 200 ms → 500 ms)
    throttle (429)   alerts B1-B3 posted; until each was throttled twice (Retry-After: 1 s)
    hang             alerts C1-C2 posted; until an attempt of each timed out (channel timeout 2 s)
    ok               every open message goes out by itself; then the dead ones are retried by the API
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
import requests
import yaml

from ..support.loadgen import LoadGenerator
from ..support.process import ReceiverProcess, wait_until
from .flaky_sink import FlakySink

pytestmark = pytest.mark.e2e

MAX_ATTEMPTS = 4
RETRY_AFTER_S = 1
DEADLINE_S = 30
BATCHES = {"A": range(1, 4), "B": range(11, 14), "C": range(21, 23)}  # load generator group numbers


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/receiver.db"
    return request.getfixturevalue("pg_server").database_for(tmp_path, "outage")


@pytest.fixture
def flaky():
    sink = FlakySink(retry_after_s=RETRY_AFTER_S, hang_s=4.0).start()
    yield sink
    sink.stop()


@pytest.fixture
def receiver(tmp_path, database_url, flaky):
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({
        "database": {"url": database_url, "lock_timeout": "2s"},
        "escalation": {"tick": "1s", "L1": {"repeat_every": "1h"}},  # first pages only
        "channels": {"pager": {"type": "webhook", "url": f"{flaky.url}/hook", "timeout": "2s"}},
        "routes": [{"levels": {"L1": ["pager"]}}],
        "delivery": {"retry": {"initial": "200ms", "max_backoff": "500ms", "jitter": 0,
                               "max_attempts": MAX_ATTEMPTS, "give_up_after": "1h"}},
    }))
    process = ReceiverProcess(path, workers=2, log_path=str(tmp_path / "receiver.log")).start().wait_ready()
    yield process
    process.stop()


def notifications(receiver: ReceiverProcess, **params) -> list[dict]:
    r = requests.get(receiver.url + "/api/v1/notifications", params={"limit": 1000, **params}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["notifications"]


def counter(receiver: ReceiverProcess, result: str) -> float:
    text = requests.get(receiver.url + "/metrics", timeout=10).text
    match = re.search(rf'^alert_receiver_notifications_total\{{channel="pager",result="{result}"\}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def by_group(hits) -> dict[int, list]:
    """The sink's requests per load generator group (one alert, so one firing message, per group)."""
    out: dict[int, list] = {}
    for hit in hits:
        out.setdefault(int(hit.json()["alerts"][0]["labels"]["group"]), []).append(hit)
    return out


def test_every_notification_arrives_after_the_provider_recovers(receiver, flaky, record_counts):
    started = time.monotonic()
    load = LoadGenerator(receiver.url, run="outage", alerts_per_group=1)

    def post(batch: str) -> None:
        session = requests.Session()
        for group in BATCHES[batch]:
            body, fingerprints = load.body(group)
            assert load.post_until_acknowledged(session, group, body, fingerprints)

    def wait(predicate, what: str):
        try:
            return wait_until(predicate, timeout=DEADLINE_S, interval=0.1, what=what)
        except TimeoutError as exc:
            pytest.fail(f"{exc}\n{receiver.log()}")

    def seen(batch: str, mode: str, at_least: int) -> bool:
        groups = by_group(h for h in flaky.recorded() if h.mode == mode)
        return all(len(groups.get(g, [])) >= at_least for g in BATCHES[batch])

    flaky.switch("error")
    post("A")
    wait(lambda: len(notifications(receiver, status="dead")) == 3, "the A messages to be dead after 4 × 500")
    dead_first = notifications(receiver, status="dead")
    assert all(n["attempts"] == MAX_ATTEMPTS and "500" in n["last_error"] for n in dead_first), dead_first
    wait(lambda: counter(receiver, "dead") == 3, "the dead messages counted in /metrics")

    flaky.switch("throttle")
    post("B")
    wait(lambda: seen("B", "throttle", 2), "every B message throttled twice")

    flaky.switch("hang")
    post("C")
    wait(lambda: seen("C", "hang", 1), "an attempt of every C message to hang")
    # The sender gives up on a hung request after the channel's timeout, and records a failure.
    wait(lambda: all(n["attempts"] >= 1 and n["status"] in ("failed", "dead") for n in notifications(receiver)),
         "the hung attempts to be recorded as failed")

    flaky.switch("ok")
    recovered = time.monotonic()
    settled = wait(lambda: (ns := notifications(receiver)) and all(n["status"] in ("sent", "dead") for n in ns) and ns,
                   "every open message to go out or be dead")
    dead = [n for n in settled if n["status"] == "dead"]
    assert {n["id"] for n in dead_first} <= {n["id"] for n in dead}
    assert all(n["attempts"] >= MAX_ATTEMPTS for n in dead)
    wait(lambda: counter(receiver, "dead") == len(dead), "every dead message counted in /metrics")
    assert [n["id"] for n in notifications(receiver, status="dead")] == [n["id"] for n in dead]
    sent_by_itself = len(settled) - len(dead)
    assert sent_by_itself >= 2, settled  # the C messages had tried once or twice: they go out by themselves

    for n in dead:
        r = requests.post(f"{receiver.url}/api/v1/notifications/{n['id']}/retry", json={}, timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    wait(lambda: all(n["status"] == "sent" for n in notifications(receiver)), "every retried message to be sent")

    hits = flaky.recorded()
    delivered = by_group(h for h in hits if h.status == 200)
    expected = [g for groups in BATCHES.values() for g in groups]
    assert sorted(delivered) == expected  # every alert's page arrived...
    assert all(h.at >= recovered for groups in delivered.values() for h in groups)  # ...after the recovery
    assert all(len(v) == 1 for v in delivered.values()), {g: len(v) for g, v in delivered.items()}
    # Retry-After was honoured: after a 429 the same message was not tried again before it ran out.
    for group_hits in by_group(hits).values():
        for before, after in zip(group_hits, group_hits[1:]):
            if before.status == 429:
                assert after.at - before.at >= RETRY_AFTER_S - 0.05, (before, after)
    wait(lambda: counter(receiver, "sent") == len(expected), "every message counted as sent in /metrics")
    answers = Counter(h.mode for h in hits)
    alerts = requests.get(receiver.url + "/api/v1/alerts", params={"alertname": "LoadGenOutage", "limit": 1000},
                          timeout=10).json()["alerts"]
    stored = Counter(a["fingerprint"] for a in alerts)
    assert set(stored) == load.acknowledged and set(stored.values()) == {1}
    record_counts(
        seconds=round(time.monotonic() - started, 1), sent=len(expected), answered_2xx=len(load.acknowledged),
        stored=len(stored), lost=len(load.acknowledged - set(stored)), duplicated=sum(stored.values()) - len(stored),
        notifications_due=len(expected),
        notifications_delivered=len(delivered), delivered_after_recovery=sum(map(len, delivered.values())),
        sent_by_itself=sent_by_itself, dead=len(dead), dead_counted_in_metrics=int(counter(receiver, "dead")),
        retried_by_api=len(dead), notifications_lost=len(expected) - len(delivered),
        notifications_repeated=sum(len(v) - 1 for v in delivered.values()),
        provider_answers=dict(sorted(answers.items())))
