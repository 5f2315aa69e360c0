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
        self.config_last_reload_successful = Gauge(
            "alert_receiver_config_last_reload_successful", "1 if the last configuration load succeeded.",
            multiprocess_mode="mostrecent", registry=registry)

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
