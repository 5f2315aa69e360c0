"""The export's columns for analysis (issue #19), on both databases: averaging time_to_ack_seconds and
time_to_resolve_seconds over the exported rows gives the summary's MTTA and MTTR means exactly (on raw rows and with
the aggregates merged), and its p50/p90 when they are exact; CSV, JSON and NDJSON carry the same values; max_level
and paged_person are what a hand count says."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import statistics

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.config.sla_targets import VISITED, flag
from receiver.statistics.read_export import COLUMNS
from receiver.store.models import Alert, Notification

from ..stats import dataset as stats_data
from ..stats.test_stats_api import SINCE, UNTIL, WATERMARK, quantile, refresh_to, z
from .dataset import NOW, Dataset

NUMERIC = {"id", "escalation_count", "time_to_ack_seconds", "time_to_resolve_seconds"}


def _rows(client, params: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """The same export as CSV (cells converted: numbers parsed, empty → None, JSON text parsed), JSON, NDJSON."""
    data = client.get("/api/v1/alerts/export", query_string={**params, "format": "csv"}).data.decode()
    reader = csv.reader(io.StringIO(data, newline=""))
    header = next(reader)
    assert tuple(header) == COLUMNS
    as_csv = []
    for cells in reader:
        row = {}
        for key, cell in zip(header, cells):
            if cell == "":
                row[key] = None
            elif key in NUMERIC:
                row[key] = float(cell)
            elif key in ("labels", "annotations"):
                row[key] = json.loads(cell)
            else:
                row[key] = cell
        as_csv.append(row)
    as_json = json.loads(client.get("/api/v1/alerts/export", query_string={**params, "format": "json"}).data)
    lines = client.get("/api/v1/alerts/export", query_string={**params, "format": "ndjson"}).data.splitlines()
    return as_csv, as_json, [json.loads(line) for line in lines]


def _agree(as_csv, as_json, as_ndjson) -> None:
    assert as_json == as_ndjson
    assert len(as_csv) == len(as_json)
    for c, j in zip(as_csv, as_json):
        assert list(j) == list(COLUMNS)
        for key in COLUMNS:
            want = j[key]
            if key in NUMERIC and want is not None:
                want = float(want)
            elif want == "":
                want = None  # CSV has no null but the empty cell
            assert c[key] == want, (j["id"], key)


@pytest.fixture(params=["raw", "aggregates"])
def stats_history(request, make_config, clock):
    config = make_config()
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    occs = stats_data.build()
    db = app.extensions["alert_receiver"].db
    stats_data.insert(db, occs)
    if request.param == "aggregates":
        refresh_to(db, config, WATERMARK)
    yield app.test_client(), occs, request.param
    db.dispose()


def test_the_export_recomputes_the_summarys_mtta_and_mttr(stats_history):
    client, occs, source = stats_history
    period = {"since": z(SINCE), "until": z(UNTIL)}
    summary = client.get("/api/v1/stats/summary", query_string=period).get_json()
    as_csv, as_json, as_ndjson = _rows(client, period)
    _agree(as_csv, as_json, as_ndjson)
    assert len(as_json) == summary["total"]
    for column, name in (("time_to_ack_seconds", "mtta_seconds"), ("time_to_resolve_seconds", "mttr_seconds")):
        values = sorted(float(r[column]) for r in as_json if r[column] is not None)
        api = summary[name]
        assert api["count"] == len(values) > 20
        assert api["mean"] == round(sum(values) / len(values), 3), (source, name)
        if api.get("method", "exact") == "exact" and source == "raw":
            assert api["p50"] == round(quantile(values, 0.5), 3) and api["p90"] == round(quantile(values, 0.9), 3)
        if "min" in api:
            assert (api["min"], api["max"]) == (round(values[0], 3), round(values[-1], 3))
    # And from the dataset's own records, by hand: the definitions, not just the same SQL twice.
    by_id = {o.id: o for o in occs}
    for row in as_json:
        o = by_id[row["id"]]
        ack = (max(0.0, (o.first_acked_at - o.first_notified_at).total_seconds())
               if o.first_notified_at and o.first_acked_at else None)
        res = (max(0.0, ((o.ends_at or o.resolved_at) - o.starts_at).total_seconds())
               if o.status == "resolved" else None)
        assert row["time_to_ack_seconds"] == (None if ack is None else pytest.approx(ack, abs=1e-9))
        assert row["time_to_resolve_seconds"] == (None if res is None else pytest.approx(res, abs=1e-9))
    assert statistics.mean(r["time_to_ack_seconds"] for r in as_json if r["time_to_ack_seconds"] is not None) > 0


def test_max_level_route_and_the_paged_person(db, client):
    ds = Dataset()
    t = NOW - dt.timedelta(hours=2)
    never = ds.alert(severity="info", starts_at=t)  # L3 throughout
    climbed = ds.alert(severity="warning", starts_at=t, escalation_count=1, level="L1")  # L2 → L1 now
    back = ds.alert(severity="warning", starts_at=t)  # was at L1, at L2 now (its L1 bit says so)
    paged = ds.alert(severity="critical", starts_at=t, first_notified_at=t + dt.timedelta(seconds=30),
                     first_acked_at=t + dt.timedelta(seconds=90), ends_at=t + dt.timedelta(minutes=10))
    chat = ds.message([paged], created_at=t)  # a plain channel: no person
    first = ds.message([paged], created_at=t + dt.timedelta(seconds=1))
    later = ds.message([paged, climbed], created_at=t + dt.timedelta(minutes=5))
    ds.insert(db)
    with db.begin() as conn:
        conn.execute(sa.update(Alert.__table__).where(Alert.__table__.c.id == back.id)
                     .values(sla_flags=flag("L1", VISITED) | flag("L2", VISITED), route="-db-route"))
        for message, person in ((first, "alice"), (later, "=bob")):
            conn.execute(sa.update(Notification.__table__).where(Notification.__table__.c.id == message.id)
                         .values(person=person, target="schedule:primary"))
    assert chat.id < first.id < later.id
    as_csv, as_json, as_ndjson = _rows(client, {})
    assert as_json == as_ndjson
    got = {r["id"]: r for r in as_json}
    assert {i: got[i]["max_level"] for i in got} == {never.id: "L3", climbed.id: "L1", back.id: "L1", paged.id: "L1"}
    assert {i: got[i]["paged_person"] for i in got} == {never.id: None, climbed.id: "=bob", back.id: None,
                                                         paged.id: "alice"}
    assert got[back.id]["route"] == "-db-route" and got[never.id]["route"] == "default"
    p = got[paged.id]
    assert (p["first_notified_at"], p["first_acked_at"], p["acked_by"]) == (
        "2026-11-23T10:00:30Z", "2026-11-23T10:01:30Z", "oncall")
    assert (float(p["time_to_ack_seconds"]), float(p["time_to_resolve_seconds"])) == (60.0, 600.0)
    assert got[never.id]["time_to_ack_seconds"] is None and got[never.id]["time_to_resolve_seconds"] is None
    csv_by_id = {int(r["id"]): r for r in as_csv}
    assert csv_by_id[climbed.id]["paged_person"] == "'=bob" and csv_by_id[back.id]["route"] == "'-db-route"
