"""Prometheus metrics of the receiver. Built per app with an explicit registry (a fresh one per test); under
gunicorn every process writes to the shared multiprocess directory and /metrics aggregates it."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client import values as _values

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
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

    def exposition(self) -> bytes:
        """The text exposition: this registry in one process, the aggregate of all processes under gunicorn."""
        if multiprocess_enabled():
            scrape = CollectorRegistry()
            multiprocess.MultiProcessCollector(scrape)
            return generate_latest(scrape)
        return generate_latest(self.registry)


def check_multiprocess_ready() -> None:
    """prometheus_client picks its value store when first imported: the directory must be set before that."""
    if multiprocess_enabled() and _values.ValueClass is _values.MutexValue:
        raise RuntimeError(
            f"{MULTIPROC_ENV} was set after prometheus_client was imported; metrics would not be shared")
