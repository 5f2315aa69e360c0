"""The dead-man's switch: when no webhook has carried the firing Watchdog for `deadman.timeout`, the receiver raises
its own L1 alert AlertingPipelineDown, and resolves it when the Watchdog is back.

"Last seen" is when a webhook carried the Watchdog firing (ingest records it, repeats included), not its startsAt:
Alertmanager re-sends the same alert, with the same startsAt, every repeat_interval. A resolved Watchdog does not
count: Alertmanager resolves it when Prometheus stopped sending it, which is the failure this switch is for.

The alert is a real occurrence, written by the webhook's own ingest path from a snapshot the engine makes up (source
`deadman`): it shows in the API, escalates and notifies like any other, and two engines checking at once write it
once (the open-occurrence unique index; the same startsAt from the same last-seen time). It starts when the pipeline
became silent (last seen + timeout) and ends when the Watchdog was seen again. Resolved by hand while still silent, it
stays resolved (a snapshot not later than a closed occurrence is stale) until the Watchdog returns and goes again.

enabled: auto (the default) arms the switch once a Watchdog has ever arrived; true arms it from the first check
(an installation that has never received one is down); false disarms it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging


from ..config import Config
from ..domain import AlertStatus, Level, fingerprint
from ..fields import format_duration
from ..payload import Alert, WebhookPayload
from ..store import alerts as alert_store
from ..store import watchdog as watchdog_store
from ..store.db import read_transaction
from ..store.write_port import Writes
from .ingest import IngestResult, ingest, prepare
from .plan import plan_route

log = logging.getLogger("receiver.engine.deadman")

ALERTNAME = "AlertingPipelineDown"
SOURCE = "deadman"  # the occurrence's `source`: the reconciler leaves it alone, Alertmanager never lists it
RECEIVER = "alert-receiver-deadman"
GROUP_KEY = f'{{}}/{{deadman}}:{{alertname="{ALERTNAME}"}}'


@dataclasses.dataclass(frozen=True)
class DeadmanResult:
    armed: bool
    last_seen: dt.datetime | None
    down: bool
    raised: bool = False  # this check opened AlertingPipelineDown
    resolved: bool = False  # this check closed it


def labels(config: Config) -> dict[str, str]:
    # The severity that maps to L1 (critical by default), so that routes matching on severity see what it is.
    severity = next((s for s, level in config.levels.severity.items() if level is Level.L1), "critical")
    return {"alertname": ALERTNAME, "severity": severity, "service": "alerting-pipeline"}


def check(writes: Writes, config: Config, now: dt.datetime) -> DeadmanResult:
    """One look at the Watchdog: raise or resolve AlertingPipelineDown when its state and the Watchdog's disagree.
    Reads first; takes the write lock only to change something."""
    settings = config.deadman
    if settings.enabled is False:
        return DeadmanResult(False, None, False)
    own = labels(config)
    fp = fingerprint(own)
    with read_transaction(writes.db) as conn:
        last_seen = watchdog_store.last_seen(conn)
        state = alert_store.fetch_state(conn, [fp]).get(fp)
    is_open = state is not None and state.open is not None
    if last_seen is None and settings.enabled == "auto":
        return DeadmanResult(False, None, False)
    reference = last_seen
    if reference is None:
        with writes.transaction() as conn:
            reference = watchdog_store.armed_at(conn, now)
    down_since = reference + settings.timeout
    down = now >= down_since
    closed_since = state is not None and state.last_closed_end is not None and state.last_closed_end >= down_since
    if down and not is_open and not closed_since:
        result = _write(writes, config, _snapshot(config, own, fp, down_since, None, reference, last_seen), now)
        raised = bool(result.new_ids)
        if raised:
            log.error("no Watchdog received: AlertingPipelineDown raised",
                      extra={"alertname": settings.alertname, "last_seen": _iso(last_seen),
                             "timeout": format_duration(settings.timeout)})
        return DeadmanResult(True, last_seen, True, raised=raised)
    if not down and is_open and last_seen is not None:
        ends_at = max(last_seen, state.open.starts_at)
        result = _write(writes, config, _snapshot(config, own, fp, state.open.starts_at, ends_at, reference, last_seen),
                        now)
        resolved = bool(result.closed_ids)
        if resolved:
            log.info("Watchdog is back: AlertingPipelineDown resolved", extra={"last_seen": _iso(last_seen)})
        return DeadmanResult(True, last_seen, False, resolved=resolved)
    return DeadmanResult(True, last_seen, down)


def _snapshot(config: Config, own: dict[str, str], fp: str, starts_at: dt.datetime, ends_at: dt.datetime | None,
              reference: dt.datetime, last_seen: dt.datetime | None) -> WebhookPayload:
    settings = config.deadman
    seen = f"The last {settings.alertname} arrived at {_iso(last_seen)}" if last_seen else \
        f"No {settings.alertname} has arrived since the dead-man's switch was armed at {_iso(reference)}"
    alert = Alert(
        fingerprint=fp,
        status=AlertStatus.RESOLVED if ends_at else AlertStatus.FIRING,
        labels=own,
        annotations={
            "summary": f"No {settings.alertname} alert for {format_duration(settings.timeout)}: the alerting "
                       "pipeline (Prometheus → Alertmanager → alert-receiver) is broken",
            # Fixed for the whole silent period (the check runs every tick and must not rewrite it).
            "description": f"{seen}. Until it is back, no alert from Prometheus reaches alert-receiver: check "
                           "Prometheus, its rule evaluation, Alertmanager and the webhook between them.",
        },
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url="",
    )
    return WebhookPayload(receiver=RECEIVER, status=alert.status.value, group_key=GROUP_KEY,
                          group_labels={"alertname": ALERTNAME}, external_url=config.server.public_url or "",
                          truncated_alerts=0, alerts=[alert])


def _write(writes: Writes, config: Config, payload: WebhookPayload, now: dt.datetime) -> IngestResult:
    prepared = prepare(payload, config=config, now=now, source=SOURCE)
    fp = payload.alerts[0].fingerprint
    if prepared.plans[fp].level is not Level.L1:
        # No severity maps to L1 in levels.severity: it is still an L1 alert, routed as one.
        plan = plan_route(config, payload.alerts[0].labels, Level.L1, now)
        prepared.plans[fp] = plan
        prepared.rows[fp].update(level=plan.level.value, route=plan.route[:200], escalate=plan.notify,
                                 next_action_at=plan.next_action_at)
    with writes.transaction() as conn:
        return ingest(conn, payload, config=config, now=now, source=SOURCE, prepared=prepared)


def _iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z") if value else "never"
