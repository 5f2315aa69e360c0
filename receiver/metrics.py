"""Prometheus metrics of the receiver. Built per app with an explicit registry (a fresh one per test); under
gunicorn every process writes to the shared multiprocess directory and /metrics aggregates it."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client import values as _values

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Time to acknowledge / resolve: from 30 s to a week (the buckets a Grafana histogram_quantile interpolates in).
_ACK_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
_RESOLVE_BUCKETS = (60, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800)

# The label values known before the first event, so that every labelled series the dashboards name exists (at 0)
# in a freshly started receiver's /metrics (grafana/, tests/platform/test_grafana_dashboards.py).
LEVELS = ("L1", "L2", "L3")
WEBHOOK_CODES = ("200", "400", "401", "403", "413", "415", "422", "429", "503")
WEBHOOK_REJECT_REASONS = ("malformed_json", "invalid_payload", "unsupported_version", "body_too_large",
                          "unsupported_media_type")
INGEST_RESULTS = ("new", "new_resolved", "updated", "resolved", "duplicate", "stale")
DELIVERY_RESULTS = ("sent", "retry", "dead")
ESCALATIONS = (("L3", "L2"), ("L2", "L1"), ("L3", "L1"))
RECONCILE_DRIFT_KINDS = ("absent", "silenced", "unsilenced")
ACK_SILENCE_RESULTS = ("created", "expired", "cancelled", "retry")
AUTH_FAILURES = tuple((kind, reason) for kind in ("bearer", "basic", "login") for reason in ("invalid", "throttled"))
OTHER = "other"  # the bucket of severities and services beyond the bounded sets of alert_receiver_open_alerts



def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.group_commit = GroupCommitMetrics(registry)  # a worker's own group commit (PostgreSQL, big webhooks)
        self.webhook_requests = Counter(
            "alert_receiver_webhook_requests", "Webhook requests answered, by HTTP status code.", ["code"],
            registry=registry)
        self.webhook_rejected = Counter(
            "alert_receiver_webhook_rejected", "Webhook bodies refused (kept as dead letters), by reason.", ["reason"],
            registry=registry)
        self.alerts_ingested = Counter(
            "alert_receiver_alerts_ingested",
            "Alerts of accepted webhooks by what they changed: new, new_resolved, updated, resolved, "
            "duplicate (suppressed: changed nothing), stale (late snapshot of a closed occurrence).",
            ["result"], registry=registry)
        self.truncated_alerts = Counter(
            "alert_receiver_truncated_alerts", "Alerts Alertmanager left out of webhooks (truncatedAlerts).",
            registry=registry)
        self.unknown_severity = Counter(
            "alert_receiver_unknown_severity_alerts", "New occurrences whose severity is not in levels.severity.",
            registry=registry)
        self.ingest_duration = Histogram(
            "alert_receiver_ingest_duration_seconds", "Time from a webhook's first byte read to its commit.",
            buckets=_LATENCY_BUCKETS, registry=registry)
        self.auth_failures = Counter(
            "alert_receiver_auth_failures",
            "Failed authentications by kind (bearer, basic: API headers; login: the dashboard's sign-in form) and "
            "reason: invalid (matched no token), throttled (refused with 429: too many failures from its address).",
            ["kind", "reason"], registry=registry)
        self.config_last_reload_successful = Gauge(
            "alert_receiver_config_last_reload_successful", "1 if the last configuration load succeeded.",
            multiprocess_mode="mostrecent", registry=registry)

        # The engine's side (written by the engine process; aggregated by /metrics like the rest).
        self.notifications = Counter(
            "alert_receiver_notifications", "Delivery attempts by channel and result: sent, retry (failed, will be "
            "tried again), dead (given up: permanent error, past give_up_after or max_attempts).",
            ["channel", "result"], registry=registry)
        self.oncall_unresolved = Counter(
            "alert_receiver_oncall_unresolved",
            "Messages to a schedule or person that reached nobody (nobody on shift, or no address for the channel): "
            "dead, with a nobody_on_call event and the schedule's fallback told instead; by schedule "
            '("person:<name>" for a person target).', ["schedule"], registry=registry)
        self.escalations = Counter(
            "alert_receiver_escalations", "Occurrences moved up a level, by the engine or by hand.",
            ["from_level", "to_level"], registry=registry)
        self.repeats = Counter(
            "alert_receiver_repeats", "Re-notifications at the same level (L1 repeats, expired or undone acks).",
            registry=registry)
        self.sla_breaches = Counter(
            "alert_receiver_sla_breaches", "SLA targets missed, by level and target (ack, resolve): one per breach.",
            ["level", "target"], registry=registry)
        for level in ("L1", "L2", "L3"):
            for target in ("ack", "resolve"):
                self.sla_breaches.labels(level=level, target=target)
        self.engine_tick_duration = Histogram(
            "alert_receiver_engine_tick_duration_seconds", "Duration of one engine tick (escalations and repeats).",
            buckets=_LATENCY_BUCKETS, registry=registry)
        self.engine_last_tick = Gauge(
            "alert_receiver_engine_last_tick_timestamp_seconds", "Unix time at which the engine last finished a tick.",
            multiprocess_mode="max", registry=registry)
        self.template_errors = Counter(
            "alert_receiver_template_errors", "Templates that failed to render (a minimal built-in message was sent).",
            ["template"], registry=registry)
        self.outbox_messages = Gauge(
            "alert_receiver_outbox_messages", "Messages waiting for delivery (pending or failed), read at scrape time.",
            multiprocess_mode="mostrecent", registry=registry)
        self.outbox_oldest_age = Gauge(
            "alert_receiver_outbox_oldest_pending_age_seconds",
            "Age of the oldest message waiting for delivery, read at scrape time; 0 when none waits.",
            multiprocess_mode="mostrecent", registry=registry)

        # Reliability (engine/deadman.py, engine/reconcile.py, engine/silences.py).
        self.watchdog_last_seen = Gauge(
            "alert_receiver_watchdog_last_seen_timestamp_seconds",
            "Unix time at which a webhook last carried the firing Watchdog (deadman.alertname); 0 if never.",
            multiprocess_mode="max", registry=registry)
        self.pipeline_down = Gauge(
            "alert_receiver_alerting_pipeline_down",
            "1 while the dead-man's switch finds no Watchdog within deadman.timeout (AlertingPipelineDown fires).",
            multiprocess_mode="mostrecent", registry=registry)
        self.reconcile_drift = Counter(
            "alert_receiver_reconcile_drift",
            "Stored alerts the reconciler corrected against Alertmanager, by kind: absent (resolved: no Alertmanager "
            "lists it), silenced (acknowledged: silenced in Alertmanager), unsilenced (its silence ended: unacked).",
            ["kind"], registry=registry)
        self.reconcile_last_success = Gauge(
            "alert_receiver_reconcile_last_success_timestamp_seconds",
            "Unix time of the last reconciliation in which every configured Alertmanager answered.",
            multiprocess_mode="max", registry=registry)
        self.reconcile_errors = Counter(
            "alert_receiver_reconcile_errors", "Alertmanager polls that failed (the pass changed nothing).",
            registry=registry)
        self.ack_silences = Counter(
            "alert_receiver_ack_silences",
            "Alertmanager silences for acks (ack_silence), by result: created, expired, cancelled (ended before it "
            "was created), retry (an Alertmanager call failed; tried again later).", ["result"], registry=registry)

        # The alerts themselves (grafana/alerts.json). The open-alerts gauge is set by the engine after each tick
        # (engine/open_alerts_gauge.py) with bounded labels: the configured severities and the top services,
        # the rest as "other". The two histograms are observed by the process that acknowledges or resolves.
        self.open_alerts = Gauge(
            "alert_receiver_open_alerts",
            "Firing occurrences by level, severity (levels.severity keys, else other) and service (the 20 "
            'services with most open alerts, the rest as "other"), set by the engine after each tick.',
            ["level", "severity", "service"], multiprocess_mode="mostrecent", registry=registry)
        self.time_to_ack = Histogram(
            "alert_receiver_time_to_acknowledge_seconds",
            "First notification sent to first acknowledgement (MTTA), observed when an occurrence is first acked.",
            buckets=_ACK_BUCKETS, registry=registry)
        self.time_to_resolve = Histogram(
            "alert_receiver_time_to_resolve_seconds",
            "startsAt to resolution (MTTR), observed when an open occurrence is resolved (by Alertmanager, by hand, "
            "or by the reconciler).", buckets=_RESOLVE_BUCKETS, registry=registry)
        self._initialise_known_labels()

    def _initialise_known_labels(self) -> None:
        """Every known label value at 0: the series exist before their first event (absent is not zero in PromQL,
        and under PROMETHEUS_MULTIPROC_DIR a child is only written to its process's file once created)."""
        for code in WEBHOOK_CODES:
            self.webhook_requests.labels(code=code)
        for reason in WEBHOOK_REJECT_REASONS:
            self.webhook_rejected.labels(reason=reason)
        for result in INGEST_RESULTS:
            self.alerts_ingested.labels(result=result)
        for kind, reason in AUTH_FAILURES:
            self.auth_failures.labels(kind=kind, reason=reason)
        for from_level, to_level in ESCALATIONS:
            self.escalations.labels(from_level=from_level, to_level=to_level)
        for kind in RECONCILE_DRIFT_KINDS:
            self.reconcile_drift.labels(kind=kind)
        for result in ACK_SILENCE_RESULTS:
            self.ack_silences.labels(result=result)
        for level in LEVELS:
            self.open_alerts.labels(level=level, severity=OTHER, service=OTHER)

    def initialise_channels(self, channels) -> None:
        """alert_receiver_notifications at 0 for every configured channel and result (the channels are config)."""
        for channel in channels:
            for result in DELIVERY_RESULTS:
                self.notifications.labels(channel=channel, result=result)

    def observe_action(self, result) -> None:
        """MTTA and MTTR samples of a lifecycle action (engine/lifecycle.ActionResult), by whoever ran it."""
        for seconds in result.time_to_ack:
            self.time_to_ack.observe(seconds)
        for seconds in result.time_to_resolve:
            self.time_to_resolve.observe(seconds)

    def exposition(self) -> bytes:
        """The text exposition: this registry in one process, the aggregate of all processes under gunicorn."""
        if multiprocess_enabled():
            scrape = CollectorRegistry()
            multiprocess.MultiProcessCollector(scrape)
            return generate_latest(scrape)
        return generate_latest(self.registry)


_BATCH_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 48, 64)
_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class GroupCommitMetrics:
    """Group commit's transactions, wherever they run: the writer process (receiver/writer) and, on PostgreSQL, a
    process's own threads (store/group_writes.py). Under serve every process's samples add up in one series."""

    def __init__(self, registry: CollectorRegistry):
        self.batch_size = Histogram(
            "alert_receiver_group_commit_batch_size",
            "Jobs (webhooks, the engine's outbox claims and outcomes) per group-commit transaction.",
            buckets=_BATCH_BUCKETS, registry=registry)
        self.transaction_seconds = Histogram(
            "alert_receiver_group_commit_seconds",
            "Time of one group-commit transaction, BEGIN (on SQLite the writer lock) to COMMIT.",
            buckets=_SECONDS_BUCKETS, registry=registry)
        self.jobs = Counter(
            "alert_receiver_group_commit_jobs",
            "Jobs (webhooks, the engine's outbox claims and outcomes) handled by group commit, by result.", ["result"],
            registry=registry)

    def observe(self, jobs: int, failed: int, seconds: float) -> None:
        self.batch_size.observe(jobs)
        self.transaction_seconds.observe(seconds)
        if jobs - failed:
            self.jobs.labels(result="committed").inc(jobs - failed)
        if failed:
            self.jobs.labels(result="failed").inc(failed)


def check_multiprocess_ready() -> None:
    """prometheus_client picks its value store when first imported: the directory must be set before that."""
    if multiprocess_enabled() and _values.ValueClass is _values.MutexValue:
        raise RuntimeError(
            f"{MULTIPROC_ENV} was set after prometheus_client was imported; metrics would not be shared")
