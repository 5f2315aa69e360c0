"""The statistics aggregates on both databases: the refresh re-derives exactly the hours that changed (an occurrence
that started weeks ago and resolves now changes that old hour), readers merge aggregate and raw rows at the
watermark and at partial edge hours, a first build in batches publishes nothing until it is whole, and days that
retention rolled up are never counted twice. Numbers are checked against the independent computation of
test_stats_api."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.engine import retention
from receiver.statistics import write_aggregates as aggregates
from receiver.statistics import write_refresh as refresher
from receiver.statistics import write_rollups as rollups
from receiver.store.models import AlertStats
from receiver.store.types import UTCDateTime
from receiver.store.write_port import DirectWrites

from . import dataset
from .dataset import UTC
from .test_stats_api import SINCE, UNTIL, WATERMARK, close, dist, in_period, mttr, refresh_to, z


@pytest.fixture
def setup(make_config, clock):
    config = make_config()
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    db = app.extensions["alert_receiver"].db
    occs = dataset.build()
    dataset.insert(db, occs)
    yield app.test_client(), db, config, occs
    db.dispose()


def summary(client, since=SINCE, until=UNTIL, **q):
    resp = client.get("/api/v1/stats/summary", query_string={"since": z(since), "until": z(until), **q})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def assert_summary(got, mine, source="aggregates") -> None:
    assert got["total"] == len(mine)
    assert got["by_status"] == dict(sorted(collections.Counter(o.status for o in mine).items()))
    assert got["by_severity"] == dict(sorted(collections.Counter(o.severity for o in mine).items()))
    assert got["by_service"] == dict(collections.Counter(o.service for o in mine))
    assert got["escalations"]["count"] == sum(o.escalation_count for o in mine)
    statuses = collections.Counter(s for o in mine for s in o.notifications)
    assert got["notifications"]["by_status"] == dict(sorted(statuses.items()))
    values = [v for o in mine if (v := mttr(o)) is not None]
    close(got["mttr_seconds"], dist(values), values, source)


def settled_by_hour(occs, watermark) -> dict[dt.datetime, int]:
    out: dict[dt.datetime, int] = collections.Counter()
    for o in occs:
        if o.status == "resolved" and o.resolved_at < watermark:
            out[o.starts_at.replace(minute=0, second=0, microsecond=0)] += 1
    return dict(out)


def hour_rows(db) -> dict[dt.datetime, int]:
    t = AlertStats.__table__.c
    with db.connect() as conn:
        rows = conn.execute(sa.select(t.bucket, sa.func.sum(t.occurrences)).where(t.span == 1).group_by(t.bucket))
        return {bucket: int(n) for bucket, n in rows if n}


def test_hour_rows_hold_exactly_the_settled_occurrences(setup):
    client, db, config, occs = setup
    refresh_to(db, config, WATERMARK)
    assert hour_rows(db) == settled_by_hour(occs, WATERMARK)
    t = AlertStats.__table__.c
    with db.connect() as conn:  # day rows are the sums of their hours
        days = dict(conn.execute(sa.select(t.bucket, sa.func.sum(t.occurrences)).where(t.span == 24)
                                 .group_by(t.bucket)).all())
    want = collections.Counter()
    for hour, n in settled_by_hour(occs, WATERMARK).items():
        want[hour.replace(hour=0)] += n
    assert {d: int(n) for d, n in days.items()} == dict(want)


def test_an_occurrence_resolved_weeks_later_changes_its_old_hour(setup, clock):
    client, db, config, occs = setup
    refresh_to(db, config, WATERMARK)
    old = next(o for o in occs if o.status == "firing" and SINCE <= o.starts_at < SINCE + dt.timedelta(days=1))
    assert summary(client)["by_status"]["firing"] == len([o for o in in_period(occs) if o.status == "firing"])

    # Resolved now (a month after it started): its hour was aggregated long ago, without it.
    resp = client.post(f"/api/v1/alerts/{old.id}/resolve", json={"comment": "fixed"})
    assert resp.status_code == 200, resp.get_json()
    with db.connect() as conn:  # its resolution notice to the channels that were told is one more message
        messages = list(conn.execute(sa.text(
            "SELECT n.status FROM notifications n JOIN notification_items i ON i.notification_id = n.id "
            "WHERE i.alert_id = :id"), {"id": old.id}).scalars())
    assert len(messages) >= len(old.notifications)
    resolved = dataclasses.replace(old, status="resolved", ends_at=clock.now(), resolved_at=clock.now(),
                                   notifications=messages)
    occs = [resolved if o.id == old.id else o for o in occs]
    got = summary(client)  # before any refresh: the raw tail has it (resolved after the watermark)
    assert got["source"] == "aggregates+alerts"
    assert_summary(got, in_period(occs))

    # One incremental step re-derives exactly the hours holding occurrences resolved since the last watermark.
    step_to = WATERMARK + dt.timedelta(hours=2)
    step = refresh_to(db, config, step_to)
    assert step.batches == 1 and step.hours == len({o.starts_at.replace(minute=0, second=0, microsecond=0)
                                                    for o in occs if o.status == "resolved"
                                                    and WATERMARK <= o.resolved_at < step_to})
    assert hour_rows(db) == settled_by_hour(occs, step_to)

    later = clock.now() + dt.timedelta(minutes=1)
    refresh_to(db, config, later)
    hour = old.starts_at.replace(minute=0, second=0, microsecond=0)
    assert hour_rows(db).get(hour, 0) == settled_by_hour(occs, WATERMARK).get(hour, 0) + 1
    assert hour_rows(db) == settled_by_hour(occs, later)  # the old hour now counts it; nothing else moved
    assert_summary(summary(client), in_period(occs))
    assert refresher.refresh(DirectWrites(db), config, later + aggregates.settle_delay(config)).hours == 0  # idempotent


def test_a_late_delivery_about_an_aggregated_occurrence_reaches_its_hour(setup):
    client, db, config, occs = setup
    refresh_to(db, config, WATERMARK)
    target = next(o for o in in_period(occs) if o.status == "resolved" and o.resolved_at < WATERMARK
                  and "dead" in o.notifications)
    refreshed = WATERMARK + aggregates.settle_delay(config)
    # An operator retries its dead message by hand and it goes through, after the hour was aggregated.
    with db.begin() as conn:
        conn.execute(sa.text(
            "UPDATE notifications SET status = 'sent', last_attempt_at = :at WHERE id = (SELECT n.id FROM "
            "notifications n JOIN notification_items i ON i.notification_id = n.id WHERE i.alert_id = :a "
            "AND n.status = 'dead' ORDER BY n.id LIMIT 1)").bindparams(sa.bindparam("at", type_=UTCDateTime())),
            {"at": refreshed + dt.timedelta(seconds=20), "a": target.id})
    k = target.notifications.index("dead")
    changed = dataclasses.replace(target, notifications=target.notifications[:k] + ["sent"]
                                  + target.notifications[k + 1:])
    occs = [changed if o.id == target.id else o for o in occs]
    step = refresh_to(db, config, WATERMARK + dt.timedelta(seconds=30))
    assert step.hours >= 1
    assert_summary(summary(client), in_period(occs))


@pytest.mark.parametrize("since, until", [
    (SINCE + dt.timedelta(minutes=17, seconds=23), UNTIL - dt.timedelta(minutes=41)),  # partial edge hours
    (WATERMARK - dt.timedelta(minutes=30), WATERMARK + dt.timedelta(hours=3)),  # around the watermark
    (SINCE + dt.timedelta(minutes=5), SINCE + dt.timedelta(minutes=50)),  # no whole hour: raw only
], ids=["edges", "watermark", "inside-one-hour"])
def test_the_raw_and_aggregate_boundary(setup, since, until):
    client, db, config, occs = setup
    refresh_to(db, config, WATERMARK)
    mine = in_period(occs, since=since, until=until)
    got = summary(client, since, until)
    assert_summary(got, mine, "raw" if got["source"] == "alerts" else "aggregates")
    whole_hour = aggregates.ceil_hour(since) + aggregates.HOUR <= until
    assert got["source"] == ("aggregates+alerts" if whole_hour else "alerts")
    top = client.get("/api/v1/stats/top", query_string={"since": z(since), "until": z(until), "by": "count",
                                                        "limit": 100}).get_json()["top"]
    assert {(r["alertname"], r["service"]): r["count"] for r in top} == dict(
        collections.Counter((o.alertname, o.service) for o in mine))
    trends = client.get("/api/v1/stats/trends", query_string={"since": z(since), "until": z(until),
                                                              "interval": "hour", "group_by": "none"}).get_json()
    starts = [dt.datetime.fromisoformat(b) for b in trends["buckets"]]
    want = [sum(1 for o in mine if s <= o.starts_at < e) for s, e in zip(starts, starts[1:] + [until])]
    assert trends["total"] == want


def test_a_first_build_in_batches_publishes_only_when_whole(setup, monkeypatch):
    client, db, config, occs = setup
    monkeypatch.setattr(refresher, "BUILD_ROWS", 20)
    now = WATERMARK + aggregates.settle_delay(config)
    partial = refresher.refresh(DirectWrites(db), config, now, budget=0.0)
    assert not partial.complete and partial.watermark is None
    first = refresher.refresh(DirectWrites(db), config, now, should_stop=iter([False, False, True]).__next__)
    assert not first.complete and first.batches == 2
    assert summary(client)["source"] == "alerts"  # nothing published yet
    rest = refresher.refresh(DirectWrites(db), config, now)
    assert rest.complete and rest.watermark == WATERMARK and rest.batches > 5
    assert hour_rows(db) == settled_by_hour(occs, WATERMARK)
    got = summary(client)
    assert got["source"] == "aggregates+alerts"
    assert_summary(got, in_period(occs))


def test_rolled_up_days_are_never_counted_twice(setup, clock):
    client, db, config, occs = setup
    refresh_to(db, config, WATERMARK)
    cutoff = dt.datetime(2026, 10, 23, tzinfo=UTC)
    purged = retention.purge(DirectWrites(db), cutoff)
    assert purged.counts.alerts > 0
    with db.connect() as conn:
        gone = set(range(1, 10_000)) - set(conn.execute(sa.text("SELECT id FROM alerts")).scalars())
    alive = [o for o in occs if o.id not in gone]
    # Purged occurrences count from their day's rollup (whole UTC days starting in the period: Oct 22, not the
    # partial Oct 21); their hours are not read from the aggregates any more.
    rolled = [o for o in occs if o.id in gone and aggregates.ceil_day(SINCE) <= o.starts_at < cutoff]
    got = summary(client)
    assert got["source"] == "rollups+aggregates+alerts"
    assert_summary(got, in_period(alive) + rolled)
    assert got["by_level"] == dict(sorted(collections.Counter(o.level for o in in_period(alive) + rolled).items()))
    trends = client.get("/api/v1/stats/trends", query_string={"since": z(SINCE), "until": z(UNTIL),
                                                              "interval": "day", "group_by": "severity"}).get_json()
    assert trends["source"] == "rollups+aggregates+alerts"
    assert sum(trends["total"]) == len(in_period(alive) + rolled)
    refresh_to(db, config, WATERMARK + dt.timedelta(minutes=5))  # and the refresh drops those hours
    assert min(hour_rows(db)) >= cutoff


@pytest.mark.parametrize("seconds", [0.0, 0.5, 1.0, 1.000001] + [b for b in rollups.BOUNDS[::7]]
                         + [b * 1.0001 for b in rollups.BOUNDS[::11]] + [40 * 86400.0])
def test_sql_bucket_index_agrees_with_the_rollups_scheme(db, seconds):
    with db.connect() as conn:
        got = conn.execute(sa.select(aggregates.bucket_index(sa.literal(seconds, sa.Float)))).scalar_one()
    assert rollups.KEYS[got] == rollups.bucket_of(seconds)
