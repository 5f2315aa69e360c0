"""/-/healthy, /-/ready, /metrics, and 503 when storage is unavailable."""

from __future__ import annotations

import sqlite3

from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.config import load_config

from ..support.fixtures import raw


def test_healthy_and_ready(client):
    assert client.get("/-/healthy").get_json() == {"status": "healthy"}
    r = client.get("/-/ready")
    assert r.status_code == 200 and r.get_json()["checks"] == {"database": "ok", "migrations": "ok"}


def test_not_ready_before_migrations(tmp_path, clock):
    config = load_config(None, env={"RECEIVER_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"})
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    r = app.test_client().get("/-/ready")
    assert r.status_code == 503 and "alert-receiver migrate" in r.get_json()["checks"]["migrations"]


def test_metrics_count_requests_results_and_rejections(client):
    client.post("/webhook", data=raw("b_group_5_firing"), content_type="application/json")
    client.post("/webhook", data=raw("b_group_5_firing"), content_type="application/json")
    client.post("/webhook", data=b"{", content_type="application/json")
    client.post("/webhook", data=raw("e_max_alerts_truncated"), content_type="application/json")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'alert_receiver_webhook_requests_total{code="200"} 3.0' in text
    assert 'alert_receiver_webhook_requests_total{code="400"} 1.0' in text
    assert 'alert_receiver_alerts_ingested_total{result="new"} 8.0' in text
    assert 'alert_receiver_alerts_ingested_total{result="duplicate"} 5.0' in text
    assert 'alert_receiver_webhook_rejected_total{reason="malformed_json"} 1.0' in text
    assert "alert_receiver_truncated_alerts_total 7.0" in text
    assert "alert_receiver_ingest_duration_seconds_count 3.0" in text


def test_locked_sqlite_answers_503_with_retry_after_and_keeps_nothing(tmp_path, clock, sqlite_template):
    import shutil

    path = tmp_path / "locked.db"
    shutil.copy(sqlite_template, path)
    config = load_config(None, env={"RECEIVER_DATABASE_URL": f"sqlite:///{path}"})
    config = config.model_copy(update={"database": config.database.model_copy(update={"lock_timeout": __import__("datetime").timedelta(milliseconds=200)})})
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    client = app.test_client()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock past our deadline
    try:
        r = client.post("/webhook", data=raw("a_single_firing"), content_type="application/json")
        assert r.status_code == 503
        assert r.headers["Retry-After"] and r.get_json()["error"] == "storage_unavailable"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # Alertmanager's retry then succeeds.
    assert client.post("/webhook", data=raw("a_single_firing"), content_type="application/json").status_code == 200
    app.extensions["alert_receiver"].db.dispose()


def test_unreachable_postgresql_answers_503_and_not_ready(clock):
    from tests.support.postgres import free_port

    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"
    config = load_config(None, env={"RECEIVER_DATABASE_URL": url})
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    client = app.test_client()
    r = client.post("/webhook", data=raw("a_single_firing"), content_type="application/json")
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert client.get("/-/ready").status_code == 503
