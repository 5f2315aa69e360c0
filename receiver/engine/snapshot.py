"""What a webhook snapshot changes: a pure decision per alert against the stored occurrences of its fingerprint.

Rules (docs/design.md, "Identity"): at most one open occurrence per fingerprint; a firing snapshot updates it (keeping the
earliest startsAt) or opens a new one unless its startsAt is not later than the end of the last closed one (a late
snapshot from an HA peer, or an alert resolved by hand that Alertmanager still reports); a resolved snapshot closes
the open occurrence with Alertmanager's endsAt; resolution is final. A snapshot that changes nothing writes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Iterable, Mapping, Sequence

from ..domain import AlertStatus, StoredState
from ..payload import Alert


class Outcome(str, enum.Enum):
    NEW = "new"  # opens a firing occurrence
    NEW_RESOLVED = "new_resolved"  # first seen already resolved: recorded as a closed occurrence (history)
    UPDATED = "updated"  # earlier startsAt, or new annotations, on the open occurrence
    RESOLVED = "resolved"  # closes the open occurrence
    DUPLICATE = "duplicate"  # changes nothing
    STALE = "stale"  # a late snapshot of a period already closed: changes nothing


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    alert: Alert
    outcome: Outcome
    occurrence_id: int | None = None
    new_starts_at: dt.datetime | None = None  # for UPDATED, when startsAt moved earlier
    ends_at: dt.datetime | None = None  # for RESOLVED / NEW_RESOLVED


def dedupe(alerts: Iterable[Alert]) -> list[Alert]:
    """One alert per fingerprint, sorted by fingerprint (a stable lock order for HA peers' concurrent writes).

    Alertmanager never repeats a fingerprint within a group; other senders might. Firing wins over resolved (the
    alert is firing now), and among firing copies the earliest startsAt wins.
    """
    chosen: dict[str, Alert] = {}
    for alert in alerts:
        prev = chosen.get(alert.fingerprint)
        if prev is None:
            chosen[alert.fingerprint] = alert
        elif alert.status is AlertStatus.FIRING and (
            prev.status is AlertStatus.RESOLVED or alert.starts_at < prev.starts_at
        ):
            chosen[alert.fingerprint] = alert
        elif alert.status is prev.status is AlertStatus.RESOLVED and (alert.ends_at or alert.starts_at) > (
            prev.ends_at or prev.starts_at
        ):
            chosen[alert.fingerprint] = alert
    return [chosen[fp] for fp in sorted(chosen)]


def decide(alert: Alert, state: StoredState) -> Decision:
    """The change one snapshot alert makes, given what is stored for its fingerprint."""
    current = state.open
    if alert.status is AlertStatus.FIRING:
        if current is not None:
            earlier = alert.starts_at < current.starts_at
            if earlier and state.last_closed_end is not None and alert.starts_at <= state.last_closed_end:
                earlier = False  # that start belongs to a closed period: the open one does not move back into it
            changed = earlier or dict(current.annotations) != alert.annotations or current.generator_url != alert.generator_url
            if not changed:
                return Decision(alert, Outcome.DUPLICATE, current.id)
            return Decision(alert, Outcome.UPDATED, current.id, new_starts_at=alert.starts_at if earlier else None)
        if state.last_closed_end is not None and alert.starts_at <= state.last_closed_end:
            return Decision(alert, Outcome.STALE)
        return Decision(alert, Outcome.NEW)

    ends_at = alert.ends_at or alert.starts_at
    if current is not None:
        if ends_at < current.starts_at:
            # The end of an earlier period, arriving after a new one opened: the open one is still firing.
            return Decision(alert, Outcome.STALE, current.id)
        return Decision(alert, Outcome.RESOLVED, current.id, ends_at=ends_at)
    if state.last_closed_end is not None and alert.starts_at <= state.last_closed_end:
        # Already closed (by an earlier resolved snapshot, an HA peer, or by hand): resolution is final.
        return Decision(alert, Outcome.DUPLICATE)
    return Decision(alert, Outcome.NEW_RESOLVED, ends_at=max(ends_at, alert.starts_at))


def decide_all(alerts: Sequence[Alert], states: Mapping[str, StoredState]) -> list[Decision]:
    empty = StoredState()
    return [decide(a, states.get(a.fingerprint, empty)) for a in alerts]
