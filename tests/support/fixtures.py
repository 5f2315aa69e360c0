"""The genuine Alertmanager 0.25 webhook captures in tests/fixtures (see its README), as raw bodies and parsed documents.

They were captured on 2026-11-23. A test that pins the clock (`FixedClock`, time-machine) uses them as they are; a
test on the real clock (a real `serve`, a browser) asks for `recent(name)`: the same bytes with every timestamp
moved so that the captures end just now, so that "the last 7 days" holds them on any date.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "alertmanager-0.25"
TOKEN = "dev-fixture-token-7f3a9c"
# Every timestamp in every body is at or before this moment (the newest: 2026-11-23T08:16:02.456Z).
CAPTURED_UNTIL = dt.datetime(2026, 11, 23, 8, 17, tzinfo=dt.timezone.utc)
# An RFC 3339 time as Alertmanager writes it: 0, 2, 3 or 9 fractional digits, `Z`.
_STAMP = re.compile(rb'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z"')


def captures() -> list[dict]:
    """Every captured POST (the *.json files), sorted by name."""
    return [json.loads(p.read_text()) | {"_file": p.name} for p in sorted(FIXTURES.glob("*.json"))]


def raw_bodies() -> dict[str, bytes]:
    """name → the exact bytes Alertmanager sent, for every raw/*.body."""
    return {p.stem: p.read_bytes() for p in sorted((FIXTURES / "raw").glob("*.body"))}


def raw(name: str) -> bytes:
    return (FIXTURES / "raw" / f"{name}.body").read_bytes()


def moved(body: bytes, until: dt.datetime) -> bytes:
    """`body` with every timestamp moved by the same whole number of seconds, so that CAPTURED_UNTIL becomes
    `until`: offsets between alerts and between bodies stay, and so does each stamp's format (its fraction digits).
    Alertmanager's zero time (0001-01-01, "no end") is not a time and stays."""
    shift = dt.timedelta(seconds=int((until - CAPTURED_UNTIL).total_seconds()))

    def move(match: re.Match) -> bytes:
        whole, fraction = match.group(1).decode(), match.group(2) or b""
        if whole.startswith("0001-"):
            return match.group(0)
        at = dt.datetime.fromisoformat(whole) + shift
        return b'"' + at.strftime("%Y-%m-%dT%H:%M:%S").encode() + fraction + b'Z"'

    return _STAMP.sub(move, body)


def recent(name: str, now: dt.datetime | None = None) -> bytes:
    """raw(name) as if captured just now (or `until` now): for tests on the real clock."""
    return moved(raw(name), now or dt.datetime.now(dt.timezone.utc))


def new_alert_bodies(count: int, tag: str) -> list[bytes]:
    """`count` single-alert webhooks as a_single_firing, just now, each a new alert (instance `<tag>-<i>:9100`,
    no fingerprint: the receiver computes it)."""
    template = json.loads(recent("a_single_firing"))
    bodies = []
    for i in range(count):
        body = json.loads(json.dumps(template))
        body["alerts"][0]["labels"]["instance"] = f"{tag}-{i}:9100"
        body["alerts"][0].pop("fingerprint")
        bodies.append(json.dumps(body).encode())
    return bodies


def source_of(capture: dict) -> str:
    """The /webhook/<name> the capture was posted to ('' for plain /webhook)."""
    path = capture["request"]["path"]
    parts = path.strip("/").split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == "webhook" else ""
