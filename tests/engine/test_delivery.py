"""The dispatcher: retries with backoff and Retry-After until the deadline, dead at once on a permanent error,
leases that survive a crash, rate limits, the notifications API and manual retry."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.channels.base import DeliveryError, RateLimit
from receiver.config.model import RetrySettings
from receiver.engine.delivery import Dispatcher, TokenBucket, backoff
from receiver.store import outbox as store
from receiver.store.db import write_transaction

from .harness import Ladder

CHANNELS = {"chat": {"type": "log"}, "pd": {"type": "pagerduty", "routing_key": "k" * 32}}
ROUTE = {"levels": {"L3": ["chat"], "L2": ["chat"], "L1": ["chat"]}}


@pytest.fixture
def lad(make_config, clock):
    config = make_config(channels=CHANNELS, routes=[ROUTE],
                         delivery={"retry": {"initial": "5s", "max_backoff": "1m", "give_up_after": "5m",
                                             "jitter": 0.1}})
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    ladder = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    yield ladder
    ladder.close()
    app.extensions["alert_receiver"].db.dispose()


def notifications(lad, **params):
    resp = lad.client.get("/api/v1/notifications", query_string=params)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["notifications"]


@pytest.mark.parametrize("attempt, rng, seconds", [
    (1, 0.5, 5), (2, 0.5, 10), (3, 0.5, 20), (5, 0.5, 60), (9, 0.5, 60),  # doubling, capped
    (1, 0.0, 4.5), (1, 1.0, 5.5),  # ±10% jitter
], ids=["1st", "2nd", "3rd", "capped", "still-capped", "jitter-low", "jitter-high"])
def test_backoff(attempt, rng, seconds):
    retry = RetrySettings(initial="5s", max_backoff="1m", give_up_after="1h", jitter=0.1)
    assert backoff(attempt, retry, rng=lambda: rng).total_seconds() == pytest.approx(seconds)


def test_token_bucket_allows_the_rate_and_says_how_long_to_wait():
    bucket = TokenBucket(2, 1.0)
    assert bucket.wait(0.0) == 0 and bucket.wait(0.0) == 0
    assert bucket.wait(0.0) == pytest.approx(0.5)
    assert bucket.wait(0.5) == 0


def test_retryable_failures_back_off_then_succeed(lad):
    chat = lad.channels["chat"]
    chat.errors = [DeliveryError("HTTP 503", retryable=True), DeliveryError("HTTP 429", retryable=True, retry_after=30)]
    lad.post("g_routing_critical")
    lad.deliver()
    [n] = notifications(lad)
    assert n["status"] == "failed" and n["attempts"] == 1 and n["last_error"] == "HTTP 503"
    assert n["next_attempt_at"] == "2026-11-23T09:00:05Z"  # initial 5 s (rng 0.5: no jitter)
    lad.clock.advance(5)
    lad.deliver()
    [n] = notifications(lad)
    assert n["attempts"] == 2 and n["next_attempt_at"] == "2026-11-23T09:00:35Z"  # Retry-After 30 s beats 10 s
    lad.clock.advance(29)
    lad.deliver()
    assert chat.sent == []
    lad.clock.advance(1)
    lad.deliver()
    [n] = notifications(lad)
    assert n["status"] == "sent" and n["attempts"] == 3 and len(chat.sent) == 1
    timeline = lad.client.get(f"/api/v1/alerts/{n['alert_ids'][0]}").get_json()["timeline"]
    notified = [e for e in timeline if e["kind"] == "notified"]
    assert len(notified) == 1 and notified[0]["details"]["status"] == "sent"


def test_permanent_failure_is_dead_at_once_and_can_be_retried(lad):
    chat = lad.channels["chat"]
    chat.errors = [DeliveryError("HTTP 400: invalid_payload", retryable=False)]
    lad.post("g_routing_critical")
    lad.deliver()
    [n] = notifications(lad, status="dead")
    assert n["attempts"] == 1 and n["last_error"] == "HTTP 400: invalid_payload"
    assert notifications(lad, status="pending") == []
    resp = lad.client.post(f"/api/v1/notifications/{n['id']}/retry")
    assert resp.status_code == 200 and resp.get_json()["status"] == "pending"
    lad.deliver()
    assert notifications(lad, status="sent")[0]["id"] == n["id"] and len(chat.sent) == 1
    assert lad.client.post(f"/api/v1/notifications/{n['id']}/retry").status_code == 409  # sent: nothing to retry
    assert lad.client.post("/api/v1/notifications/9999/retry").status_code == 404


def test_gives_up_after_the_deadline(lad):
    chat = lad.channels["chat"]
    chat.errors = [DeliveryError("HTTP 502", retryable=True)] * 100
    lad.post("g_routing_critical")
    for _ in range(40):
        lad.deliver()
        lad.clock.advance(20)
    [n] = notifications(lad)
    assert n["status"] == "dead" and n["last_error"].startswith("gave up after")
    assert n["last_attempt_at"] <= "2026-11-23T09:05:00Z"  # give_up_after 5m: the last try is at the deadline


def test_gives_up_after_max_attempts_and_a_manual_retry_gets_one_more(make_config, clock):
    config = make_config(channels=CHANNELS, routes=[ROUTE],
                         delivery={"retry": {"initial": "5s", "max_backoff": "5s", "max_attempts": 3}})
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    lad = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    try:
        lad.channels["chat"].errors = [DeliveryError("HTTP 502", retryable=True)] * 4
        lad.post("g_routing_critical")
        for _ in range(5):
            lad.deliver()
            lad.clock.advance(10)
        [n] = notifications(lad)
        assert n["status"] == "dead" and n["attempts"] == 3 and n["last_error"] == "gave up after 3 attempts: HTTP 502"
        assert lad.client.post(f"/api/v1/notifications/{n['id']}/retry").status_code == 200
        lad.deliver()
        [n] = notifications(lad)
        assert n["status"] == "dead" and n["attempts"] == 4  # the fourth error: dead again after one attempt
        assert lad.client.post(f"/api/v1/notifications/{n['id']}/retry").status_code == 200
        lad.deliver()
        [n] = notifications(lad)
        assert n["status"] == "sent" and n["attempts"] == 5 and len(lad.channels["chat"].sent) == 1
    finally:
        lad.close()
        app.extensions["alert_receiver"].db.dispose()


def test_a_claim_whose_process_died_is_reclaimed_after_the_lease(lad, clock):
    lad.post("g_routing_critical")
    # Another engine claimed the message and died before sending (as if SIGKILLed between claim and send).
    with write_transaction(lad.db) as conn:
        [claimed] = store.claim_due(conn, now=clock.now(), worker="dead-engine", lease=dt.timedelta(minutes=2), limit=10)
    lad.deliver()
    assert lad.channels["chat"].sent == []  # still leased to the dead engine
    clock.advance(121)
    lad.deliver()
    assert len(lad.channels["chat"].sent) == 1
    with lad.db.connect() as conn:
        status = conn.execute(sa.text("SELECT status, attempts FROM notifications WHERE id = :i"), {"i": claimed.id}).one()
    assert tuple(status) == ("sent", 1)


def test_rate_limit_defers_without_counting_an_attempt(lad):
    chat = lad.channels["chat"]
    type(chat).rate_limit = property(lambda self: RateLimit(count=1, per=60))
    try:
        lad.post("g_routing_critical")
        lad.post("b_group_5_firing")
        lad.deliver()
        assert len(chat.sent) == 1
        waiting = [n for n in notifications(lad) if n["status"] != "sent"]
        assert len(waiting) == 1 and waiting[0]["attempts"] == 0 and waiting[0]["status"] == "pending"
    finally:
        del type(chat).rate_limit


def test_notifications_api_filters_and_rejects_unknown_parameters(lad):
    lad.post("g_routing_critical")
    lad.deliver()
    assert len(notifications(lad, channel="chat", kind="firing", status="sent")) == 1
    assert notifications(lad, channel="nope") == []
    aid = notifications(lad)[0]["alert_ids"][0]
    assert len(notifications(lad, alert_id=aid)) == 1
    assert lad.client.get("/api/v1/notifications?bogus=1").status_code == 400
    assert lad.client.get("/api/v1/notifications?status=weird").status_code == 400


def test_a_groups_messages_to_a_channel_go_out_in_creation_order(lad):
    """A first page still pending when its escalation is created (a late engine) is sent before it, even when
    sending the first page is slow: sent in parallel, the escalation would overtake it."""
    import threading

    chat = lad.channels["chat"]
    escalation_started = threading.Event()
    plain_send = chat.send

    def slow_first_page(message):
        if message.kind == "escalated":
            escalation_started.set()
        else:  # give a parallel escalation every chance to overtake (bounded: returns after 0.5 s at most)
            escalation_started.wait(0.5)
        plain_send(message)

    chat.send = slow_first_page
    lad.post("g_routing_info")  # L3 firing, not yet delivered
    lad.clock.advance(5 * 60)
    lad.tick()  # L3 → L2: the escalation is queued behind the first page, same group, same channel
    lad.deliver()
    assert [m.kind for m in chat.sent] == ["firing", "escalated"]


def test_a_channel_that_waits_on_no_network_sends_on_the_dispatchers_thread(lad):
    """The log channel writes one line: on a pool thread it only added hand-offs and lock contention (a third of
    the engine's CPU under load). A channel that waits on a provider keeps the pool, so that a slow provider
    holds up no other channel."""
    import threading

    chat = lad.channels["chat"]
    threads: list[str] = []
    plain_send = chat.send

    def send(message):
        threads.append(threading.current_thread().name)
        plain_send(message)

    chat.send = send
    chat.waits_on_network = False
    lad.post("g_routing_info")
    lad.deliver()
    chat.waits_on_network = True
    lad.post("g_routing_critical")
    lad.deliver()
    assert len(threads) == 2
    assert threads[0] == threading.current_thread().name
    assert threads[1].startswith("send")
    assert [m.kind for m in chat.sent] == ["firing", "firing"]
