"""Operator endpoints, by Prometheus convention: /-/healthy, /-/ready, /-/reload, /metrics."""

from __future__ import annotations

import logging
import os
import signal

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify

from ..config import ConfigError, load_config
from ..domain import Role
from ..store import migrate, outbox
from ..supervisor import SUPERVISOR_PID_ENV
from .auth import CONFIGURED, PUBLIC, Authenticator, check, open_access, require
from .context import services
from .api_errors import ApiError

log = logging.getLogger("receiver.ops")
bp = Blueprint("ops", __name__)


@bp.get("/-/healthy")
@open_access(PUBLIC)
def healthy():
    """The process serves requests. Says nothing of the database (that is /-/ready)."""
    return jsonify({"status": "healthy"})


@bp.get("/-/ready")
@open_access(PUBLIC)
def ready():
    """Ready to take webhooks: the database answers and its schema is at the migration head."""
    svc = services()
    checks = {}
    try:
        with svc.read() as conn:
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


@bp.post("/-/reload")
@require(Role.ADMIN)
def reload():
    """Re-read receiver.yml. Invalid: 400 with every problem, the running config stays. Valid: this worker
    takes it at once, and under `serve` the supervisor is signalled to restart every worker and the engine
    with it (as SIGHUP does)."""
    svc = services()
    try:
        config = load_config(svc.config.source)
    except ConfigError as exc:
        svc.metrics.config_last_reload_successful.set(0)
        log.error("reload failed; keeping the running config", extra={"error": str(exc)})
        raise ApiError(400, "invalid_config", str(exc)) from None
    svc.config = config
    svc.auth = Authenticator((t.name, t.token.reveal(), t.role) for t in config.auth.tokens)
    svc.metrics.config_last_reload_successful.set(1)
    supervisor = os.environ.get(SUPERVISOR_PID_ENV)
    if supervisor:
        os.kill(int(supervisor), signal.SIGHUP)
    log.info("config reloaded", extra={"source": str(config.source or "defaults")})
    return jsonify({"status": "reloaded", "source": str(config.source) if config.source else None,
                    "workers": "restarting" if supervisor else "this process"})


@bp.get("/metrics")
@open_access(CONFIGURED, role_setting=lambda config: config.auth.metrics_role)
def metrics():
    """Open by default, as Prometheus scrapes without credentials unless told; auth.metrics_role closes it."""
    svc = services()
    if svc.config.auth.metrics_role is not None:
        check(svc.config.auth.metrics_role)
    try:  # the outbox backlog is read at scrape time: exact, and the same whichever process answers
        with svc.read() as conn:
            waiting, oldest = outbox.backlog(conn, svc.clock.now())
        svc.metrics.outbox_messages.set(waiting)
        svc.metrics.outbox_oldest_age.set(oldest)
    except Exception as exc:  # a scrape must still answer when the database does not
        log.warning("could not read the outbox backlog for /metrics", extra={"error": type(exc).__name__})
    return Response(svc.metrics.exposition(), mimetype="text/plain; version=0.0.4; charset=utf-8")
