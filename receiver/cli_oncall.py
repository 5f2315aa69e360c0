"""`alert-receiver oncall`: who is on call, from receiver.yml's `people:` and `schedules:` and the overrides stored in
the configured database (read only; no token). The same computation and, with --json, the same JSON as
GET /api/v1/oncall (engine/oncall.answer).

A database that does not exist yet, or was never migrated, holds no override: the answer is the rotations' and
stderr says why. A database that exists but cannot be read is an error: an override there may name someone else."""

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


def _note(text: str) -> None:
    click.echo(f"note: {text}; answering from the rotations alone", err=True)


def read_overrides(config, at, schedule: str | None) -> list:
    """The overrides not ended by `at` (every one, as the API reads them), from the configured database opened read
    only: nothing is created, migrated or written."""
    from .cli_readonly import read_table
    from .logs import redact
    from .store.schedule_overrides import overlapping

    def unreadable(reason: str):
        raise click.ClickException(
            f"cannot read the schedule overrides from {redact(config.database.url)}: {reason}. An override there "
            "may put someone else on call, so there is no answer without it")

    return read_table(config, "schedule_overrides", lambda conn: overlapping(conn, at, None,
                                                                           [schedule] if schedule else None),
                      note=_note, on_error=unreadable)


def paged_lines(config, labels, at) -> list[str]:
    """`routes test`'s people: for each level, every schedule or person the matching routes page and who that is at
    `at` (overrides included): `L1 pages schedule:primary-db → alice until … (rotation) via sms-oncall, email-oncall`."""
    from .domain import Level
    from .engine.oncall import on_call
    from .engine.plan import paged_at
    from .engine.routing import match_routes

    routes = match_routes(config.resolved_routes(), labels)
    by_level = {level: paged_at(config, routes, level) for level in (Level.L3, Level.L2, Level.L1)}
    targets = {t for pairs in by_level.values() for _, t in pairs if t}
    if not targets:
        return []
    schedules = sorted({t.partition(":")[2] for t in targets if t.startswith("schedule:")})
    overrides = [o for o in read_overrides(config, at, None) if o.schedule in schedules] if schedules else []
    lines = []
    for level, pairs in by_level.items():
        for target in dict.fromkeys(t for _, t in pairs if t):
            via = ", ".join(c for c, t in pairs if t == target)
            kind, _, name = target.partition(":")
            if kind == "person":
                who = f"{name} (person)"
            else:
                entry = on_call(config, name, at, overrides).as_dict()
                who = line(entry).partition(": ")[2]
            lines.append(f"{level.value} pages {target} → {who} via {via}")
    return lines


@click.command("oncall")
@_CONFIG
@click.option("--at", "at_text", metavar="TIME", help="RFC 3339 with a zone, or Unix seconds (default: now)")
@click.option("--schedule", metavar="NAME", help="one schedule (default: every schedule)")
@click.option("--json", "as_json", is_flag=True, help="print the JSON of GET /api/v1/oncall")
def oncall_command(config_path: str | None, at_text: str | None, schedule: str | None, as_json: bool) -> None:
    """Who is on call now (or --at a moment), per schedule, and until when; overrides included."""
    from .cli_config import load
    from .clock import SystemClock
    from .engine.oncall import answer
    from .web.api_errors import ApiError
    from .web.params import parse_time

    config = load(config_path)
    try:
        at = parse_time("--at", at_text) if at_text else SystemClock().now()  # the API's own parsing
    except ApiError as exc:
        raise click.UsageError(exc.detail) from None
    if schedule and schedule not in config.schedules:
        known = ", ".join(sorted(config.schedules)) or "none"
        raise click.BadParameter(f"no schedule named {schedule!r} in receiver.yml (schedules: {known})",
                                 param_hint="--schedule")
    overrides = read_overrides(config, at, schedule) if config.schedules else []
    try:
        doc = answer(config, schedule, at, overrides)
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
