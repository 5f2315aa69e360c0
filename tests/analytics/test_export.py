"""The streamed export, on both databases: every matching row exactly once with the documented columns, the
history filters of GET /api/v1/alerts, formula cells neutralised in CSV only, JSON and NDJSON, the CLI's rows
identical to the API's, and a connection released when the client goes away."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from click.testing import CliRunner

from receiver.cli import main as cli_main
from receiver.statistics.read_export import COLUMNS, neutralise

from ..support.fixtures import TOKEN, raw
from .dataset import NOW, Dataset

HOSTILE = {
    "alertname": "=cmd|' /C calc'!A0",
    "instance": "+1+1",
    "acked_by": "@SUM(A1:A9)",
    "source": "-2+3",
    "receiver": "\tbell",
    "service": "\rcarriage",
}


def iso(t: dt.datetime | None) -> str:
    if t is None:
        return ""
    return t.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def expected_row(o) -> dict[str, str]:
    """The CSV row of an occurrence, computed from the dataset record (before neutralisation)."""
    return {"id": str(o.id), "fingerprint": o.fingerprint, "alertname": o.alertname, "severity": o.severity,
            "service": o.service, "instance": o.instance, "status": o.status, "level": o.level,
            "starts_at": iso(o.starts_at), "ends_at": iso(o.ends_at), "acked_at": iso(o.first_acked_at),
            "acked_by": o.acked_by or "", "resolved_at": iso(o.resolved_at),
            "escalation_count": str(o.escalation_count), "labels": o.labels, "annotations": o.annotations,
            "group_key": o.group_key, "receiver": o.receiver, "source": o.source,
            # The columns for analysis (read_export_columns.py): the statistics' definitions, by hand.
            "first_notified_at": iso(o.first_notified_at), "first_acked_at": iso(o.first_acked_at),
            "time_to_ack_seconds": (max(0.0, (o.first_acked_at - o.first_notified_at).total_seconds())
                                    if o.first_notified_at and o.first_acked_at else ""),
            "time_to_resolve_seconds": (max(0.0, (o.end - o.starts_at).total_seconds())
                                        if o.status == "resolved" else ""),
            "max_level": o.level, "route": "default", "paged_person": ""}


def parse_csv(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader)
    return header, [dict(zip(header, row)) for row in reader]


@pytest.fixture
def dataset(db) -> Dataset:
    ds = Dataset.history(seed=41, n=230)
    ds.alert(starts_at=NOW - dt.timedelta(hours=3), severity="critical", labels={"team": "db"},
             annotations={"summary": "quotes \" and, commas\nand a newline", "unicode": "żółw 🐢"},
             first_acked_at=NOW - dt.timedelta(hours=2), **HOSTILE)
    return ds.insert(db)


def test_csv_has_every_row_once_with_the_documented_columns(client, dataset):
    r = client.get("/api/v1/alerts/export.csv")
    assert r.status_code == 200 and r.is_streamed
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"] == 'attachment; filename="alerts-20261123T090000Z.csv"'
    header, rows = parse_csv(r.data)
    assert tuple(header) == COLUMNS
    assert [int(row["id"]) for row in rows] == sorted(o.id for o in dataset.alerts)
    for row in rows:
        want = expected_row(dataset.by_id(int(row["id"])))
        if row["id"] == str(dataset.alerts[-1].id):
            continue  # the hostile row: checked in the next test
        for key in COLUMNS:
            if key in ("labels", "annotations"):
                assert json.loads(row[key]) == want[key]
            elif key.startswith("time_to_") and want[key] != "":
                # Milliseconds: SQLite's date arithmetic is exact to the millisecond, the data has microseconds.
                assert float(row[key]) == pytest.approx(want[key], abs=0.0011), (row["id"], key)
            else:
                assert row[key] == want[key], (row["id"], key)


def test_csv_neutralises_formula_cells_and_json_keeps_them(client, dataset):
    hostile = dataset.alerts[-1]
    _, rows = parse_csv(client.get("/api/v1/alerts/export.csv", query_string={"alertname": HOSTILE["alertname"]}).data)
    assert len(rows) == 1
    row = rows[0]
    for key, value in HOSTILE.items():
        assert row[key] == "'" + value, key
    assert json.loads(row["annotations"]) == hostile.annotations  # JSON objects start with {: left alone
    assert row["severity"] == "critical"
    doc = client.get("/api/v1/alerts/export.csv", query_string={"format": "json", "alertname": HOSTILE["alertname"]})
    [obj] = json.loads(doc.data)
    assert {k: obj[k] for k in HOSTILE} == HOSTILE
    assert obj["annotations"] == hostile.annotations and obj["labels"] == hostile.labels


@pytest.mark.parametrize("cell, want", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
    ("plain", "plain"), ("", ""), (" =1", " =1"), ("a=1", "a=1"), ("{\"a\": 1}", "{\"a\": 1}"),
])
def test_neutralise(cell, want):
    assert neutralise(cell) == want


FILTERS = [
    {},
    {"status": "resolved"},
    {"status": "firing", "level": "L1,L2"},
    {"severity": "critical"},
    {"service": "payments", "alertname": "DiskFull"},
    {"since": "2026-11-15T00:00:00Z", "until": "2026-11-18T12:00:00Z"},
    {"acked": "true"},
    {"acked": "false", "service": "search"},
    {"match": 'instance=~"host-[12]:9100"'},
    {"match": ['severity!="info"', 'service="checkout"']},
]


@pytest.mark.parametrize("params", FILTERS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) or "all")
def test_filters_select_the_same_rows_as_the_history_api(client, dataset, params):
    listed = client.get("/api/v1/alerts", query_string={**params, "limit": 1000, "order": "asc"}).get_json()
    want = [a["id"] for a in listed["alerts"]]
    _, rows = parse_csv(client.get("/api/v1/alerts/export.csv", query_string=params).data)
    assert [int(r["id"]) for r in rows] == want
    doc = json.loads(client.get("/api/v1/alerts/export", query_string={**params, "format": "json"}).data)
    assert [o["id"] for o in doc] == want
    lines = client.get("/api/v1/alerts/export", query_string={**params, "format": "ndjson"}).data.splitlines()
    assert [json.loads(line)["id"] for line in lines] == want


def test_json_and_ndjson_objects_match_the_history_api(client, dataset):
    listed = {a["id"]: a for a in client.get("/api/v1/alerts", query_string={"limit": 1000}).get_json()["alerts"]}
    r = client.get("/api/v1/alerts/export.csv?format=json")
    assert r.headers["Content-Type"] == "application/json"
    doc = json.loads(r.data)
    assert len(doc) == len(dataset.alerts)
    for obj in doc:
        assert list(obj) == list(COLUMNS)
        a = listed[obj["id"]]
        shared = [k for k in COLUMNS if k in a]  # the columns for analysis beyond the API's: test_export_analysis
        assert len(shared) == len(COLUMNS) - 4
        assert {k: obj[k] for k in shared} == {k: a[k] for k in shared}
    r = client.get("/api/v1/alerts/export?format=ndjson")
    assert r.headers["Content-Type"] == "application/x-ndjson"
    assert [json.loads(line) for line in r.data.decode().splitlines()] == doc


def test_empty_exports_are_well_formed(client, dataset):
    none = {"alertname": "NoSuchAlert"}
    header, rows = parse_csv(client.get("/api/v1/alerts/export.csv", query_string=none).data)
    assert tuple(header) == COLUMNS and rows == []
    assert json.loads(client.get("/api/v1/alerts/export", query_string={**none, "format": "json"}).data) == []
    assert client.get("/api/v1/alerts/export", query_string={**none, "format": "ndjson"}).data == b""


def test_rows_from_the_real_ingest_path(client):
    for name in ("b_group_5_firing", "d_mixed_firing_resolved", "f_unicode_special_chars"):
        assert client.post("/webhook", data=raw(name), content_type="application/json").status_code == 200
    listed = client.get("/api/v1/alerts", query_string={"limit": 1000, "order": "asc"}).get_json()["alerts"]
    _, rows = parse_csv(client.get("/api/v1/alerts/export.csv").data)
    assert [int(r["id"]) for r in rows] == [a["id"] for a in listed]
    for row, a in zip(rows, listed):
        assert json.loads(row["labels"]) == a["labels"] and json.loads(row["annotations"]) == a["annotations"]
        assert row["starts_at"] == a["starts_at"] and row["group_key"] == a["group_key"]


@pytest.mark.parametrize("query", ["format=xml", "colour=red", "status=burning", "since=yesterday", "limit=5"])
def test_bad_parameters_are_400(client, query):
    r = client.get(f"/api/v1/alerts/export.csv?{query}")
    assert r.status_code == 400 and r.get_json()["error"] in ("bad_parameter", "unknown_parameter")


@pytest.mark.parametrize("token, status", [(None, 401), (TOKEN, 403), ("read-token-0123", 200)])
def test_export_needs_the_read_role(auth_config, clock, token, status):
    from prometheus_client import CollectorRegistry

    from receiver.app import create_app

    app = create_app(auth_config, clock=clock, registry=CollectorRegistry())
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = app.test_client().get("/api/v1/alerts/export.csv", headers=headers)
    assert r.status_code == status
    r.close()  # a streamed body holds its connection (and snapshot) until read or closed, as under gunicorn
    app.extensions["alert_receiver"].db.dispose()


def test_streams_in_batches_beats_the_heartbeat_and_releases_its_connection(app, client, db, dataset, monkeypatch):
    from receiver.statistics import read_export as export_store

    monkeypatch.setattr(export_store, "BATCH", 25)
    beats = []
    app.extensions["alert_receiver_heartbeat"] = lambda: beats.append(1)
    r = client.get("/api/v1/alerts/export.csv?format=ndjson", buffered=False)
    chunks = iter(r.response)
    first = next(chunks)
    assert first  # streaming has begun: the connection is checked out for the export
    assert db.pool.checkedout() == 1
    r.close()  # the client went away
    assert db.pool.checkedout() == 0
    full = client.get("/api/v1/alerts/export.csv")
    assert len(parse_csv(full.data)[1]) == len(dataset.alerts)
    assert len(beats) >= 2


def test_unavailable_database_is_503_before_any_byte(make_config, clock, tmp_path):
    from prometheus_client import CollectorRegistry

    from receiver.app import create_app

    config = make_config(database={"url": f"sqlite:///{tmp_path}/missing/dir/receiver.db"})
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    r = app.test_client().get("/api/v1/alerts/export.csv")
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"


def test_cli_export_writes_the_same_rows_as_the_api(client, dataset, make_config):
    config = make_config()
    runner = CliRunner()
    for fmt, params in (("csv", {}), ("json", {"service": "payments"}), ("ndjson", {"status": "resolved"})):
        api = client.get("/api/v1/alerts/export", query_string={**params, "format": fmt}).data.decode()
        args = ["export", "-c", str(config.source), "--format", fmt]
        for key, value in params.items():
            args += [f"--{key}", value]
        out = runner.invoke(cli_main, args)
        assert out.exit_code == 0, out.output
        assert out.stdout_bytes.decode() == api, fmt
    since = runner.invoke(cli_main, ["export", "-c", str(config.source), "--since", "2026-11-20T00:00:00Z",
                                     "--match", 'service="search"', "--level", "L1"])
    want = client.get("/api/v1/alerts/export.csv", query_string={"since": "2026-11-20T00:00:00Z",
                                                                  "match": 'service="search"', "level": "L1"})
    assert since.exit_code == 0 and since.stdout_bytes == want.data
    bad = runner.invoke(cli_main, ["export", "-c", str(config.source), "--since", "yesterday"])
    assert bad.exit_code == 2 and "since" in bad.output
