"""`alert-receiver export` and `alert-receiver purge`: the export and retention of the API, on the command line.

Both run the same code as the API in-process (receiver.statistics.read_export, receiver.engine.retention),
straight on the database named by receiver.yml: `export` streams the same rows as GET /api/v1/alerts/export.csv to
stdout with constant memory (on a terminal, without control characters); `purge` folds and deletes like DELETE
/api/v1/history, without the API's time budget.
"""

from __future__ import annotations

import sys

import click

_CONFIG = click.option("-c", "--config", "config_path", envvar="RECEIVER_CONFIG",
                       help="receiver.yml (default: RECEIVER_CONFIG, else built-in defaults)")


def _db(config_path: str | None):
    from .app import build_db
    from .cli_config import load

    return build_db(load(config_path))


@click.command("export")
@_CONFIG
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "ndjson"]), default="csv", show_default=True)
@click.option("--since", help="RFC 3339 or Unix seconds, on startsAt")
@click.option("--until", help="RFC 3339 or Unix seconds, on startsAt")
@click.option("--status", type=click.Choice(["firing", "resolved"]))
@click.option("--level", multiple=True, help="L1, L2, L3 (repeatable)")
@click.option("--service", multiple=True)
@click.option("--severity", multiple=True)
@click.option("--alertname", multiple=True)
@click.option("--fingerprint")
@click.option("--acked", type=click.Choice(["true", "false"]))
@click.option("--match", multiple=True, help='Alertmanager matcher, e.g. team="db" (repeatable)')
def export_command(config_path, fmt, **filters) -> None:
    """Stream the filtered history to stdout as CSV, JSON or NDJSON (the rows of /api/v1/alerts/export.csv)."""
    from werkzeug.datastructures import MultiDict

    from .statistics.read_export import Export
    from .text_safety import terminal_text
    from .web.api_errors import ApiError
    from .web.params import alert_filter

    args = MultiDict()
    for key, value in filters.items():
        for v in (value if isinstance(value, tuple) else (value,)):
            if v not in (None, ""):
                args.add(key, v)
    try:
        flt = alert_filter(args)  # the API's own parsing: same meaning, same errors
    except ApiError as exc:
        raise click.UsageError(exc.detail) from None
    db = _db(config_path)
    out = sys.stdout.buffer  # click.get_binary_stream is deprecated (gone in Click 9)
    # A file or pipe gets the rows as they are; a terminal must not obey the escape sequences in label values.
    shown = terminal_text if out.isatty() else str
    export = Export(db, flt, fmt)
    try:
        for chunk in export:
            out.write(shown(chunk).encode("utf-8"))
        out.flush()
    except BrokenPipeError:  # `| head`: the reader has gone, which is not an error
        sys.stderr.close()
    finally:
        export.close()
        db.dispose()


@click.command("purge")
@_CONFIG
@click.option("--older-than", "older_than", required=True, help="e.g. 90d (at least 1d); resolved history only")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--batch-size", type=click.IntRange(100, 50000), default=None, help="occurrences per transaction [SQLite 500, PostgreSQL 2000]")
def purge_command(config_path, older_than, yes, batch_size) -> None:
    """Delete resolved history older than --older-than (whole UTC days), rolled up into daily aggregates first."""
    from .clock import SystemClock
    from .engine import retention
    from .store.write_port import DirectWrites
    from .fields import FieldError, parse_duration
    from .store.queries import iso

    try:
        age = parse_duration(older_than)
    except FieldError as exc:
        raise click.BadParameter(f"{exc} ({exc.fix})", param_hint="--older-than") from None
    if age < retention.MIN_AGE:
        raise click.BadParameter("must be at least 1d", param_hint="--older-than")
    cutoff = retention.cutoff_for(SystemClock().now(), age)
    db = _db(config_path)
    try:
        eligible = retention.count(db, cutoff)
        click.echo(f"{eligible} resolved occurrence(s) before {iso(cutoff)} will be rolled up and deleted",
                   err=True)
        if eligible == 0:
            return
        if not yes and not click.confirm("Continue?", err=True):
            raise click.Abort()

        def progress(r) -> None:
            if r.batches % 25 == 0:
                click.echo(f"  {r.counts.alerts} deleted …", err=True)

        result = retention.purge(DirectWrites(db), cutoff, batch_size=batch_size, progress=progress)
        c = result.counts
        click.echo(f"deleted {c.alerts} alerts, {c.events} events, {c.notification_items} notification items, "
                   f"{c.notifications} notifications, {c.correlations} correlations; {c.rollup_rows} rollup "
                   f"row(s) updated in {result.batches} batch(es), {result.seconds:.1f} s "
                   f"(longest batch {result.longest_batch_seconds * 1000:.0f} ms)")
    finally:
        db.dispose()


def register(main: click.Group) -> None:
    main.add_command(export_command)
    main.add_command(purge_command)
