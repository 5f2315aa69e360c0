"""The engine process: a tick loop (escalations, repeats, expired acks) and a delivery loop (the outbox), each on
its own thread so that a slow provider never delays an escalation, plus reload. Run by `alert-receiver worker`,
and by `serve` as its one engine child. Several engines on one database are safe (conditional updates, leases).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable

import requests

from ..alertmanager_api import AlertmanagerClient
from ..channels.registry import build_channels
from ..clock import Clock, SystemClock
from ..config import Config, ConfigError
from ..metrics import Metrics
from ..render import Renderer
from ..statistics import write_refresh as aggregates
from ..store import outbox
from ..store.db import is_unavailable, read_transaction
from ..store.write_port import Writes
from ..wakeup import Wakeup
from . import deadman, reconcile, silences
from .delivery import Dispatcher
from .open_alerts_gauge import OpenAlertsGauge
from .reload import apply_routes
from .retention import run_retention
from .sla_breaches import check_breaches
from .tick import tick

log = logging.getLogger("receiver.engine")

DELIVERY_POLL = 0.2  # seconds between outbox polls: the first page leaves within about this of the commit
UNAVAILABLE_PAUSE = 2.0  # seconds to wait after the database said "try again later"
RETENTION_EVERY = 3600.0  # seconds between retention runs (retention.days; rollups before deletion)
SILENCES_POLL = 2.0  # seconds between passes over ack silences: an unack expires its silence within about this
IDLE_RECHECK = 10.0  # seconds between looks at the config of a loop that is switched off (a reload may switch it on)


class EngineRunner:
    def __init__(self, config: Config, writes: Writes, *, metrics: Metrics, clock: Clock | None = None,
                 load_config: Callable[[], Config] | None = None, http: requests.Session | None = None,
                 worker: str | None = None):
        self.config = config
        self.writes = writes
        self.db = writes.db  # for reads
        self.metrics = metrics
        metrics.initialise_channels(config.channels)
        self.open_alerts = OpenAlertsGauge(metrics)
        self.clock = clock or SystemClock()
        self.load_config = load_config
        self.http = http or requests.Session()
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.stop = Wakeup()
        self.wake = Wakeup()  # set to run a tick now (reload, tests)
        self.dispatcher = Dispatcher(writes, config, self._channels(config), clock=self.clock, metrics=metrics,
                                     worker=self.worker, lease=config.delivery.lease)
        self._threads: list[threading.Thread] = []

    def _channels(self, config: Config):
        renderer = Renderer(config.templates.dir,
                            on_error=lambda name, exc: self.metrics.template_errors.labels(template=name).inc())
        return build_channels(config.channels, renderer=renderer, http=self.http)

    # --- loops ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        for target, name in ((self._tick_loop, "tick"), (self._delivery_loop, "delivery"),
                             (self._retention_loop, "retention"), (self._stats_loop, "stats"),
                             (self._deadman_loop, "deadman"),
                             (self._reconcile_loop, "reconcile"), (self._silences_loop, "silences")):
            thread = threading.Thread(target=target, name=f"engine-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("engine started", extra={"worker": self.worker, "tick": self.config.escalation.tick.total_seconds()})

    def join(self, timeout: float | None = None) -> None:
        self.stop.set()
        self.wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self.dispatcher.close()

    def tick_once(self) -> None:
        started = time.perf_counter()
        now = self.clock.now()
        # Breaches first: an occurrence that escalates in this tick has breached its level's ack target when
        # the escalation comes at or after it (the breach is stamped at its exact moment either way).
        breaches = check_breaches(self.writes, self.config, now)
        for (level, target), n in breaches.breaches.items():
            self.metrics.sla_breaches.labels(level=level, target=target).inc(n)
        result = tick(self.writes, self.config, now)
        for (from_level, to_level), n in result.escalations.items():
            self.metrics.escalations.labels(from_level=from_level, to_level=to_level).inc(n)
        if result.repeats or result.resumed:
            self.metrics.repeats.inc(result.repeats + result.resumed)
        self.metrics.engine_tick_duration.observe(time.perf_counter() - started)
        self.metrics.engine_last_tick.set(time.time())
        with read_transaction(self.db) as conn:  # after the tick: levels as it left them
            self.open_alerts.refresh(conn, self.config)

    def _tick_loop(self) -> None:
        while not self.stop.is_set():
            pause = self.config.escalation.tick.total_seconds()
            try:
                self.tick_once()
            except Exception as exc:
                pause = self._trouble("tick", exc, pause)
            self.wake.wait(pause)
            self.wake.clear()

    def _delivery_loop(self) -> None:
        while not self.stop.is_set():
            pause = DELIVERY_POLL
            try:
                with read_transaction(self.db) as conn:
                    due = outbox.has_due(conn, self.clock.now())
                while due and not self.stop.is_set():
                    result = self.dispatcher.run_once()
                    due = result.handled >= self.dispatcher.batch and result.deferred < result.handled
            except Exception as exc:
                pause = self._trouble("delivery", exc, pause)
            self.stop.wait(pause)

    def _retention_loop(self) -> None:
        # Its own thread: a long first run over an old database never delays a tick or a delivery.
        while not self.stop.is_set():
            pause = RETENTION_EVERY
            try:
                result = run_retention(self.writes, self.config, self.clock.now(), should_stop=self.stop.is_set)
                if not result.complete:
                    pause = 60.0  # stopped by its time budget: go on soon
            except Exception as exc:
                pause = self._trouble("retention", exc, 60.0)
            self.stop.wait(pause)

    def deadman_once(self) -> deadman.DeadmanResult:
        result = deadman.check(self.writes, self.config, self.clock.now())
        if result.last_seen is not None:
            self.metrics.watchdog_last_seen.set(result.last_seen.timestamp())
        self.metrics.pipeline_down.set(1 if result.down else 0)
        return result

    def _deadman_loop(self) -> None:
        # Its own thread, at the tick's pace: a stuck escalation pass never hides a silent pipeline, and back.
        while not self.stop.is_set():
            pause = self.config.escalation.tick.total_seconds()
            try:
                self.deadman_once()
            except Exception as exc:
                pause = self._trouble("deadman", exc, pause)
            self.stop.wait(pause)

    def _alertmanager_client(self) -> AlertmanagerClient:
        return AlertmanagerClient(self.http, timeout=self.config.reconcile.timeout.total_seconds())

    def reconcile_once(self) -> reconcile.ReconcileResult:
        result = reconcile.reconcile_once(self.writes, self.config, self._alertmanager_client(), self.clock.now())
        for action in result.actions:  # acks for Alertmanager silences, resolutions of alerts it no longer has
            self.metrics.observe_action(action)
        if not result.complete:
            self.metrics.reconcile_errors.inc()
            log.warning("reconciliation skipped", extra={"reason": result.reason})
            return result
        for kind, ids in (("absent", result.resolved), ("silenced", result.acked), ("unsilenced", result.unacked)):
            if ids:
                self.metrics.reconcile_drift.labels(kind=kind).inc(len(ids))
        self.metrics.reconcile_last_success.set(time.time())
        return result

    def _reconcile_loop(self) -> None:
        # HTTP to Alertmanager happens here, in the engine, never in a request handler or inside a transaction.
        while not self.stop.is_set():
            if not self.config.reconcile.enabled:
                self.stop.wait(IDLE_RECHECK)
                continue
            pause = self.config.reconcile.interval.total_seconds()
            try:
                self.reconcile_once()
            except Exception as exc:
                pause = self._trouble("reconcile", exc, pause)
            self.stop.wait(pause)

    def silences_once(self) -> silences.SilenceResult:
        result = silences.run_once(self.writes, self.config, self._alertmanager_client(), self.clock.now())
        for name in ("created", "expired", "cancelled"):
            if getattr(result, name):
                self.metrics.ack_silences.labels(result=name).inc(getattr(result, name))
        if result.retries:
            self.metrics.ack_silences.labels(result="retry").inc(result.retries)
        return result

    def _silences_loop(self) -> None:
        while not self.stop.is_set():
            if not self.config.reconcile.enabled:  # no Alertmanager to hold silences in
                self.stop.wait(IDLE_RECHECK)
                continue
            pause = SILENCES_POLL
            try:
                self.silences_once()
            except Exception as exc:
                pause = self._trouble("silences", exc, pause)
            self.stop.wait(pause)

    def _stats_loop(self) -> None:
        # Statistics pre-aggregates (engine/aggregates.py): off the webhook path, in short write transactions.
        while not self.stop.is_set():
            pause = aggregates.REFRESH_EVERY
            try:
                result = aggregates.refresh(self.writes, self.config, self.clock.now(), budget=60.0,
                                            should_stop=self.stop.is_set)
                if not result.complete:
                    pause = 1.0  # a first build stopped by its time budget: go on soon
            except Exception as exc:
                pause = self._trouble("stats", exc, aggregates.REFRESH_EVERY)
            self.stop.wait(pause)

    def _trouble(self, loop: str, exc: Exception, pause: float) -> float:
        if is_unavailable(exc):
            log.warning("database unavailable; the engine pauses and retries", extra={"loop": loop,
                                                                                     "error": type(exc).__name__})
            return max(pause, UNAVAILABLE_PAUSE)
        log.exception("engine loop failed; retrying", extra={"loop": loop})
        return max(pause, UNAVAILABLE_PAUSE)

    # --- reload --------------------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the config; a bad file keeps the running one (logged, and the gauge says 0)."""
        if self.load_config is None:
            return False
        try:
            config = self.load_config()
        except ConfigError as exc:
            self.metrics.config_last_reload_successful.set(0)
            log.error("reload failed; keeping the running config", extra={"error": str(exc)})
            return False
        self.apply(config)
        return True

    def apply(self, config: Config) -> None:
        """Run with `config` from now on: new routes and timers for open occurrences, new channels."""
        changed = apply_routes(self.writes, config, now=self.clock.now())
        self.config = config
        self.dispatcher.configure(config, self._channels(config))
        self.metrics.initialise_channels(config.channels)
        self.metrics.config_last_reload_successful.set(1)
        log.info("config reloaded", extra={"source": str(config.source or "defaults"), "rerouted": changed})
        self.wake.set()

