"""The mute lines of `alert-receiver routes test`: a route's time intervals (receiver.yml alone) and the maintenance
windows stored in the configured database, opened read only like `alert-receiver oncall` does (a database that
cannot be read: time intervals only, and stderr says so)."""

from __future__ import annotations

import datetime as dt
from typing import Mapping

import click


def mute_lines(config, labels: Mapping[str, str], at: dt.datetime) -> list[str]:
    """`muted: by time interval nights until 2026-11-24T06:00:00Z`, `muted: by maintenance window #3 until …`: one
    line per mute holding at `at` for an alert with `labels` (the first matching route's intervals)."""
    from .engine.mutes import parse_windows, route_mute, window_mute
    from .engine.routing import match_routes

    route = match_routes(config.resolved_routes(), labels)[0]
    found = [route_mute(config, route, at), window_mute(parse_windows(_windows(config, at)), labels, at)]
    return [f"muted: {mute.describe()}" for mute in found if mute is not None]


def _windows(config, at: dt.datetime) -> list:
    from .cli_readonly import read_table
    from .logs import redact
    from .store.maintenance import holding_between

    def unreadable(reason: str) -> list:
        _note(f"cannot read maintenance windows from {redact(config.database.url)}: {reason}")
        return []

    return read_table(config, "maintenance_windows", lambda conn: holding_between(conn, at, at),
                      note=lambda why: None, on_error=unreadable)


def _note(text: str) -> None:
    click.echo(f"note: {text}", err=True)


def parse_at(text: str | None) -> dt.datetime:
    """--at as the API parses times (RFC 3339 with a zone, or Unix seconds); default now."""
    from .clock import SystemClock
    from .web.api_errors import ApiError
    from .web.params import parse_time

    if not text:
        return SystemClock().now()
    try:
        return parse_time("--at", text)
    except ApiError as exc:
        raise click.UsageError(exc.detail) from None
