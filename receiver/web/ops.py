"""Operator endpoints, by Prometheus convention: /-/healthy, /-/ready, /metrics."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify

from ..store import migrate
from ..store.db import read_transaction
from .context import services

log = logging.getLogger("receiver.ops")
bp = Blueprint("ops", __name__)


@bp.get("/-/healthy")
def healthy():
    """The process serves requests. Says nothing of the database (that is /-/ready)."""
    return jsonify({"status": "healthy"})


@bp.get("/-/ready")
def ready():
    """Ready to take webhooks: the database answers and its schema is at the migration head."""
    svc = services()
    checks = {}
    try:
        with read_transaction(svc.db) as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
        current, head = migrate.current_revision(svc.db), migrate.head_revision()
        checks["migrations"] = "ok" if current == head else f"at {current or 'none'}, head is {head}: run `alert-receiver migrate`"
    except Exception as exc:  # any failure means not ready; the reason is in the answer and the log
        checks["database"] = f"unavailable: {type(exc).__name__}"
        log.warning("not ready", extra={"error": type(exc).__name__})
    ok = all(v == "ok" for v in checks.values()) and len(checks) == 2
    resp = jsonify({"status": "ready" if ok else "not ready", "checks": checks})
    resp.status_code = 200 if ok else 503
    return resp


@bp.get("/metrics")
def metrics():
    return Response(services().metrics.exposition(), mimetype="text/plain; version=0.0.4; charset=utf-8")
