"""Threads and digests for chat channels on an injected clock (SQLite and PostgreSQL), through the real dispatcher
with a threading channel that records what it was asked: one root per incident, every later message a reply in
its thread, an edit of the root after each reply, the thread kept across a restart, a new thread after the
resolution; and the repeats of many groups due in one window sent as one digest.

T0 is Monday 2026-11-23 09:00 UTC. The default ladder: L3 at once, L2 after 5 min, L1 15 min later, then every 15.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.channels.chat import digest_window_end
from receiver.domain import Message, Posted
from receiver.engine.delivery import Dispatcher

from ..support.fixtures import raw
from .harness import Ladder, RecordingChannel, body_with

_TS = itertools.count(1)


class ThreadRecorder(RecordingChannel):
    """Records messages like the harness's channel, and threads like the Slack app: a message without a thread
    (not a digest) posts a root and returns its id."""

    threads = True

    def __init__(self, name: str, settings):
        super().__init__(name)
        self.settings = settings
        self.roots: list[str] = []

    def send(self, message: Message) -> Posted | None:
        super().send(message)
        if message.thread is None and not message.digest_groups:
            self.roots.append(f"{next(_TS)}.000100")
            return Posted("C0CHAT", self.roots[-1])
        return None


def _with_threads(lad: Ladder, names: tuple[str, ...]) -> None:
    for name, channel in lad.channels.items():
        channel.settings = lad.config.channels[name]  # the recorder digests as its settings say
    for name in names:
        lad.channels[name] = ThreadRecorder(name, lad.config.channels[name])
    lad.dispatcher.configure(lad.config, lad.channels)


@pytest.fixture
def ladder(make_config, clock):
    made = []

    def make(levels: dict, channels: dict, threaded: tuple[str, ...] = ()) -> Ladder:
        config = make_config(channels=channels, routes=[{"levels": levels}])
        app = create_app(config, clock=clock, registry=CollectorRegistry())
        lad = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
        _with_threads(lad, threaded)
        made.append((app, lad))
        return lad

    yield make
    for app, lad in made:
        lad.close()
        app.extensions["alert_receiver"].db.dispose()


CHAT = {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T0/B0/x"}


def _plan(channel) -> list[tuple[str, str | None]]:
    """(kind, root id or None) of every message the channel was given."""
    return [(m.kind, m.thread.root_id if m.thread else None) for m in channel.sent]


def test_one_root_per_incident_replies_in_its_thread_and_root_edits(ladder, clock):
    lad = ladder({"L3": ["chat"], "L2": ["chat"], "L1": ["chat"]}, {"chat": CHAT}, threaded=("chat",))
    chat = lad.channels["chat"]
    lad.post("g_routing_info")
    lad.step()
    lad.step(5)  # L2
    lad.step(15)  # L1
    lad.step(15)  # repeat: a single group is not digested
    alert_id = lad.client.get("/api/v1/alerts").get_json()["alerts"][0]["id"]
    assert lad.client.post(f"/api/v1/alerts/{alert_id}/ack", json={"actor": "alice"}).status_code == 200
    lad.step()
    root = chat.roots[0]
    assert len(chat.roots) == 1
    assert _plan(chat) == [("firing", None), ("escalated", root), ("update", root), ("escalated", root),
                           ("update", root), ("repeat", root), ("update", root), ("acknowledged", root),
                           ("update", root)]
    update = chat.sent[-1]
    assert update.alerts[0].acked_by == "alice" and update.alerts[0].level == "L1"  # the state when sent

    # A restart (another dispatcher on the same database) keeps the thread; the resolution closes it.
    chat2 = ThreadRecorder("chat", lad.config.channels["chat"])
    lad.dispatcher.close()
    lad.channels["chat"] = chat2
    lad.dispatcher = Dispatcher(lad.writes, lad.config, lad.channels, clock=clock, worker="engine-2")
    lad.post(_resolved("g_routing_info", clock.now()))
    lad.step()
    assert _plan(chat2) == [("resolved", root), ("update", root)]
    assert chat2.sent[-1].alerts[0].status == "resolved"

    # The next incident of the same group starts a new thread.
    lad.clock.advance(600)
    lad.post(_refired("g_routing_info", clock.now()))
    lad.step()
    assert _plan(chat2)[2:] == [("firing", None)] and len(chat2.roots) == 1


def test_a_failed_root_leaves_the_next_message_to_start_the_thread(ladder):
    from receiver.channels.base import DeliveryError

    lad = ladder({"L3": ["chat"], "L2": ["chat"], "L1": ["chat"]}, {"chat": CHAT}, threaded=("chat",))
    chat = lad.channels["chat"]
    chat.errors = [DeliveryError("channel_not_found", retryable=False)]  # the first page dies
    lad.post("g_routing_info")
    lad.step()
    lad.step(5)
    assert _plan(chat) == [("escalated", None)] and len(chat.roots) == 1  # the escalation became the root


def test_an_edit_without_a_thread_is_dead_not_sent(ladder):
    lad = ladder({"L3": ["chat"], "L2": ["chat"], "L1": ["chat"]}, {"chat": CHAT})
    # Not a threading channel: no root is stored, and no edit is ever asked for.
    lad.post("g_routing_info")
    lad.step()
    lad.step(5)
    assert [m.kind for m in lad.channels["chat"].sent] == ["firing", "escalated"]
    notes = lad.client.get("/api/v1/notifications").get_json()["notifications"]
    assert {n["kind"] for n in notes} == {"firing", "escalated"}


def _resolved(name: str, at: dt.datetime) -> dict:
    doc = json.loads(raw(name))
    doc["status"] = "resolved"
    for alert in doc["alerts"]:
        alert.update(status="resolved", endsAt=at.isoformat().replace("+00:00", "Z"))
    return doc


def _refired(name: str, at: dt.datetime) -> dict:
    doc = json.loads(raw(name))
    for alert in doc["alerts"]:
        alert.update(startsAt=at.isoformat().replace("+00:00", "Z"))
    return doc


def _twenty_groups(lad: Ladder) -> None:
    lad.clock.advance(1)
    for n in range(20):  # twenty Alertmanager groups, 09:00:01 to 09:00:58
        lad.post(body_with("g_routing_critical", cluster=f"c{n:02d}"))
        lad.clock.advance(3)


@pytest.mark.parametrize("threaded", [False, True], ids=["webhook-chat", "threading-chat"])
def test_twenty_groups_repeating_for_an_hour_are_a_handful_of_messages(ladder, threaded):
    channels = {"chat": CHAT, "pager": {"type": "log"}}
    lad = ladder({"L1": ["chat", "pager"]}, channels, threaded=("chat",) if threaded else ())
    _twenty_groups(lad)
    for _ in range(4 * 61):  # an hour and a minute, ticking every 15 s: repeats arising in a minute are due at its end
        lad.step(0.25)
    chat, pager = lad.channels["chat"], lad.channels["pager"]
    posts = [m for m in chat.sent if m.kind != "update"]
    # Each group: its first page. Then every 15 minutes their repeats arise from 09:15:01 to 09:15:58 and fall due
    # at the next minute boundary: 16 are created by 09:15:46 (due 09:16:00), the last 4 by the 09:16:01 tick
    # (due 09:17:00). Two digests per round, four rounds in the hour.
    assert len([m for m in posts if m.kind == "firing"]) == 20
    digests = [m for m in posts if m.digest_groups]
    assert [m.digest_groups for m in digests] == [16, 4] * 4
    assert all(len(m.alerts) == m.digest_groups and m.thread is None for m in digests)
    assert len(posts) == 28  # 1.4 per group, where one per repeat would be 100
    assert [m for m in chat.sent if m.kind == "update"] == []  # a digest is no reply: no root edit
    # The pager (a log channel, no digest) still hears every repeat of every group.
    assert len([m for m in pager.sent if m.kind == "repeat"]) == 80
    # Every digested message is recorded as sent, and each alert's timeline shows its repeats.
    notes = lad.client.get("/api/v1/notifications?channel=chat&kind=repeat&limit=500").get_json()["notifications"]
    assert len(notes) == 80 and {n["status"] for n in notes} == {"sent"}


def test_repeats_fall_due_at_the_window_boundary(ladder):
    lad = ladder({"L1": ["chat"]}, {"chat": CHAT})
    lad.post("g_routing_critical")
    lad.step()
    lad.clock.advance(20)
    lad.step(15)  # 09:15:20: the repeat is due at 09:16:00
    assert [m.kind for m in lad.channels["chat"].sent] == ["firing"]
    lad.step(0.67)  # 09:16:00.2
    assert [m.kind for m in lad.channels["chat"].sent] == ["firing", "repeat"]


def test_digest_window_boundaries():
    at = dt.datetime(2026, 11, 23, 9, 15, 20, tzinfo=dt.timezone.utc)
    assert digest_window_end(at, dt.timedelta(minutes=1)) == at.replace(minute=16, second=0)
    assert digest_window_end(at.replace(second=0), dt.timedelta(minutes=1)) == at.replace(second=0)
    assert digest_window_end(at, dt.timedelta(minutes=5)) == at.replace(minute=20, second=0)


def test_threads_are_found_per_channel_and_group_and_retention_deletes_closed_ones(writes, config, clock):
    from receiver.domain import ChatThread
    from receiver.engine.retention import run_retention
    from receiver.store import chat_threads
    from receiver.store.db import read_transaction

    now = clock.now()
    old, current = ChatThread("C1", "1.0001"), ChatThread("C1", "2.0002")
    with writes.transaction() as conn:
        chat_threads.store_roots(conn, [chat_threads.PostedRoot("chat", "g" * 16, old, now - dt.timedelta(days=99)),
                                        chat_threads.PostedRoot("other", "g" * 16, old, now)])
        conn.execute(chat_threads._threads.update().values(closed_at=now - dt.timedelta(days=95))
                     .where(chat_threads._threads.c.channel == "chat"))
        chat_threads.store_roots(conn, [chat_threads.PostedRoot("chat", "g" * 16, current, now)])
    with read_transaction(writes.db) as conn:
        open_, latest = chat_threads.threads_of(conn, [("chat", "g" * 16), ("nothing", "h" * 16)])
    assert open_ == {("chat", "g" * 16): current} and latest == {("chat", "g" * 16): current}
    run_retention(writes, config, now)  # the default retention keeps 90 days
    with read_transaction(writes.db) as conn:
        roots = sorted(r.root_id for r in conn.execute(chat_threads._threads.select()))
    assert roots == ["1.0001", "2.0002"]  # the closed one went; the other channel's open one stays
