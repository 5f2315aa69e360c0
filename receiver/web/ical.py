"""iCalendar (RFC 5545) for a schedule's shifts: one VEVENT per shift, times in UTC, text escaped, lines folded."""

from __future__ import annotations

import datetime as dt
from typing import Iterable

from ..engine.oncall import OnCall

_MAX_OCTETS = 75


def calendar(schedule: str, shifts: Iterable[OnCall], *, now: dt.datetime) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//alert-receiver//on-call//EN", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH", f"X-WR-CALNAME:{_text(f'On call: {schedule}')}"]
    for shift in shifts:
        lines += ["BEGIN:VEVENT",
                  f"UID:{_stamp(shift.at)}-{_text(schedule)}@alert-receiver",
                  f"DTSTAMP:{_stamp(now)}",
                  f"DTSTART:{_stamp(shift.at)}",
                  f"DTEND:{_stamp(shift.until)}",
                  f"SUMMARY:{_text(f'{shift.person} on call ({schedule})')}",
                  "TRANSP:TRANSPARENT",
                  "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _text(value: str) -> str:
    """A TEXT value: backslash, semicolon and comma escaped, line breaks as \\n (RFC 5545 3.3.11)."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after CRLF and a space, never inside a character."""
    out, current = [], ""
    for char in line:
        limit = _MAX_OCTETS if not out else _MAX_OCTETS - 1
        if len((current + char).encode("utf-8")) > limit:
            out.append(current)
            current = ""
        current += char
    out.append(current)
    return "\r\n ".join(out)
