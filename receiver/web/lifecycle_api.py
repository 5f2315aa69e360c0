"""What on-call people do over HTTP: ack, unack, resolve, escalate one alert; ack a whole Alertmanager group; and
the one-click acknowledge links every message carries (`/a/<token>`). Thin: engine.lifecycle does the work."""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from ..domain import Level, Role
from ..engine import lifecycle, links
from ..engine.ingest import group_id
from ..fields import FieldError, parse_duration
from ..store.queries import get_alert
from .auth import SIGNED_LINK, open_access, require
from .context import services
from .api_errors import ApiError

bp = Blueprint("lifecycle_api", __name__)


def json_body(allowed: tuple[str, ...]) -> dict[str, Any]:
    """The optional JSON object of an action; unknown keys and malformed JSON are 400s that say so."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        return {}
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send a JSON object with Content-Type: application/json")
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_body", "the body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field(s): {', '.join(unknown)}", allowed=list(allowed))
    for key in ("actor", "comment", "group_key", "group_id"):
        if key in body and not isinstance(body[key], str):
            raise ApiError(400, "bad_field", f"{key}: must be a string")
    for key, value in body.items():
        if isinstance(value, str) and "\x00" in value:  # PostgreSQL text cannot hold it
            raise ApiError(400, "bad_field", f"{key}: contains a NUL character")
    return body


MAX_TTL = dt.timedelta(days=36_500)


def _ttl(body: dict[str, Any]) -> dt.timedelta | None:
    if body.get("ttl") in (None, ""):
        return None
    try:
        value = parse_duration(str(body["ttl"]))
    except FieldError as exc:
        raise ApiError(400, "bad_field", f"ttl: {exc}", fix=exc.fix) from None
    if value > MAX_TTL:  # the expiry is now + ttl: keep it a time that exists
        raise ApiError(400, "bad_field", "ttl: must be at most 100y", fix="give a shorter ttl, or none to hold until resolved")
    return value or None


def _actor(body: dict[str, Any]) -> str:
    return (body.get("actor") or "").strip() or g.principal.name


def _run(action, *args, **kwargs):
    """A lifecycle action now, as the API's errors; its MTTA/MTTR samples go to this process's metrics."""
    svc = services()
    try:
        result = action(svc.writes, svc.config, *args, now=svc.clock.now(), **kwargs)
    except lifecycle.LifecycleError as exc:
        raise ApiError(exc.status, exc.reason, exc.message) from None
    svc.metrics.observe_action(result)
    return result
    # A database that is down or locked: errors.py answers 503 with Retry-After for every route.


def _answer(alert_id: int, result: lifecycle.ActionResult):
    with services().read() as conn:
        alert = get_alert(conn, alert_id)
    return jsonify({"changed": bool(result.changed), "notifications": result.messages, "alert": alert})


@bp.post("/api/v1/alerts/<int:alert_id>/ack")
@require(Role.WRITE)
def ack(alert_id: int):
    body = json_body(("actor", "comment", "ttl"))
    result = _run(lifecycle.ack, [alert_id], actor=_actor(body), comment=body.get("comment"), ttl=_ttl(body))
    return _answer(alert_id, result)


@bp.post("/api/v1/alerts/<int:alert_id>/unack")
@require(Role.WRITE)
def unack(alert_id: int):
    body = json_body(("actor", "comment"))
    return _answer(alert_id, _run(lifecycle.unack, alert_id, actor=_actor(body), comment=body.get("comment")))


@bp.post("/api/v1/alerts/<int:alert_id>/resolve")
@require(Role.WRITE)
def resolve(alert_id: int):
    body = json_body(("actor", "comment"))
    return _answer(alert_id, _run(lifecycle.resolve, alert_id, actor=_actor(body), comment=body.get("comment")))


@bp.post("/api/v1/alerts/<int:alert_id>/escalate")
@require(Role.WRITE)
def escalate(alert_id: int):
    body = json_body(("actor", "comment", "level"))
    target = None
    if body.get("level") is not None:
        try:
            target = Level(body["level"])
        except ValueError:
            raise ApiError(400, "bad_field", "level: must be L1, L2 or L3") from None
    with services().read() as conn:
        before = get_alert(conn, alert_id)
    result = _run(lifecycle.escalate, alert_id, actor=_actor(body), comment=body.get("comment"), target=target)
    response = _answer(alert_id, result)
    if result.changed and before is not None:
        services().metrics.escalations.labels(from_level=before["level"],
                                              to_level=response.get_json()["alert"]["level"]).inc()
    return response


@bp.post("/api/v1/groups/ack")
@require(Role.WRITE)
def ack_group():
    body = json_body(("group_key", "group_id", "actor", "comment", "ttl"))
    if bool(body.get("group_key")) == bool(body.get("group_id")):
        raise ApiError(400, "bad_body", "give exactly one of group_key (Alertmanager's groupKey) or group_id")
    if "" in (body.get("group_key"), body.get("group_id")):
        raise ApiError(400, "bad_field", "group_key and group_id must not be empty")
    gid = body.get("group_id") or group_id(str(body["group_key"]))
    result = _run(lifecycle.ack_group, str(gid), actor=_actor(body), comment=body.get("comment"), ttl=_ttl(body))
    return jsonify({"group_id": gid, "acked": result.changed, "already_acked": result.unchanged,
                    "notifications": result.messages})


# --- one-click links ---------------------------------------------------------------------------------------

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport"
content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}}
button{{font-size:1.1rem;padding:.6rem 1.2rem}}@media (prefers-color-scheme:dark){{body{{background:#111;color:#eee}}}}</style>
</head><body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> Response:
    resp = Response(_PAGE.format(title=html.escape(title), body=body), status=status, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    resp.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _link_alert(token: str) -> int:
    svc = services()
    now = svc.clock.now()
    try:
        return links.read_token(links.link_key(svc.writes, now=now), token, now=now)
    except links.LinkError as exc:
        raise _LinkProblem(str(exc)) from None


class _LinkProblem(Exception):
    pass


@bp.get("/a/<token>")
@open_access(SIGNED_LINK)
def ack_link(token: str):
    """The confirm page: a GET never acknowledges (link previews in Slack and mail scanners fetch every link)."""
    try:
        alert_id = _link_alert(token)
    except _LinkProblem as exc:
        return _page("Cannot acknowledge", f"<p>{html.escape(str(exc))}</p>", 404)
    with services().read() as conn:
        alert = get_alert(conn, alert_id)
    if alert is None:
        return _page("Cannot acknowledge", "<p>This alert no longer exists.</p>", 404)
    what = html.escape(f"{alert['alertname']} ({alert['level']}, {alert['status']})")
    labels = "".join(f"<li><code>{html.escape(k)}={html.escape(v)}</code></li>" for k, v in alert["labels"].items())
    if alert["status"] != "firing":
        return _page("Already resolved", f"<p>{what} is resolved; there is nothing to acknowledge.</p>")
    if alert.get("acked_at"):
        return _page("Already acknowledged", f"<p>{what} was acknowledged by {html.escape(alert['acked_by'] or '')}.</p>")
    form = (f'<p>Acknowledge <strong>{what}</strong>?</p><ul>{labels}</ul>'
            f'<form method="post"><label>Your name <input name="actor" maxlength="100" required></label> '
            f'<button type="submit">Acknowledge</button></form>')
    return _page("Acknowledge alert", form)


@bp.post("/a/<token>")
@open_access(SIGNED_LINK)
def ack_link_confirm(token: str):
    try:
        alert_id = _link_alert(token)
    except _LinkProblem as exc:
        return _page("Cannot acknowledge", f"<p>{html.escape(str(exc))}</p>", 404)
    actor = (request.form.get("actor") or "").replace("\x00", "").strip()[:100] or "ack link"  # NUL: not storable
    try:
        result = _run(lifecycle.ack, [alert_id], actor=actor, comment="acknowledged with a one-click link")
    except ApiError as exc:
        return _page("Cannot acknowledge", f"<p>{html.escape(exc.detail or exc.error)}</p>", exc.status)
    said = "Acknowledged" if result.changed else "Already acknowledged"
    return _page(said, f"<p>{said}. Escalation and repeats of alert {alert_id} have stopped.</p>")
