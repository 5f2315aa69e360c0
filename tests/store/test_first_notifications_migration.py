"""Migration 0012 copies every first-notification time from the alerts row into alert_first_notifications, and
back on downgrade; the column stays for replicas of the previous version during a rolling upgrade, and readers fall
back to it. No occurrence and no child row (events, cascaded by foreign keys) is lost on the way."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from receiver.store import first_notified, migrate
from receiver.store.db import create_db_engine
from receiver.store.queries import get_alert
from receiver.store.types import UTCDateTime

from ..conftest import T0

NOTIFIED = T0 + dt.timedelta(seconds=30)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    else:
        url = request.getfixturevalue("pg_server").database_for(tmp_path, "m12")
    engine = create_db_engine(url)
    yield engine
    engine.dispose()


def _alert(alert_id: int, first_notified_at: dt.datetime | None) -> dict:
    return {"id": alert_id, "fingerprint": f"{alert_id:016x}", "status": "firing", "starts_at": T0, "alertname": "A",
            "severity": "warning", "service": "s", "instance": "", "labels": "{}", "annotations": "{}",
            "generator_url": "", "group_key": "", "group_id": "", "receiver": "", "source": "", "external_url": "",
            "level": "L2", "route": "default", "escalate": True, "level_entered_at": T0, "escalation_count": 0,
            "repeat_count": 0, "first_notified_at": first_notified_at, "received_at": T0, "updated_at": T0}


def _alerts_at_0011() -> sa.TableClause:
    times = {"starts_at", "level_entered_at", "first_notified_at", "received_at", "updated_at"}
    return sa.table("alerts", *[sa.column(name, UTCDateTime() if name in times else None)
                                for name in _alert(0, None)])


def test_0012_moves_each_first_notification_and_keeps_every_row_on_the_way_up_and_down(empty_engine):
    migrate.upgrade(empty_engine, "0011")
    events = sa.table("alert_events", sa.column("alert_id"), sa.column("kind"), sa.column("at", UTCDateTime()))
    old = _alerts_at_0011()
    with empty_engine.begin() as conn:
        conn.execute(sa.insert(old), [_alert(1, NOTIFIED), _alert(2, None), _alert(3, None)])
        conn.execute(sa.insert(events), [{"alert_id": i, "kind": "received", "at": T0} for i in (1, 2, 3)])

    migrate.upgrade(empty_engine)
    later = NOTIFIED + dt.timedelta(minutes=1)
    with empty_engine.begin() as conn:
        moved = conn.execute(sa.text("SELECT alert_id, notified_at FROM alert_first_notifications")).all()
        # During a rolling upgrade a replica of the previous version still sets the column (alert 2); this
        # version writes the table (alert 3).
        conn.execute(sa.update(old).where(old.c.id == 2).values(first_notified_at=later))
        first_notified.mark(conn, [3], at=later)
        answered = {i: get_alert(conn, i)["first_notified_at"] for i in (1, 2, 3)}
        assert conn.execute(sa.text("SELECT count(*) FROM alert_events")).scalar() == 3
    assert [r.alert_id for r in moved] == [1]
    assert answered == {1: "2026-11-23T09:00:30Z", 2: "2026-11-23T09:01:30Z", 3: "2026-11-23T09:01:30Z"}

    migrate.downgrade(empty_engine, "0011")
    with empty_engine.connect() as conn:
        back = conn.execute(sa.select(old.c.id, old.c.first_notified_at).order_by(old.c.id)).all()
        assert conn.execute(sa.text("SELECT count(*) FROM alert_events")).scalar() == 3
        assert "alert_first_notifications" not in sa.inspect(conn).get_table_names()
    assert [tuple(r) for r in back] == [(1, NOTIFIED), (2, later), (3, later)]
