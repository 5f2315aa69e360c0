"""`alert-receiver stats …`: the statistics API from the command line. Each command asks the API in-process
(the same code, so the same numbers) and prints a table on a terminal, JSON (or CSV) when piped.

Label values are untrusted: CSV cells that a spreadsheet would run are neutralised, and nothing printed on a
terminal carries a control character (receiver.text_safety)."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

import click

from .text_safety import neutralise, table_cell, terminal_text

_FILTERS = [
    click.option("--since", help="RFC 3339 or Unix seconds (default: 7 days before --until)"),
    click.option("--until", help="RFC 3339 or Unix seconds (default: now)"),
    click.option("--service", multiple=True), click.option("--severity", multiple=True),
    click.option("--alertname", multiple=True), click.option("--match", multiple=True,
                                                             help='Alertmanager matcher, e.g. team="db"'),
]


def _filters(fn):
    for option in reversed(_FILTERS):
        fn = option(fn)
    return fn


def _query(**params: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value in (None, (), ""):
            continue
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _ask(config_path: str | None, path: str, query: dict[str, Any]) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from .app import create_app
    from .cli_config import load
    from .config.model import AuthSettings

    # Tokens are for remote callers: whoever can read receiver.yml and the database may read the statistics.
    config = load(config_path).model_copy(update={"auth": AuthSettings()})
    app = create_app(config, registry=CollectorRegistry())
    try:
        resp = app.test_client().get(path, query_string=query)
        body = resp.get_json()
        if resp.status_code != 200:
            raise click.ClickException(f"{body.get('error')}: {body.get('detail', '')}")
        return body
    finally:
        app.extensions["alert_receiver"].db.dispose()


def _emit(rows: list[dict[str, Any]], document: dict[str, Any], fmt: str | None) -> None:
    on_terminal = sys.stdout.isatty()
    fmt = fmt or ("table" if on_terminal else "json")
    if fmt == "json":
        click.echo(json.dumps(document, indent=2))  # ASCII: control characters are written as escapes
        return
    if not rows:
        click.echo("(no rows)")
        return
    if fmt == "csv":
        text = _csv(rows)
        # A file or pipe gets the values as they are; a terminal must not obey the escape sequences in them.
        click.echo(terminal_text(text) if on_terminal else text, nl=False)
        return
    _table(rows)


def _csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV, text cells a spreadsheet would run as formulas neutralised (as the API's export does).
    Headers too: `trends --group-by service` names columns after services."""
    columns = list(rows[0])
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([neutralise(c) for c in columns])
    writer.writerows([_csv_cell(r.get(c)) for c in columns] for r in rows)
    return buf.getvalue()


def _csv_cell(value: Any) -> Any:
    return neutralise(value) if isinstance(value, str) else value  # a negative number is not a formula


def _table(rows: list[dict[str, Any]]) -> None:
    keys = list(rows[0])
    cells = [[_cell(r.get(k)) for k in keys] for r in rows]
    headers = [table_cell(k) for k in keys]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for row in cells:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


def _cell(value: Any) -> str:
    """One table cell: one line, no control character (label values come from any Alertmanager)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return table_cell(str(value))


_FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]),
                       help="table on a terminal, json when piped")
_CONFIG = click.option("-c", "--config", "config_path", envvar="RECEIVER_CONFIG")


@click.group("stats")
def stats_group() -> None:
    """Statistics for analysts (the numbers of /api/v1/stats)."""


@stats_group.command("summary")
@_CONFIG
@_filters
@_FORMAT
def summary(config_path, fmt, **filters) -> None:
    """Counts, MTTA/MTTR, escalations, notifications and SLA compliance over a period."""
    doc = _ask(config_path, "/api/v1/stats/summary", _query(**filters))
    rows = [{"metric": "alerts", "value": doc["total"]}, {"metric": "acked", "value": doc["acked"]}]
    rows += [{"metric": f"{k}.{name}", "value": v} for k in ("by_severity", "by_level", "by_status")
             for name, v in doc[k].items()]
    for k in ("mtta_seconds", "mttr_seconds"):
        rows += [{"metric": f"{k}.{stat}", "value": v} for stat, v in doc[k].items()]
    rows += [{"metric": f"escalations.{k}", "value": v} for k, v in doc["escalations"].items()]
    rows += [{"metric": "notifications.failure_rate", "value": doc["notifications"]["failure_rate"]}]
    rows += _sla_rows(doc["sla"])
    _emit(rows, doc, fmt)


def _sla_rows(sla: dict[str, Any]) -> list[dict[str, Any]]:
    """`sla.L1.ack  80% (8 met, 2 breached, 0 pending, 1 ended)`, then the same per service: `sla[db].L1.ack`."""
    rows = []
    for scope, levels in [("", sla), *((f"[{name}]", v) for name, v in sla["by_service"].items())]:
        for level in ("L1", "L2", "L3"):
            for target, b in levels[level].items():
                counts = [b[k] for k in ("met", "breached", "pending", "ended")]
                if b["target_seconds"] is None and not any(counts):
                    continue
                percent = "–" if b["percent"] is None else f"{b['percent']:g}%"
                rows.append({"metric": f"sla{scope}.{level}.{target}", "value": (
                    f"{percent} ({counts[0]} met, {counts[1]} breached, {counts[2]} pending, {counts[3]} ended)")})
    return rows


@stats_group.command("top")
@_CONFIG
@_filters
@click.option("--by", type=click.Choice(["count", "duration", "escalations", "noise"]), default="count")
@click.option("--limit", type=int, default=10)
@_FORMAT
def top(config_path, fmt, by, limit, **filters) -> None:
    """The most frequent, longest, most escalated or noisiest alerts."""
    doc = _ask(config_path, "/api/v1/stats/top", _query(by=by, limit=limit, **filters))
    _emit(doc["top"], doc, fmt)


@stats_group.command("trends")
@_CONFIG
@_filters
@click.option("--interval", type=click.Choice(["hour", "day"]), default="day")
@click.option("--group-by", type=click.Choice(["severity", "service", "level", "none"]), default="severity")
@click.option("--tz", default=None, help="IANA time zone for the buckets (default UTC)")
@_FORMAT
def trends(config_path, fmt, interval, group_by, tz, **filters) -> None:
    """Counts per hour or day, zero-filled."""
    doc = _ask(config_path, "/api/v1/stats/trends",
               _query(interval=interval, group_by=group_by, tz=tz, **filters))
    rows = [{"bucket": b, **{k: v[i] for k, v in doc["series"].items()}, "total": doc["total"][i]}
            for i, b in enumerate(doc["buckets"])]
    _emit(rows, doc, fmt)


@stats_group.command("health")
@_CONFIG
@click.argument("service")
@click.option("--since")
@click.option("--until")
@_FORMAT
def health(config_path, fmt, service, since, until) -> None:
    """A service's 0–100 health score, its band and inputs."""
    doc = _ask(config_path, f"/api/v1/stats/services/{service}/health", _query(since=since, until=until))
    rows = [{"metric": "score", "value": doc["score"]}, {"metric": "band", "value": doc["band"]}]
    rows += [{"metric": f"inputs.{k}", "value": v} for k, v in doc["inputs"].items()]
    _emit(rows, doc, fmt)


@stats_group.command("report")
@_CONFIG
@click.option("--date", help="YYYY-MM-DD (default: yesterday)")
@click.option("--tz", default=None)
@_FORMAT
def report(config_path, fmt, date, tz) -> None:
    """One day's report: summary, top and noisy alerts, escalations, services by health and SLA breaches."""
    doc = _ask(config_path, "/api/v1/reports/daily", _query(date=date, tz=tz))
    sla = doc["summary"]["sla"]["by_service"]
    rows = [{"service": h["service"], "score": h["score"], "band": h["band"], "alerts": h["inputs"]["alerts"],
             "sla_breached": sum(b["breached"] for lv in sla.get(h["service"], {}).values() for b in lv.values())}
            for h in doc["services"]]
    _emit(rows, doc, fmt)


@stats_group.command("refresh")
@_CONFIG
def refresh(config_path) -> None:
    """Bring the statistics aggregates up to date now (the engine does it about every 30 s; a first build over a
    large history runs here in one go)."""
    from .cli_config import load
    from .clock import SystemClock
    from .statistics import write_refresh
    from .store.db import create_db_engine
    from .store.write_port import DirectWrites

    config = load(config_path)
    db = create_db_engine(config.database.url, lock_timeout=config.database.lock_timeout,
                          prepared_statements=config.database.prepared_statements)
    try:
        result = write_refresh.refresh(DirectWrites(db), config, SystemClock().now())
    finally:
        db.dispose()
    watermark = result.watermark.isoformat() if result.watermark else "none"
    click.echo(f"aggregates up to {watermark}: {result.hours} hours re-derived ({result.occurrences} occurrences) "
               f"in {result.batches} transactions, {result.seconds:.1f} s")


def register(main: click.Group) -> None:
    main.add_command(stats_group)
