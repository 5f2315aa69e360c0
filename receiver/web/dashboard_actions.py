"""What the dashboard's buttons do: acknowledge and resolve an alert, retry a failed or dead notification.

Each is a POST that needs the `write` role and the session's CSRF token (dashboard_session.guard), and calls the
same engine and store functions as the JSON API (engine.lifecycle, store.outbox.requeue), so an action here is
recorded exactly as one there: with its actor (the signed-in token's name) and comment. A plain form gets a
redirect back to the page it came from; the page's script asks for JSON and updates the page in place.

dashboard.py registers them on its blueprint (`register`, given its `route`): this module never imports it.
"""

from __future__ import annotations

from typing import Callable

from flask import g, jsonify, redirect, request

from ..domain import Role
from ..engine import lifecycle
from ..store import outbox
from . import dashboard_session as sessions
from .context import services

COMMENT_MAX = 2000


def _actor() -> str:
    return g.principal.name


def _comment() -> str | None:
    return (request.form.get("comment") or "").strip()[:COMMENT_MAX] or None


def _done(message: str, **extra):
    if sessions.wants_json():
        return jsonify({"ok": True, "message": message, **extra})
    return redirect(sessions.safe_next(request.form.get("next")), code=303)


def _lifecycle(action, alert_id: int, done: str, unchanged: str):
    svc = services()
    try:
        result = action(svc.writes, svc.config, [alert_id] if action is lifecycle.ack else alert_id, actor=_actor(),
                        now=svc.clock.now(), comment=_comment())
    except lifecycle.LifecycleError as exc:
        return sessions.refusal(exc.status, "Cannot do that", exc.message)
    svc.metrics.observe_action(result)
    # A database that is down or locked: errors.py answers 503 with Retry-After, as for every route.
    changed = bool(result.changed)
    return _done(done if changed else unchanged, changed=changed, alert_id=alert_id)


@sessions.guard(Role.WRITE)
def ack(alert_id: int):
    return _lifecycle(lifecycle.ack, alert_id, f"Alert {alert_id} acknowledged: its escalation has stopped.",
                      f"Alert {alert_id} was already acknowledged.")


@sessions.guard(Role.WRITE)
def resolve(alert_id: int):
    return _lifecycle(lifecycle.resolve, alert_id, f"Alert {alert_id} resolved.", f"Alert {alert_id} is resolved.")


@sessions.guard(Role.WRITE)
def retry(notification_id: int):
    """Send a failed or dead notification again now, as POST /api/v1/notifications/{id}/retry does."""
    svc = services()
    with svc.writes.transaction() as conn:
        row = outbox.get_notification(conn, notification_id)
        if row is None:
            return sessions.refusal(404, "No such notification", f"There is no notification {notification_id}.")
        if not outbox.requeue(conn, notification_id, now=svc.clock.now(),
                                give_up_after=svc.config.delivery.retry.give_up_after):
            return sessions.refusal(409, "Cannot retry", f"Notification {notification_id} is {row['status']}; "
                                                         "only failed or dead notifications can be retried.")
    return _done(f"Notification {notification_id} queued to be sent again.", notification_id=notification_id)


def register(route: Callable) -> None:
    """Add the actions to the dashboard's blueprint; `route` is dashboard.route (it records their endpoints)."""
    route("/alerts/<int:alert_id>/ack", methods=["POST"])(ack)
    route("/alerts/<int:alert_id>/resolve", methods=["POST"])(resolve)
    route("/delivery/<int:notification_id>/retry", methods=["POST"])(retry)
