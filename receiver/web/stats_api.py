"""Statistics for analysts: summary, top and noisy alerts, trends, service health, the daily report. Thin: the
SQL is in statistics/read_summary.py and read_top.py, buckets and the health formula in analytics.py."""

from __future__ import annotations

import contextlib
import datetime as dt

from flask import Blueprint, jsonify, request

from .. import analytics
from ..domain import Level, Role
from ..fields import FieldError, parse_duration
from ..statistics import read_sla, read_summary, read_top
from ..store.queries import AlertFilter, iso
from .auth import require
from .context import services
from .api_errors import ApiError
from .params import alert_filter, check_known, parse_int

bp = Blueprint("stats_api", __name__, url_prefix="/api/v1")

FILTERS = ("since", "until", "service", "severity", "level", "alertname", "match", "status", "acked")
DEFAULT_PERIOD = dt.timedelta(days=7)
MAX_BUCKETS = 5000


def period_filter(args, *, default: dt.timedelta = DEFAULT_PERIOD) -> AlertFilter:
    """The history filters, with the period defaulting to the `default` before now."""
    f = alert_filter(args)
    now = services().clock.now()
    until = f.until or now
    since = f.since or until - default
    if since >= until:
        raise ApiError(400, "bad_parameter", "since must be before until", parameter="since")
    return AlertFilter(**{**f.__dict__, "since": since, "until": until})


@contextlib.contextmanager
def stats_transaction(svc):
    """A read transaction that sees one snapshot: the aggregates, their watermark and the raw rows agree
    (PostgreSQL's default READ COMMITTED would take a new snapshot per statement; SQLite's WAL read is one)."""
    with svc.read() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield conn


def _period(f: AlertFilter) -> dict:
    return {"since": iso(f.since), "until": iso(f.until)}


def critical_severities() -> list[str]:
    return sorted(s for s, level in services().config.levels.severity.items() if level is Level.L1)


@bp.get("/stats/summary")
@require(Role.READ)
def summary():
    check_known(request.args, FILTERS)
    f = period_filter(request.args)
    sources: set[str] = set()
    with stats_transaction(services()) as conn:
        result = read_summary.summary(conn, f, sources)
        result["sla"] = read_sla.compliance(conn, f, services().config)
    return jsonify({"period": _period(f), "source": read_summary.source_name(sources), **result})


@bp.get("/stats/top")
@require(Role.READ)
def top():
    args = request.args
    check_known(args, FILTERS + ("by", "limit", "flap_window", "flap_min"))
    by = args.get("by", "count")
    if by not in read_top.TOP_BY:
        raise ApiError(400, "bad_parameter", f"by: one of {', '.join(read_top.TOP_BY)}", parameter="by")
    limit = parse_int("limit", args.get("limit"), default=10, minimum=1, maximum=500)
    flap_min = parse_int("flap_min", args.get("flap_min"), default=3, minimum=2, maximum=1000)
    try:
        window = parse_duration(args.get("flap_window", "1h"))
    except FieldError as exc:
        raise ApiError(400, "bad_parameter", f"flap_window: {exc}", parameter="flap_window") from None
    f = period_filter(args)
    svc = services()
    with stats_transaction(svc) as conn:
        rows = read_top.top(conn, f, by=by, limit=limit, now=svc.clock.now())
        flaps = read_top.flapping(conn, f, window=window, min_occurrences=flap_min, limit=limit)
    return jsonify({"period": _period(f), "by": by, "top": rows,
                    "flapping": {"window_seconds": window.total_seconds(), "min_occurrences": flap_min,
                                 "fingerprints": flaps}})


@bp.get("/stats/trends")
@require(Role.READ)
def trends():
    args = request.args
    check_known(args, FILTERS + ("interval", "group_by", "tz"))
    interval = args.get("interval", "hour")
    if interval not in ("hour", "day"):
        raise ApiError(400, "bad_parameter", "interval: hour or day", parameter="interval")
    group_by = args.get("group_by", "severity")
    if group_by not in ("severity", "service", "level", "none"):
        raise ApiError(400, "bad_parameter", "group_by: severity, service, level or none", parameter="group_by")
    try:
        tz = analytics.zone(args.get("tz"))
    except KeyError:
        raise ApiError(400, "bad_parameter", f"tz: unknown time zone {args.get('tz')!r} (use an IANA name such as "
                                             "Europe/Paris)", parameter="tz") from None
    f = period_filter(args)
    starts = analytics.bucket_starts(f.since, f.until, interval, tz)
    if len(starts) > MAX_BUCKETS:
        raise ApiError(400, "too_many_buckets", f"{len(starts)} buckets; at most {MAX_BUCKETS}: use interval=day "
                                                "or a shorter period")
    sources: set[str] = set()
    with stats_transaction(services()) as conn:
        slots = read_summary.slot_counts(conn, f, None if group_by == "none" else group_by, boundaries=starts,
                                  sources=sources)
    series = analytics.fill(slots, starts, read_summary.SLOT_SECONDS, f.until)
    return jsonify({"period": _period(f), "interval": interval, "tz": str(tz), "group_by": group_by,
                    "source": read_summary.source_name(sources), "buckets": [s.isoformat() for s in starts],
                    "series": series, "total": [sum(col) for col in zip(*series.values())] or [0] * len(starts),
                    "totals": {k: sum(v) for k, v in series.items()}})


def service_health(conn, service: str, f: AlertFilter) -> dict:
    f = AlertFilter(**{**f.__dict__, "services": (service,)})
    s = read_summary.summary(conn, f)
    critical = sum(s["by_severity"].get(name, 0) for name in critical_severities())
    inputs = analytics.HealthInputs(total=s["total"], resolved=s["by_status"].get("resolved", 0), critical=critical,
                                    escalated=s["escalations"]["escalated_alerts"],
                                    mttr_mean_seconds=s["mttr_seconds"]["mean"])
    return {"service": service, **analytics.health(inputs), "mttr_seconds": s["mttr_seconds"]}


@bp.get("/stats/services/<path:service>/health")
@require(Role.READ)
def health(service: str):
    check_known(request.args, ("since", "until"))
    f = period_filter(request.args)
    with stats_transaction(services()) as conn:
        result = service_health(conn, service, f)
    return jsonify({"period": _period(f), **result})


@bp.get("/reports/daily")
@require(Role.READ)
def daily():
    args = request.args
    check_known(args, ("date", "tz", "limit"))
    try:
        tz = analytics.zone(args.get("tz"))
    except KeyError:
        raise ApiError(400, "bad_parameter", f"tz: unknown time zone {args.get('tz')!r}", parameter="tz") from None
    now = services().clock.now()
    try:
        day = dt.date.fromisoformat(args["date"]) if args.get("date") else (now.astimezone(tz) - dt.timedelta(days=1)).date()
    except ValueError:
        raise ApiError(400, "bad_parameter", "date: YYYY-MM-DD", parameter="date") from None
    limit = parse_int("limit", args.get("limit"), default=10, minimum=1, maximum=100)
    since = dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.timezone.utc)
    until = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz).astimezone(dt.timezone.utc)
    f = AlertFilter(since=since, until=until)
    with stats_transaction(services()) as conn:
        summary_ = read_summary.summary(conn, f)
        summary_["sla"] = read_sla.compliance(conn, f, services().config)
        top_count = read_top.top(conn, f, by="count", limit=limit, now=now)
        noisy = read_top.top(conn, f, by="noise", limit=limit, now=now)
        escalated = read_top.top(conn, f, by="escalations", limit=limit, now=now)
        steps = read_summary.escalations_between(conn, since, until)
        health_ = sorted((service_health(conn, name, f) for name in summary_["by_service"]),
                         key=lambda h: (h["score"], h["service"]))
    return jsonify({"date": day.isoformat(), "tz": str(tz), "period": _period(f), "summary": summary_,
                    "top": top_count, "noisy": noisy, "most_escalated": escalated,
                    "escalations": steps, "services": health_})
