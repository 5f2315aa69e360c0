"""alert_receiver_open_alerts{level, severity, service}: the firing occurrences, counted by the engine after each tick
with one GROUP BY (the status/level index), and published with bounded labels:

- level: L1, L2, L3;
- severity: the keys of levels.severity (the configured ones), anything else as "other";
- service: the SERVICES services with most open alerts (ties by name), every other service as "other".

So a label set never exceeds 3 x (severities + 1) x (SERVICES + 1) series, whatever Alertmanager sends. A series
published earlier and absent now is set to 0 (not removed: under PROMETHEUS_MULTIPROC_DIR a value, once written,
stays in the process's file, so 0 is the only way to say "none"). No Flask here.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..config import Config
from ..domain import AlertStatus
from ..metrics import LEVELS, OTHER, Metrics
from ..store.models import Alert

SERVICES = 20  # services published by name; the rest are summed as "other"

_alerts = Alert.__table__
Key = tuple[str, str, str]  # level, severity, service


def count_open(conn: Connection) -> list[tuple[str, str, str, int]]:
    """(level, severity, service, count) of the firing occurrences: one grouped scan."""
    rows = conn.execute(sa.select(_alerts.c.level, _alerts.c.severity, _alerts.c.service, sa.func.count())
                        .where(_alerts.c.status == AlertStatus.FIRING.value)
                        .group_by(_alerts.c.level, _alerts.c.severity, _alerts.c.service))
    return [(r[0], r[1], r[2], int(r[3])) for r in rows]


def bounded(rows: Iterable[tuple[str, str, str, int]], severities: Iterable[str], *,
            services: int = SERVICES) -> dict[Key, int]:
    """The counts folded onto the bounded label sets (see the module's docstring)."""
    rows = list(rows)
    known = set(severities)
    per_service: Counter = Counter()
    for _, _, service, n in rows:
        per_service[service] += n
    top = {s for s, _ in sorted(per_service.items(), key=lambda item: (-item[1], item[0]))[:services]}
    folded: Counter = Counter()
    for level, severity, service, n in rows:
        folded[(level if level in LEVELS else OTHER, severity if severity in known else OTHER,
                service if service in top else OTHER)] += n
    return dict(folded)


class OpenAlertsGauge:
    """Publishes the counts; remembers what it published to zero the series that emptied."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self.published: set[Key] = {(level, OTHER, OTHER) for level in LEVELS}  # initialised by Metrics

    def refresh(self, conn: Connection, config: Config) -> dict[Key, int]:
        counts = bounded(count_open(conn), config.levels.severity)
        for key in self.published - set(counts):
            self.metrics.open_alerts.labels(*key).set(0)
        for key, n in counts.items():
            self.metrics.open_alerts.labels(*key).set(n)
        # Zeroed series are forgotten (the level x other x other ones excepted): this set stays bounded too.
        self.published = set(counts) | {(level, OTHER, OTHER) for level in LEVELS}
        return counts
