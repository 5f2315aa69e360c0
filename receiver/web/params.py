"""Query strings → typed filters. Unknown parameters and bad values are 400s that name them."""

from __future__ import annotations

import datetime as dt
from typing import Iterable

from werkzeug.datastructures import MultiDict
from werkzeug.routing import IntegerConverter, PathConverter, UnicodeConverter

from ..matchers import MatcherError, parse_matchers
from ..store.queries import AlertFilter
from .api_errors import ApiError

_LEVELS = {"L1", "L2", "L3"}
_STATUSES = {"firing", "resolved"}
_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: a row id, 1 to 2^63 - 1. A larger number cannot name a row (and SQLite
    refuses to bind it), so it matches no route: 404."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


MAX_ID = 2**63 - 1


class TextConverter(UnicodeConverter):
    """`<name>` in every route: any text but NUL (no stored value holds one, PostgreSQL refuses it): 404."""

    def __init__(self, map, *args, **kwargs):
        super().__init__(map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", "[^/\\x00]")


class SlashTextConverter(PathConverter):
    """`<path:...>`: text with slashes, but no NUL."""

    regex = "[^/\\x00][^\\x00]*?"

# The converters every route uses, installed by create_app before any route is added.
CONVERTERS = {"int": IdConverter, "default": TextConverter, "string": TextConverter, "path": SlashTextConverter}


def check_known(args: MultiDict, known: Iterable[str]) -> None:
    """Every endpoint's first check of its query string: unknown names, and NUL characters (which no stored
    value contains, and which PostgreSQL refuses in a query parameter), are 400s."""
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise ApiError(400, "unknown_parameter", f"unknown query parameter(s): {', '.join(unknown)}",
                       allowed=sorted(known))
    for name, value in args.items(multi=True):
        if "\x00" in value:
            raise ApiError(400, "bad_parameter", f"{name}: contains a NUL character", parameter=name)


def parse_time(name: str, value: str) -> dt.datetime:
    """RFC 3339 (`2026-11-23T08:00:00Z`, any offset, up to 9 fractional digits) or Unix seconds."""
    text = value.strip()
    try:
        return dt.datetime.fromtimestamp(float(text), dt.timezone.utc)
    except (ValueError, OverflowError, OSError):
        pass
    candidate = text.replace("Z", "+00:00").replace("z", "+00:00")
    if "." in candidate:  # Python parses at most 6 fractional digits
        head, _, tail = candidate.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        candidate = head + "." + tail[:min(digits, 6)] + tail[digits:]
    try:
        parsed = dt.datetime.fromisoformat(candidate)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name}: {value!r} is not an RFC 3339 time or Unix seconds",
                       parameter=name) from None
    if parsed.tzinfo is None:
        raise ApiError(400, "bad_parameter", f"{name}: {value!r} has no time zone (add Z or an offset)", parameter=name)
    try:
        return parsed.astimezone(dt.timezone.utc)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it: no such instant in UTC
        raise ApiError(400, "bad_parameter", f"{name}: {value!r} is out of range", parameter=name) from None


def parse_int(name: str, value: str | None, *, default: int, minimum: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name}: {value!r} is not an integer", parameter=name) from None
    if not minimum <= number <= maximum:
        raise ApiError(400, "bad_parameter", f"{name}: must be between {minimum} and {maximum}", parameter=name)
    return number


def parse_bool(name: str, value: str) -> bool:
    try:
        return _BOOL[value.strip().lower()]
    except KeyError:
        raise ApiError(400, "bad_parameter", f"{name}: {value!r} is not true or false", parameter=name) from None


def _multi(args: MultiDict, name: str) -> list[str]:
    """Repeated parameters and comma-separated lists both work: ?level=L1&level=L2 or ?level=L1,L2."""
    values: list[str] = []
    for raw in args.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


ALERT_FILTER_PARAMS = ("status", "level", "severity", "service", "alertname", "fingerprint", "since", "until",
                       "acked", "match", "group_id")


def alert_filter(args: MultiDict) -> AlertFilter:
    status = args.get("status")
    if status is not None and status not in _STATUSES:
        raise ApiError(400, "bad_parameter", f"status: {status!r} is not one of firing, resolved", parameter="status")
    levels = _multi(args, "level")
    bad = [lv for lv in levels if lv not in _LEVELS]
    if bad:
        raise ApiError(400, "bad_parameter", f"level: {', '.join(bad)} not one of L1, L2, L3", parameter="level")
    since = parse_time("since", args["since"]) if args.get("since") else None
    until = parse_time("until", args["until"]) if args.get("until") else None
    if since and until and since >= until:
        raise ApiError(400, "bad_parameter", "since must be before until", parameter="since")
    matchers = []
    for raw in args.getlist("match"):
        try:
            matchers.extend(parse_matchers(raw))
        except MatcherError as exc:
            fix = f" ({exc.fix})" if exc.fix else ""
            raise ApiError(400, "bad_parameter", f"match: {exc}{fix}", parameter="match") from None
    return AlertFilter(
        status=status,
        levels=tuple(levels),
        severities=tuple(_multi(args, "severity")),
        services=tuple(_multi(args, "service")),
        alertnames=tuple(_multi(args, "alertname")),
        fingerprint=args.get("fingerprint") or None,
        since=since,
        until=until,
        acked=parse_bool("acked", args["acked"]) if args.get("acked") else None,
        matchers=tuple(matchers),
        group_id=args.get("group_id") or None,
    )
