"""Issue #15, finding 12: a correctly signed PagerDuty event whose `data` or `agent` is not an object was a 500, and
a signed event could be replayed (an old "acknowledged" re-acks an alert someone has since unacknowledged).

Now a malformed signed event is a 400 naming what is wrong; an event id already acted on is answered 200 `ignored`
(a duplicate) without acting; ids are kept 7 days, and an event that occurred longer ago than a day is not acted
on, so a replay is always either remembered or too old."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from receiver.channels.pagerduty import dedup_key
from receiver.engine.retention import run_retention
from receiver.store.models import Base

from ..support.fixtures import raw
from ..web.test_pagerduty_webhook import pd_client, signed  # noqa: F401  (the fixture)


def event(event_id: str, event_type: str, alert_id: int, *, occurred_at: str = "2026-11-23T09:01:00Z",
          **overrides) -> bytes:
    doc = {"id": event_id, "event_type": event_type, "resource_type": "incident", "occurred_at": occurred_at,
           "agent": {"summary": "Alice Oncall", "type": "user_reference"},
           "data": {"id": "Q1", "type": "incident", "incident_key": dedup_key(alert_id)}}
    doc.update(overrides)
    return json.dumps({"event": doc}).encode()


def post(client, body: bytes):
    return client.post("/webhooks/pagerduty", data=body, headers=signed(body))


def firing(client) -> int:
    assert client.post("/webhook", data=raw("g_routing_critical"), content_type="application/json").status_code == 200
    return client.get("/api/v1/alerts").get_json()["alerts"][0]["id"]


def acked(client, alert_id: int) -> bool:
    return client.get(f"/api/v1/alerts/{alert_id}").get_json()["acked"]


MALFORMED = {
    "data-string": {"data": "incident"},
    "data-list": {"data": [1, 2]},
    "data-number": {"data": 7},
    "agent-string": {"agent": "Alice"},
    "agent-list": {"agent": ["Alice"]},
    "agent-summary-object": {"agent": {"summary": {"name": "Alice"}}},
    "event-type-number": {"event_type": 3},
    "id-missing": {"id": None},
    "id-object": {"id": {"x": 1}},
    "id-too-long": {"id": "x" * 1000},
    "occurred-at-number": {"occurred_at": 1700000000},
    "occurred-at-garbage": {"occurred_at": "yesterday"},
    "occurred-at-no-zone": {"occurred_at": "2026-11-23T09:01:00"},
}


@pytest.mark.parametrize("change", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_signed_event_is_a_400_and_changes_nothing(pd_client, change):  # noqa: F811
    alert_id = firing(pd_client)
    doc = json.loads(event("E1", "incident.acknowledged", alert_id))
    doc["event"].update(change)
    doc["event"] = {k: v for k, v in doc["event"].items() if v is not None}
    body = json.dumps(doc).encode()
    resp = post(pd_client, body)
    assert resp.status_code == 400, (resp.status_code, resp.data[:300])
    assert resp.get_json()["error"] == "malformed_event" and resp.get_json()["detail"]
    assert not acked(pd_client, alert_id)


@pytest.mark.parametrize("body", [b'{"event": []}', b'{"event": "x"}', b"[]", b'"event"', b"{}"],
                         ids=["event-list", "event-string", "top-list", "top-string", "no-event"])
def test_signed_bodies_of_the_wrong_shape_are_400(pd_client, body):  # noqa: F811
    assert post(pd_client, body).status_code == 400


def test_a_replayed_event_is_not_acted_on_again(pd_client):  # noqa: F811
    alert_id = firing(pd_client)
    ack = event("E-ack", "incident.acknowledged", alert_id)
    assert post(pd_client, ack).get_json()["status"] == "applied" and acked(pd_client, alert_id)
    unack = event("E-unack", "incident.unacknowledged", alert_id)
    assert post(pd_client, unack).get_json()["status"] == "applied" and not acked(pd_client, alert_id)
    replay = post(pd_client, ack)
    assert replay.status_code == 200 and replay.get_json()["status"] == "ignored"
    assert replay.get_json()["reason"].startswith("duplicate")
    assert not acked(pd_client, alert_id)


def test_an_event_from_long_ago_is_not_acted_on(pd_client):  # noqa: F811
    alert_id = firing(pd_client)
    old = post(pd_client, event("E-old", "incident.acknowledged", alert_id, occurred_at="2026-11-20T09:00:00Z"))
    assert old.status_code == 200 and old.get_json()["status"] == "ignored" and not acked(pd_client, alert_id)


def test_remembered_ids_are_deleted_after_seven_days(pd_client, clock):  # noqa: F811
    alert_id = firing(pd_client)
    assert post(pd_client, event("E-ack", "incident.acknowledged", alert_id)).get_json()["status"] == "applied"
    svc = pd_client.application.extensions["alert_receiver"]

    def remembered() -> int:
        with svc.db.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM pagerduty_events")).scalar_one()

    assert remembered() == 1
    run_retention(svc.writes, svc.config, clock.now() + dt.timedelta(days=6))
    assert remembered() == 1
    run_retention(svc.writes, svc.config, clock.now() + dt.timedelta(days=7, minutes=1))
    assert remembered() == 0


def test_migration_0007_creates_the_tables_the_models_declare(pd_client):  # noqa: F811
    """The migrated test database (SQLite and PostgreSQL) has exactly the two tables as receiver/store/models.py
    declares them: columns, types, keys and indexes."""
    ours = {"session_revocations", "pagerduty_events"}
    with pd_client.application.extensions["alert_receiver"].db.connect() as conn:
        assert ours <= set(sa.inspect(conn).get_table_names())
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    flat = [d for group in diffs for d in (group if isinstance(group, list) else [group])]
    mine = [d for d in flat if any(name in repr(d) for name in ours)]
    assert mine == []
