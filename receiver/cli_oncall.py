"""`alert-receiver oncall`: who is on call, from receiver.yml's `people:` and `schedules:` alone (no database, no
token). The same computation and, with --json, the same JSON as GET /api/v1/oncall (engine/oncall.answer)."""

from __future__ import annotations

import json

import click

_CONFIG = click.option("-c", "--config", "config_path", envvar="RECEIVER_CONFIG",
                       help="receiver.yml (default: RECEIVER_CONFIG, else built-in defaults)")


def line(entry: dict) -> str:
    """`primary-db: alice until 2026-03-30T07:00:00+00:00 (rotation)`, or `primary-db: nobody on shift`."""
    until = f" until {entry['until']}" if entry["until"] else ""
    if entry["person"] is None:
        return f"{entry['schedule']}: nobody on shift{until}"
    return f"{entry['schedule']}: {entry['person']}{until} ({entry['source']})"


@click.command("oncall")
@_CONFIG
@click.option("--at", "at_text", metavar="TIME", help="RFC 3339 with a zone, or Unix seconds (default: now)")
@click.option("--schedule", metavar="NAME", help="one schedule (default: every schedule)")
@click.option("--json", "as_json", is_flag=True, help="print the JSON of GET /api/v1/oncall")
def oncall_command(config_path: str | None, at_text: str | None, schedule: str | None, as_json: bool) -> None:
    """Who is on call now (or --at a moment), per schedule, and until when."""
    from .cli_config import load
    from .clock import SystemClock
    from .engine.oncall import UnknownSchedule, answer
    from .web.api_errors import ApiError
    from .web.params import parse_time

    config = load(config_path)
    try:
        at = parse_time("--at", at_text) if at_text else SystemClock().now()  # the API's own parsing
    except ApiError as exc:
        raise click.UsageError(exc.detail) from None
    try:
        doc = answer(config, schedule, at)
    except UnknownSchedule:
        known = ", ".join(sorted(config.schedules)) or "none"
        raise click.BadParameter(f"no schedule named {schedule!r} in receiver.yml (schedules: {known})",
                                 param_hint="--schedule") from None
    except OverflowError:
        raise click.BadParameter(f"{at.isoformat()} is too far in the past or future", param_hint="--at") from None
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    entries = [doc] if schedule else doc["oncall"]
    if not entries:
        click.echo("no schedules in receiver.yml")
    for entry in entries:
        click.echo(line(entry))


def register(main: click.Group) -> None:
    main.add_command(oncall_command)
