"""The Now page's on-call panel: who is on call in each schedule at the page's moment, until when, and whether a
rotation or an override put them there. The computation of GET /api/v1/oncall (engine/oncall.py) over the same
stored overrides, so the page and the API never disagree."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..engine.oncall import on_call_everywhere, rfc3339
from ..store.schedule_overrides import overlapping
from .context import services


def panel(now: dt.datetime) -> list[dict[str, Any]]:
    """One row per schedule, by name; none (the panel is hidden) when receiver.yml has no schedules."""
    svc = services()
    if not svc.config.schedules:
        return []
    with svc.read() as conn:
        overrides = overlapping(conn, now, None)
    try:
        answers = on_call_everywhere(svc.config, now, overrides)
    except OverflowError:  # a clock set past year 9999: nothing to show rather than no page
        return []
    return [{"schedule": a.schedule, "person": a.person, "source": a.source, "until": rfc3339(a.until),
             "until_seconds": (a.until - now).total_seconds() if a.until else None} for a in answers]
