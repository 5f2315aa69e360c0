"""The web dashboard at `/`: Now (firing alerts on the ladder), Alert (one occurrence and its timeline), History,
Statistics and Delivery. Server-rendered with the app's Jinja2 (autoescaped), enhanced by static/dashboard.js.

Thin, like the API views: every number and row comes from the same store and engine functions the JSON API calls
(store.queries, statistics, analytics, store.outbox), so a page and the API never disagree. Sign-in, sessions
and CSRF are in dashboard_session.py; the actions (ack, resolve, retry) in dashboard_actions.py.

Every response of this blueprint carries a strict Content-Security-Policy: scripts and styles only from our own
files (no inline code, nothing from elsewhere), no framing, forms only to ourselves.
"""

from __future__ import annotations

import datetime as dt
import os

from flask import Blueprint, redirect, render_template, request, send_from_directory, url_for
from werkzeug.datastructures import MultiDict

from .. import __version__, analytics
from ..config.sla_targets import lookup as sla_lookup
from ..domain import Role
from ..statistics import read_correlations, read_sla, read_summary, read_top
from ..store import outbox
from ..store.queries import AlertFilter, count_alerts, get_alert, iso, list_alerts
from . import dashboard_actions, dashboard_oncall
from . import maintenance_api
from . import dashboard_session as sessions
from . import dashboard_view as view
from . import export_api
from .auth import LOGIN, PUBLIC, Authenticator, auth_failed, open_access, throttle_wait
from .context import services
from .correlations_api import DEFAULT_WINDOW
from .api_errors import ApiError
from .params import ALERT_FILTER_PARAMS, alert_filter, check_known, parse_int
from .stats_api import service_health
from .svg_chart import stacked_bars

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")

bp = Blueprint("dashboard", __name__, template_folder="templates")

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
NOW_PER_LEVEL = 200  # rows listed per level on the Now page (the count above says how many fire in all)
PERIODS = {"1d": 1, "7d": 7, "30d": 30, "90d": 90}
HEALTH_SERVICES = 20
RELATED_ROWS = 10  # related occurrences on an alert's page, best first (the API lists more)

ENDPOINTS: set[str] = set()  # every endpoint of this blueprint: HTML, not API operations (openapi.NOT_API)


def route(rule: str, **options):
    def decorate(func):
        ENDPOINTS.add(f"{bp.name}.{options.get('endpoint', func.__name__)}")
        return bp.route(rule, **options)(func)

    return decorate


@bp.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    if request.endpoint != "dashboard.asset":
        response.headers["Cache-Control"] = "no-store"
    return sessions.save(response)


def page(template: str, **context):
    session = sessions.load()
    return render_template(template, session=session, auth_enabled=sessions.auth_enabled(), version=__version__,
                           duration=view.duration, clock_time=view.clock_time, link_url=view.link_url,
                           **context)


# --- static files and sign-in --------------------------------------------------------------------------------


@route("/assets/<path:filename>")
@open_access(PUBLIC)
def asset(filename: str):
    """The dashboard's CSS and JavaScript: code, nothing stored."""
    return send_from_directory(STATIC_DIR, filename, max_age=3600)


@route("/login", methods=["GET", "POST"])
@open_access(PUBLIC)
def login():
    """The sign-in form: a token typed once, kept as a signed, HttpOnly session cookie (see dashboard_session)."""
    target = sessions.safe_next(request.values.get("next"))
    if not sessions.auth_enabled():
        return redirect(target, code=303)
    error = None
    status = 200
    if request.method == "POST":
        try:
            sessions.check_csrf()
        except sessions.CsrfError as exc:
            return sessions.refusal(403, "Request refused", f"{exc}. Reload the page and try again.")
        wait = throttle_wait(LOGIN)
        if wait:
            return sessions.too_many_attempts(wait)
        if sessions.sign_in(request.form.get("token", "").strip()):
            return redirect(target, code=303)
        auth_failed(LOGIN)
        error, status = "That token is not valid here, or its role cannot read.", 401
    return page("dashboard/login.html", next=target, error=error), status


@route("/logout", methods=["POST"])
@open_access(PUBLIC)
def logout():
    try:
        sessions.check_csrf()
    except sessions.CsrfError as exc:
        return sessions.refusal(403, "Request refused", f"{exc}. Reload the page and try again.")
    sessions.sign_out()
    return redirect(url_for("dashboard.login") if sessions.auth_enabled() else url_for("dashboard.now"), code=303)


# --- Now -------------------------------------------------------------------------------------------------------


def _now_levels():
    svc = services()
    now = svc.clock.now()
    levels = []
    sla = sla_lookup(svc.config.resolved_routes())  # each row's time left before its level's SLA targets
    with svc.read() as conn:
        for level in view.LEVELS:
            f = AlertFilter(status="firing", levels=(level,))
            alerts, _ = list_alerts(conn, f, limit=NOW_PER_LEVEL)
            total = count_alerts(conn, f) if len(alerts) == NOW_PER_LEVEL else len(alerts)
            acked = sum(1 for a in alerts if a["acked"])
            levels.append({"level": level, "rows": view.now_rows(alerts, now, sla), "total": total, "acked": acked})
    return levels, now


@route("/")
@sessions.guard(Role.READ)
def now():
    levels, at = _now_levels()
    return page("dashboard/now.html", nav="now", levels=levels, now=at, can_act=_can_act(),
                oncall=dashboard_oncall.panel(at), maintenance=maintenance_api.panel(at))


@route("/now/alerts")
@sessions.guard(Role.READ, fragment=True)
def now_fragment():
    """The Now page's alert list alone: what the page's script swaps in every few seconds."""
    levels, at = _now_levels()
    return page("dashboard/now_list.html", levels=levels, now=at, can_act=_can_act())


def _can_act() -> bool:
    principal = sessions.load().principal
    return principal is not None and Authenticator.allows(principal, Role.WRITE)


# --- Alert -----------------------------------------------------------------------------------------------------


@route("/alerts/<int:alert_id>")
@sessions.guard(Role.READ)
def alert(alert_id: int):
    svc = services()
    now = svc.clock.now()
    with svc.read() as conn:
        found = get_alert(conn, alert_id)  # its timeline: every message with its attempts, in one read each
        related = read_correlations.related(conn, alert_id, window=DEFAULT_WINDOW, limit=RELATED_ROWS, now=now)
    if found is None:
        return sessions.refusal(404, "No such alert", f"There is no alert with id {alert_id}.")
    timeline = [{**entry, "summary": view.timeline_summary(entry)} for entry in found["timeline"]]
    return page("dashboard/alert.html", nav="history", alert=found, timeline=timeline, now=now,
                related=(related or [])[:RELATED_ROWS],
                next=view.next_step(found, now) if found["status"] == "firing" else None, can_act=_can_act())


# --- History ---------------------------------------------------------------------------------------------------

HISTORY_PARAMS = ALERT_FILTER_PARAMS + ("limit", "cursor")
LIMITS = (50, 100, 200, 500)


def _history_args() -> MultiDict:
    """The query string without empty fields (a submitted form sends every field), a `since`/`until` typed in a
    datetime-local input (no zone) read as UTC."""
    args = MultiDict()
    for key, value in request.args.items(multi=True):
        value = value.strip()
        if not value:
            continue
        if key in ("since", "until") and len(value) in (16, 19) and "T" in value and value[10] == "T":
            value += "Z" if len(value) == 19 else ":00Z"
        args.add(key, value)
    return args


@route("/history")
@sessions.guard(Role.READ)
def history():
    args = _history_args()
    filters = MultiDict([(k, v) for k, v in args.items(multi=True) if k not in ("cursor",)])
    error = None
    alerts, next_cursor, total = [], None, None
    try:
        check_known(args, HISTORY_PARAMS)
        f = alert_filter(args)
        limit = parse_int("limit", args.get("limit"), default=100, minimum=1, maximum=1000)
        cursor = parse_int("cursor", args.get("cursor"), default=0, minimum=0, maximum=2**62) or None
        with services().read() as conn:
            alerts, next_cursor = list_alerts(conn, f, limit=limit, after_id=cursor)
            total = count_alerts(conn, f)
    except ApiError as exc:
        error = exc.detail or exc.error
    export_args = MultiDict([(k, v) for k, v in filters.items(multi=True) if k in ALERT_FILTER_PARAMS])
    context = dict(nav="history", alerts=alerts, total=total, error=error, args=args, limits=LIMITS,
                   next_url=url_for("dashboard.history", **_flat(filters), cursor=next_cursor) if next_cursor else None,
                   first_url=url_for("dashboard.history", **_flat(filters)) if args.get("cursor") else None,
                   export_url=url_for("dashboard.history_export", **_flat(export_args)),
                   api_export_url=url_for("export_api.export_csv", **_flat(export_args)))
    return page("dashboard/history.html", **context), (400 if error else 200)


def _flat(args: MultiDict) -> dict[str, list[str]]:
    return {k: args.getlist(k) for k in args}


@route("/history/export.csv")
@sessions.guard(Role.READ)
def history_export():
    """The API's own CSV export (export_api), for a browser signed in with a cookie rather than a bearer token:
    the file is byte for byte what GET /api/v1/alerts/export.csv answers."""
    return export_api._export("csv")


# --- Statistics ------------------------------------------------------------------------------------------------


@route("/stats")
@sessions.guard(Role.READ)
def statistics():
    period = request.args.get("period", "7d")
    if period not in PERIODS:
        return sessions.refusal(400, "Unknown period", f"period: one of {', '.join(PERIODS)}")
    svc = services()
    now = svc.clock.now()
    f = AlertFilter(since=now - dt.timedelta(days=PERIODS[period]), until=now)
    interval = "hour" if PERIODS[period] <= 2 else "day"
    starts = analytics.bucket_starts(f.since, f.until, interval, analytics.UTC)
    with svc.read() as conn:
        summary = read_summary.summary(conn, f)
        sla = read_sla.compliance(conn, f, svc.config)
        top = read_top.top(conn, f, by="count", limit=10, now=now)
        noisy = read_top.top(conn, f, by="noise", limit=10, now=now)
        escalated = read_top.top(conn, f, by="escalations", limit=10, now=now)
        health = sorted((service_health(conn, name, f) for name in list(summary["by_service"])[:HEALTH_SERVICES]),
                        key=lambda h: (h["score"], h["service"]))
        slots = read_summary.slot_counts(conn, f, "severity")
    series = analytics.fill(slots, starts, read_summary.SLOT_SECONDS, f.until)
    chart = stacked_bars(starts, series, interval=interval, chart_id="trend",
                         title=f"Alerts per {interval} and severity, last {period}")
    table = [(start, [series[k][i] for k in series]) for i, start in enumerate(starts)]
    return page("dashboard/stats.html", nav="stats", period=period, periods=PERIODS, since=f.since, until=f.until,
                summary=summary, sla=sla, sla_cols=view.sla_columns(sla), top=top, noisy=noisy, escalated=escalated,
                health=health, chart=chart, series_keys=list(series), table=table, interval=interval)


# --- Delivery --------------------------------------------------------------------------------------------------

DELIVERY_ROWS = 50


@route("/delivery")
@sessions.guard(Role.READ)
def delivery_page():
    svc = services()
    now = svc.clock.now()
    with svc.read() as conn:
        depth, oldest_age = outbox.backlog(conn, now)
        failing = outbox.list_notifications(conn, outbox.NotificationFilter(status="failed",
                                                                                limit=DELIVERY_ROWS + 1))
        dead = outbox.list_notifications(conn, outbox.NotificationFilter(status="dead", limit=DELIVERY_ROWS + 1))
        recent = outbox.list_notifications(conn, outbox.NotificationFilter(limit=20))
        shown = failing[:DELIVERY_ROWS] + dead[:DELIVERY_ROWS] + recent
        carried = outbox.load_alerts(conn, sorted({n["id"] for n in shown}))
    alerts_of = {mid: [{"id": a.id, "alertname": a.alertname, "service": a.service} for a in rows]
                 for mid, rows in carried.items()}
    return page("dashboard/delivery.html", nav="delivery", depth=depth, oldest_age=oldest_age,
                failing=failing[:DELIVERY_ROWS], failing_more=len(failing) > DELIVERY_ROWS,
                dead=dead[:DELIVERY_ROWS], dead_more=len(dead) > DELIVERY_ROWS, recent=recent,
                alerts_of=alerts_of, iso=iso, can_act=_can_act(), limit=DELIVERY_ROWS)


dashboard_actions.register(route)  # ack, resolve, retry: on this blueprint, through `route` (ENDPOINTS)
