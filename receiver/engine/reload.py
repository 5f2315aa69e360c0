"""A new config for occurrences already open: each is matched against the new routes (the route it records and
whether it escalates), then the pending timer of every unacknowledged one is recomputed from when its timer
started — one UPDATE per route and level, whatever the number of occurrences.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict


from ..config import Config
from ..domain import Level
from ..store import timers
from ..store.alerts import clip
from ..store.write_port import Writes
from .escalation import level_delay
from .plan import escalates
from .routing import match_routes


def apply_routes(writes: Writes, config: Config, *, now: dt.datetime) -> int:
    """Re-route and re-time every open occurrence for `config`; returns how many changed route."""
    routes = config.resolved_routes()
    moved: dict[tuple[str, bool], list[int]] = defaultdict(list)
    with writes.transaction() as conn:
        for row in timers.open_routes(conn):
            first = match_routes(routes, row.labels or {})[0]
            target = (clip(first.name), escalates(config, first, row.labels or {}))
            if (row.route, bool(row.escalate)) != target:
                moved[target].append(row.id)
        for (route, escalate), ids in moved.items():
            timers.set_route(conn, ids, route=route, escalate=escalate, now=now)
        for route in routes:
            if not route.escalate:
                continue
            for level in Level:
                timers.retime_open(conn, route=clip(route.name), level=level.value,
                                   delay=level_delay(route, level), now=now)
    return sum(len(ids) for ids in moved.values())
