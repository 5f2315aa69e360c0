"""Every delivery attempt on record (issue #19): a real webhook channel answered 500, 500, 429 then 200 leaves four
attempts with those codes and outcomes, in the API, the alert's timeline and its dashboard page; a digest records one
attempt per message; retention deletes the attempts with their message."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
import requests
import responses
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.channels.registry import build_channels
from receiver.engine import retention
from receiver.engine.delivery import Dispatcher
from receiver.render import Renderer
from receiver.store import outbox as store
from receiver.store.attempt_models import NotificationAttempt
from receiver.store.db import write_transaction
from receiver.store.write_port import DirectWrites

from .harness import Ladder, body_with

URL = "https://hooks.example.test/alerts"
CHANNELS = {"hook": {"type": "webhook", "url": URL}}
ROUTE = {"levels": {"L3": ["hook"], "L2": ["hook"], "L1": ["hook"]}}
RETRY = {"retry": {"initial": "5s", "max_backoff": "1m", "give_up_after": "1h", "jitter": 0.1}}
_attempts = NotificationAttempt.__table__


@contextlib.contextmanager
def real_channels(config, clock):
    """A ladder whose dispatcher sends through the real channel classes of `config`, over a mocked HTTP transport."""
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    db = app.extensions["alert_receiver"].db
    lad = Ladder(app.test_client(), db, config, clock)
    lad.dispatcher.close()
    session = requests.Session()
    channels = build_channels(config.channels, renderer=Renderer(), http=session)
    lad.dispatcher = Dispatcher(lad.writes, config, channels, clock=clock, worker="test-engine", rng=lambda: 0.5)
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            yield lad, mock
    finally:
        lad.close()
        session.close()
        db.dispose()


@pytest.fixture
def hooked(make_config, clock):
    """An app whose dispatcher sends through the real webhook channel."""
    with real_channels(make_config(channels=CHANNELS, routes=[ROUTE], delivery=RETRY), clock) as (lad, mock):
        yield lad, mock


def _get(lad, path):
    resp = lad.client.get(path)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def test_retried_three_times_then_sent_lists_four_attempts(hooked):
    lad, mock = hooked
    for status, headers in ((500, {}), (500, {}), (429, {"Retry-After": "20"}), (200, {})):
        mock.add(responses.POST, URL, status=status, headers=headers, body="busy" if status >= 300 else "ok")
    lad.post("g_routing_critical")
    lad.deliver()  # 500: retry after 5 s
    lad.clock.advance(5)
    lad.deliver()  # 500: retry after 10 s
    lad.clock.advance(10)
    lad.deliver()  # 429, Retry-After 20 s
    lad.clock.advance(20)
    lad.deliver()  # 200
    [note] = _get(lad, "/api/v1/notifications")["notifications"]
    assert note["status"] == "sent" and note["attempts"] == 4
    answer = _get(lad, f"/api/v1/notifications/{note['id']}/attempts")
    assert answer["notification_id"] == note["id"]
    tries = answer["attempts"]
    assert [(t["attempt"], t["code"], t["outcome"]) for t in tries] == [
        (1, 500, "failed"), (2, 500, "failed"), (3, 429, "failed"), (4, 200, "sent")]
    assert [t["at"] for t in tries] == ["2026-11-23T09:00:00Z", "2026-11-23T09:00:05Z", "2026-11-23T09:00:15Z",
                                        "2026-11-23T09:00:35Z"]
    assert [t["error"] for t in tries] == ["webhook: HTTP 500: busy", "webhook: HTTP 500: busy",
                                           "webhook: HTTP 429: busy", None]
    assert all(isinstance(t["duration_ms"], int) and t["duration_ms"] >= 0 for t in tries)

    # The alert's timeline carries the same list under its message, and the dashboard shows it.
    alert_id = note["alert_ids"][0]
    timeline = _get(lad, f"/api/v1/alerts/{alert_id}")["timeline"]
    [entry] = [e for e in timeline if e["id"] == f"notification:{note['id']}"]
    assert entry["details"]["attempt_log"] == tries
    html = lad.client.get(f"/alerts/{alert_id}").get_data(as_text=True)
    for line in ("attempt 1: failed · 500", "attempt 2: failed · 500", "attempt 3: failed · 429",
                 "attempt 4: sent · 200"):
        assert line in html

    assert lad.client.get("/api/v1/notifications/987654/attempts").status_code == 404


def test_a_dead_message_records_its_last_attempt_and_a_deferral_none(hooked):
    lad, mock = hooked
    mock.add(responses.POST, URL, status=400, body="bad payload")
    lad.post("g_routing_critical")
    lad.deliver()
    [note] = _get(lad, "/api/v1/notifications")["notifications"]
    tries = _get(lad, f"/api/v1/notifications/{note['id']}/attempts")["attempts"]
    assert [(t["attempt"], t["code"], t["outcome"], t["error"]) for t in tries] == [
        (1, 400, "dead", "webhook: HTTP 400: bad payload")]
    # Not attempted (a rate-limit deferral): no row, and record() reads the attempt number when none is given.
    with write_transaction(lad.db) as conn:
        now = lad.clock.now()
        conn.execute(sa.update(store._messages).values(claimed_by="w", status="failed"))
        store.record(conn, [store.Outcome(note["id"], "failed", False, now, next_attempt_at=now)], worker="w")
        conn.execute(sa.update(store._messages).values(claimed_by="w"))
        store.record(conn, [store.Outcome(note["id"], "sent", True, now, code=None)], worker="w")
    tries = _get(lad, f"/api/v1/notifications/{note['id']}/attempts")["attempts"]
    assert [(t["attempt"], t["outcome"]) for t in tries] == [(1, "dead"), (2, "sent")]


def test_a_digest_records_one_attempt_per_message(make_config, clock):
    hook = "https://hooks.slack.com/services/T0/B0/attempts-test"
    config = make_config(channels={"slack": {"type": "slack", "webhook_url": hook, "rate_limit_per_second": 1000}},
                         routes=[{"levels": {"L3": ["slack"], "L2": ["slack"], "L1": ["slack"]}}], delivery=RETRY)
    with real_channels(config, clock) as (lad, mock):
        for status in (200, 200, 200, 502, 200):  # three first pages; the digest fails once, then is posted
            mock.add(responses.POST, hook, status=status, body="ok" if status == 200 else "bad gateway")
        for team in ("a", "b", "c"):  # three groups: the default digest takes 3 groups or more
            lad.post(body_with("g_routing_critical", team=team))
        lad.deliver()
        with write_transaction(lad.db) as conn:  # each group's repeat, due now
            ids = sorted(conn.execute(sa.select(store._messages.c.id)).scalars())
            conn.execute(sa.update(store._messages).values(kind="repeat", status="pending",
                                                           next_attempt_at=clock.now()))
        lad.deliver()  # one post for the three: 502, each message's attempt 2 failed
        clock.advance(10)  # the backoff after a second attempt
        lad.deliver()  # one post: 200, attempt 3 of each
        assert len(mock.calls) == 3 + 2
        assert len(ids) == 3
        for note_id in ids:
            tries = _get(lad, f"/api/v1/notifications/{note_id}/attempts")["attempts"]
            assert [(t["attempt"], t["code"], t["outcome"]) for t in tries] == [
                (1, 200, "sent"), (2, 502, "failed"), (3, 200, "sent")]


def test_retention_deletes_the_attempts_with_their_message(hooked):
    lad, mock = hooked
    mock.add(responses.POST, URL, status=503, body="down")
    mock.add(responses.POST, URL, status=200, body="ok")
    lad.post("g_routing_critical")
    lad.deliver()
    lad.clock.advance(5)
    lad.deliver()
    [note] = _get(lad, "/api/v1/notifications")["notifications"]
    for alert_id in note["alert_ids"]:
        assert lad.client.post(f"/api/v1/alerts/{alert_id}/resolve", json={"actor": "t"}).status_code == 200
    lad.deliver()  # the resolved notices: one attempt each
    with lad.db.connect() as conn:
        counts = {r[0]: r[1] for r in conn.execute(sa.select(_attempts.c.notification_id, sa.func.count())
                                                      .group_by(_attempts.c.notification_id))}
    assert counts[note["id"]] == 2 and len(counts) == 2  # the page (2 tries) and the resolved notice (1)
    lad.clock.advance(3 * 86400)
    result = retention.purge(DirectWrites(lad.db), retention.cutoff_for(lad.clock.now(), dt.timedelta(days=1)))
    assert result.counts.notifications == 2
    with lad.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(_attempts)).scalar_one() == 0
    assert lad.client.get(f"/api/v1/notifications/{note['id']}/attempts").status_code == 404
