"""A load generator that behaves like Alertmanager towards a webhook receiver, for fault tests.

Each sender thread posts Alertmanager v4 bodies shaped like the genuine 0.25 captures (tests/support/fixtures.py):
one group of a few new, unique, firing alerts per body, with Alertmanager's fingerprints. Like Alertmanager's
notifier, it sends the same bytes again after any non-2xx answer or connection error, with growing gaps (capped),
until a 2xx, and moves on to its next group only then. It records every attempt (status, seconds taken) and every
alert whose POST was answered 2xx: after a test, that set must be stored, all of it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time

import requests

from receiver.domain import fingerprint

FIRING_ENDS_AT = "0001-01-01T00:00:00Z"  # what Alertmanager writes for an alert still firing


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One POST: when it started (monotonic), what came back (0: connection error or timeout), how long it took."""

    started: float
    status: int
    seconds: float
    retry_after: str | None
    group: int


def v4_body(alert_labels: list[dict[str, str]], *, starts_at: str, receiver: str,
            external_url: str = "http://alertmanager.example.org:9093") -> bytes:
    """A webhook body as Alertmanager 0.25 sends it (see b_group_5_firing): one group of firing alerts."""
    common = {k: v for k, v in alert_labels[0].items()
              if all(labels.get(k) == v for labels in alert_labels)}
    group_labels = {k: common[k] for k in ("alertname", "service", "group") if k in common}
    alerts = [{
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": f"{labels['instance']} is down",
                        "description": f"{labels['instance']} of job {labels['job']} has been down for more "
                                       f"than 1 minute."},
        "startsAt": starts_at,
        "endsAt": FIRING_ENDS_AT,
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up%7Bjob%3D%22loadgen%22%7D%20%3D%3D%200&g0.tab=1",
        "fingerprint": fingerprint(labels),
    } for labels in alert_labels]
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items())) + "}"  # as labels.String()
    return json.dumps({
        "receiver": receiver, "status": "firing", "alerts": alerts, "groupLabels": group_labels,
        "commonLabels": common, "commonAnnotations": {}, "externalURL": external_url, "version": "4",
        "groupKey": group_key, "truncatedAlerts": 0,
    }).encode()


class LoadGenerator:
    """`senders` threads posting to `url` + /webhook until stop(); see the module docstring.

    Group n carries `alerts_per_group` alerts `LoadGen<run>` on instances `g<n>-<i>`: unique fingerprints across
    runs and groups. `severity` picks their level at the receiver (critical: L1, paged at once).
    """

    def __init__(self, url: str, *, run: str = "crash", senders: int = 3, alerts_per_group: int = 2,
                 severity: str = "critical", token: str | None = None, timeout: float = 15.0,
                 backoff_initial: float = 0.05, backoff_max: float = 1.0, pace: float = 0.0):
        self.url = url.rstrip("/") + "/webhook"
        self.run = run
        self.senders = senders
        self.alerts_per_group = alerts_per_group
        self.severity = severity
        self.timeout = timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.pace = pace  # seconds between one sender's groups (0: as fast as answered)
        self.headers = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.25.0 (loadgen)"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.starts_at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self.lock = threading.Lock()
        self.sent: dict[str, int] = {}  # fingerprint → group, for every alert posted at least once
        self.acknowledged: set[str] = set()  # fingerprints of alerts whose POST was answered 2xx
        self.attempts: list[Attempt] = []
        self._next_group = 0
        self._stopping = threading.Event()  # no new groups
        self._abandon = threading.Event()  # stop retrying too
        self._threads: list[threading.Thread] = []

    # --- what a group is --------------------------------------------------------------------------------------

    def labels(self, group: int) -> list[dict[str, str]]:
        return [{"alertname": f"LoadGen{self.run.capitalize()}", "instance": f"g{group}-{i}.internal:8080",
                 "job": "loadgen", "service": f"loadgen-{self.run}", "severity": self.severity, "group": str(group)}
                for i in range(self.alerts_per_group)]

    def body(self, group: int) -> tuple[bytes, list[str]]:
        labels = self.labels(group)
        body = v4_body(labels, starts_at=self.starts_at, receiver=f"loadgen-{self.run}")
        return body, [fingerprint(x) for x in labels]

    # --- running ----------------------------------------------------------------------------------------------

    def start(self) -> "LoadGenerator":
        for i in range(self.senders):
            thread = threading.Thread(target=self._sender, name=f"loadgen-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """No new groups; each sender keeps retrying its group in flight until it is answered 2xx or `timeout`
        runs out (then the test fails on an unacknowledged alert, as it should)."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._abandon.set()

    def _take_group(self) -> int:
        with self.lock:
            self._next_group += 1
            return self._next_group

    def _sender(self) -> None:
        session = requests.Session()
        while not self._stopping.is_set():
            group = self._take_group()
            body, fingerprints = self.body(group)
            with self.lock:
                self.sent.update((fp, group) for fp in fingerprints)
            self.post_until_acknowledged(session, group, body, fingerprints)
            if self.pace:
                self._stopping.wait(self.pace)

    def post_until_acknowledged(self, session: requests.Session, group: int, body: bytes,
                                fingerprints: list[str]) -> bool:
        gap = self.backoff_initial
        while not self._abandon.is_set():
            started = time.monotonic()
            status, retry_after = 0, None
            try:
                response = session.post(self.url, data=body, headers=self.headers, timeout=self.timeout)
                status, retry_after = response.status_code, response.headers.get("Retry-After")
            except requests.RequestException:
                session.close()  # a connection the receiver dropped is not reused
                session = requests.Session()
            with self.lock:
                self.attempts.append(Attempt(started, status, time.monotonic() - started, retry_after, group))
                if 200 <= status < 300:
                    self.acknowledged.update(fingerprints)
            if 200 <= status < 300:
                return True
            self._abandon.wait(gap)  # Alertmanager's notifier: exponential backoff between retries of one notification
            gap = min(gap * 2, self.backoff_max)
        return False

    # --- what happened ----------------------------------------------------------------------------------------

    def snapshot(self) -> tuple[dict[str, int], set[str], list[Attempt]]:
        with self.lock:
            return dict(self.sent), set(self.acknowledged), list(self.attempts)

    def statuses(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for attempt in self.snapshot()[2]:
            counts[attempt.status] = counts.get(attempt.status, 0) + 1
        return dict(sorted(counts.items()))
