"""The dispatcher: claims due outbox messages, builds each Message, sends it through its channel, and records
the outcome — sent; failed and retried with exponential backoff and jitter (honouring Retry-After) until its
deadline or its last attempt (delivery.retry.max_attempts); or dead. The retry loop, rate limits and the logging of
outcomes live here, once, for every channel.

Sends to remote services run on a small thread pool, one channel's slow provider never holds up another's
messages, and every send has the channel's own connect/read timeout; the log channel's run on the dispatcher's
thread. Nothing is sent inside a database transaction. Claims and outcomes are write jobs (`ClaimDue`,
`RecordOutcomes`) submitted to the write port: on SQLite they ride in the writer's group transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping


from ..channels.base import Channel, DeliveryError, take_status
from ..config import Config
from ..domain import Message, MessageAlert, NotificationKind, NotificationStatus, Posted, Recipient
from ..store import outbox as store
from ..store.db import read_transaction
from ..store.unpaged import RecordPagedOutcomes
from ..store.write_port import Writes
from . import chat_dispatch as chat
from . import links, paging

log = logging.getLogger("receiver.delivery")

# A message's result: what was claimed, its outcome, the message built, and the root a threading channel posted.
Sent = tuple[store.Claimed, store.Outcome, Message, Posted | None]


def backoff(attempt: int, retry: Any, *, rng: Callable[[], float] = random.random) -> dt.timedelta:
    """The wait after failed attempt number `attempt` (1-based): initial × 2^(attempt−1), capped at
    max_backoff, spread by ±jitter so that many failed messages do not retry in lockstep."""
    base = min(retry.initial.total_seconds() * 2 ** (attempt - 1), retry.max_backoff.total_seconds())
    spread = base * retry.jitter * (2 * rng() - 1)
    return dt.timedelta(seconds=max(0.0, base + spread))


class TokenBucket:
    """At most `count` sends per `per` seconds, bursts up to `count`. `wait(now)` takes a token and returns 0,
    or returns the seconds until one is free without taking it."""

    def __init__(self, count: float, per: float):
        self.rate = count / per
        self.capacity = max(1.0, count)
        self.tokens = self.capacity
        self.at: float | None = None
        self.lock = threading.Lock()

    def wait(self, now: float) -> float:
        with self.lock:
            if self.at is not None:
                self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


@dataclasses.dataclass
class DispatchResult:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    deferred: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.dead + self.deferred


class Dispatcher:
    def __init__(self, writes: Writes, config: Config, channels: Mapping[str, Channel], *, clock, metrics=None,
                 worker: str, lease: dt.timedelta = dt.timedelta(seconds=120), batch: int = 128, threads: int = 8,
                 rng: Callable[[], float] = random.random):
        self.writes = writes
        self.db = writes.db  # for reads
        self.config = config
        self.channels = dict(channels)
        self.clock = clock
        self.metrics = metrics
        self.worker = worker
        self.lease = lease
        self.batch = batch
        self.rng = rng
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="send")
        self.buckets: dict[str, TokenBucket] = {}
        self._link_key: bytes | None = None
        self._count_schedules(config)

    def _count_schedules(self, config: Config) -> None:
        # Every configured schedule's series exists from the start at 0: an alert on rate() needs no first miss.
        if self.metrics is not None:
            for name in config.schedules:
                self.metrics.oncall_unresolved.labels(schedule=name)

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def configure(self, config: Config, channels: Mapping[str, Channel]) -> None:
        """After a reload: new settings and channels for the next claim (messages in flight finish as they were)."""
        self.config = config
        self.channels = dict(channels)
        self.lease = config.delivery.lease
        self.buckets.clear()
        self._count_schedules(config)

    def run_once(self) -> DispatchResult:
        """Claim what is due now, send it all, record every outcome; returns counts."""
        now = self.clock.now()
        claimed = self.writes.submit(store.ClaimDue(now=now, worker=self.worker, lease=self.lease, limit=self.batch))
        result = DispatchResult()
        if not claimed:
            return result
        with read_transaction(self.db) as conn:
            carried = store.load_alerts(conn, [c.id for c in claimed])
            paged = paging.resolve_batch(conn, self.config, claimed, now)  # whom messages to people reach now
        threads = chat.load_threads(self.db, self.channels, claimed)
        # One group's messages to one channel go out one after another, oldest first (a late first page must
        # not arrive after its escalation); different groups and channels are sent in parallel.
        lanes: dict[tuple[str, str], list[store.Claimed]] = {}
        for item in claimed:  # claimed is sorted by id, i.e. by creation
            lanes.setdefault((item.channel, item.group_key), []).append(item)
        digests = chat.split_digests(lanes, self.channels)
        remote: list[list[store.Claimed]] = []
        local: list[list[store.Claimed]] = []
        for lane in lanes.values():
            (remote if self._waits_on_network(lane[0].channel) else local).append(lane)
        futures = [self.pool.submit(self._send_lane, lane, carried, now, paged, threads) for lane in remote]
        futures += [self.pool.submit(self._send_digest, items, carried, now) for items in digests]
        done = [entry for lane in local for entry in self._send_lane(lane, carried, now, paged, threads)]
        done += [entry for future in futures for entry in future.result()]
        self._record(done, result, paged)
        return result

    def _waits_on_network(self, channel: str) -> bool:
        found = self.channels.get(channel)
        return found is None or found.waits_on_network

    def _send_lane(self, lane: list[store.Claimed], carried, now: dt.datetime, paged: Mapping[int, paging.Paging],
                   threads: chat.Threads) -> list[Sent]:
        done: list[Sent] = []
        thread = chat.LaneThread(threads, self.channels, lane[0])
        for item in lane:
            to = paged.get(item.id)
            message = self.message(item, carried.get(item.id, []), now, to.recipient if to else None)
            if to is not None and to.recipient is None:  # nobody to page: dead, loudly (_record)
                done.append((item, store.Outcome(item.id, NotificationStatus.DEAD.value, False, self.clock.now(),
                                                 error=to.reason), message, None))
                continue
            if thread.enabled:
                message = dataclasses.replace(message, thread=thread.for_message(item))
                if message.kind == NotificationKind.UPDATE.value and message.thread is None:
                    done.append((item, chat.no_thread(item, self.clock.now()), message, None))
                    continue
            outcome, message, posted = self._send(item, message)
            if posted is not None and thread.enabled:
                thread.posted(posted)  # the lane's next messages reply in it
            if to is not None and outcome.attempted:
                outcome = dataclasses.replace(outcome, person=to.person, person_source=to.source)
            done.append((item, outcome, message, posted))
        return done

    def _send_digest(self, items: list[store.Claimed], carried, now: dt.datetime) -> list[Sent]:
        """The repeats of several groups as one message; its outcome is each one's."""
        message = chat.digest_message(items, carried, lambda item, rows: self.message(item, rows, now))
        outcome, message, _ = self._send(items[0], message)
        # One attempt recorded per message digested, each with its own number.
        return [(item, dataclasses.replace(outcome, id=item.id, attempt=item.attempts + 1 if outcome.attempted
                                           else None), message, None) for item in items]

    # --- one message ---------------------------------------------------------------------------------------

    def message(self, item: store.Claimed, rows: list[store.CarriedAlert], now: dt.datetime,
                recipient: Recipient | None = None) -> Message:
        public = self.config.server.public_url
        alerts = tuple(self._message_alert(row, public, now) for row in rows)
        level = item.level or (max((a.level for a in alerts), key=lambda lv: -int(lv[1])) if alerts else "")
        return Message(notification_id=item.id, channel=item.channel, kind=item.kind, level=level,
                       group_key=item.group_key, group_id=item.group_id, alerts=alerts, created_at=item.created_at,
                       attempt=item.attempts + 1, summary_over=self.config.delivery.group_summary_over,
                       receiver_url=public, external_url=rows[0].external_url if rows else "", recipient=recipient)

    def _message_alert(self, row: store.CarriedAlert, public: str | None, now: dt.datetime) -> MessageAlert:
        ack_url = None
        if public and row.status == "firing":
            if self._link_key is None:
                self._link_key = links.link_key(self.writes, now=now)
            token = links.make_token(self._link_key, row.id, expires=now + links.DEFAULT_VALIDITY)
            ack_url = f"{public}/a/{token}"
        return MessageAlert(
            id=row.id, fingerprint=row.fingerprint, alertname=row.alertname, status=row.status, level=row.level,
            severity=row.severity, labels=row.labels or {}, annotations=row.annotations or {},
            starts_at=row.starts_at, ends_at=row.ends_at, generator_url=row.generator_url, acked_by=row.acked_by,
            url=f"{public}/api/v1/alerts/{row.id}" if public else None, ack_url=ack_url)

    def _send(self, item: store.Claimed, message: Message) -> tuple[store.Outcome, Message, Posted | None]:
        now = self.clock.now()
        channel = self.channels.get(item.channel)
        if channel is None:
            return store.Outcome(item.id, NotificationStatus.DEAD.value, False, now,
                                 error=f'channel "{item.channel}" is no longer configured'), message, None
        if not message.alerts:
            return store.Outcome(item.id, NotificationStatus.DEAD.value, False, now,
                                 error="the alerts of this message no longer exist (retention)"), message, None
        limit = channel.rate_limit
        if limit is not None:
            bucket = self.buckets.setdefault(item.channel, TokenBucket(limit.count, limit.per))
            wait = bucket.wait(time.monotonic())
            if wait > 0:  # over the provider's rate: try again when a token is free, no attempt counted
                return store.Outcome(item.id, self._open_status(item), False, now,
                                     next_attempt_at=now + dt.timedelta(seconds=wait)), message, None
        started = time.perf_counter()
        take_status()  # forget what an earlier send on this thread was answered
        try:
            posted = channel.send(message)
        except DeliveryError as exc:
            return self._failure(item, now, exc, started), message, None
        except Exception as exc:  # a bug in a channel must not kill the dispatcher; retried like a 5xx
            log.exception("channel raised an unexpected error", extra={"channel": item.channel})
            err = DeliveryError(f"unexpected {type(exc).__name__} in channel", retryable=True)
            return self._failure(item, now, err, started), message, None
        return store.Outcome(item.id, NotificationStatus.SENT.value, True, self.clock.now(),
                             duration_ms=_ms(started), attempt=item.attempts + 1, code=take_status()), \
            message, posted if isinstance(posted, Posted) else None

    def _open_status(self, item: store.Claimed) -> str:
        return NotificationStatus.FAILED.value if item.attempts else NotificationStatus.PENDING.value

    def _failure(self, item: store.Claimed, now: dt.datetime, exc: DeliveryError, started: float) -> store.Outcome:
        outcome = self._failed(item, now, exc, started)
        return dataclasses.replace(outcome, attempt=item.attempts + 1, code=exc.code)

    def _failed(self, item: store.Claimed, now: dt.datetime, exc: DeliveryError, started: float) -> store.Outcome:
        attempt = item.attempts + 1
        deadline = item.give_up_at or item.created_at + self.config.delivery.retry.give_up_after
        if not exc.retryable:
            return store.Outcome(item.id, NotificationStatus.DEAD.value, True, now, error=exc.reason,
                                 duration_ms=_ms(started))
        max_attempts = self.config.delivery.retry.max_attempts
        if now >= deadline or (max_attempts is not None and attempt >= max_attempts):
            return store.Outcome(item.id, NotificationStatus.DEAD.value, True, now, duration_ms=_ms(started),
                                 error=f"gave up after {attempt} attempts: {exc.reason}")
        wait = backoff(attempt, self.config.delivery.retry, rng=self.rng)
        if exc.retry_after is not None:
            wait = max(wait, dt.timedelta(seconds=exc.retry_after))
        return store.Outcome(item.id, NotificationStatus.FAILED.value, True, now, next_attempt_at=min(now + wait, deadline),
                             error=exc.reason, duration_ms=_ms(started))

    def _record(self, done: list[Sent], result: DispatchResult,
                paged: Mapping[int, paging.Paging] | None = None) -> None:
        """Every outcome of the batch in one transaction. The alerts' timelines show deliveries by joining the
        outbox at read time (queries.get_alert): no event row per alert and message to write here; only a message
        that reached nobody adds events (and its fallback's messages) to that transaction."""
        notified = {item.id: [a.id for a in message.alerts] for item, outcome, message, _ in done
                    if outcome.status == NotificationStatus.SENT.value
                    and message.kind not in (NotificationKind.RESOLVED.value, NotificationKind.UPDATE.value)}
        job = store.RecordOutcomes(tuple(outcome for _, outcome, _, _ in done), self.worker, notified)
        unreached = [(item, paged[item.id], outcome) for item, outcome, _, _ in done
                     if paged and item.id in paged and paged[item.id].recipient is None]
        unpaged = tuple(paging.unpaged(self.config, item, to, outcome.at) for item, to, outcome in unreached)
        self.writes.submit(chat.chat_job(RecordPagedOutcomes(job, unpaged) if unpaged else job, done, self.channels))
        for (item, to, _), entry in zip(unreached, unpaged):
            log.error("nobody to page", extra={"notification_id": item.id, "channel": item.channel,
                                               "target": to.target, "reason": to.reason,
                                               "fallback": entry.details["fallback"]})
            if self.metrics is not None:
                self.metrics.oncall_unresolved.labels(schedule=to.metric_label).inc()
        for item, outcome, message, _ in done:
            self._log(item, outcome, message, result)

    def _log(self, item: store.Claimed, outcome: store.Outcome, message: Message, result: DispatchResult) -> None:
        extra = {"notification_id": item.id, "channel": item.channel, "kind": item.kind, "alert_level": message.level,
                 "alerts": len(message.alerts), "attempt": item.attempts + 1}
        if message.digest_groups:  # one post for several groups' repeats: each message logs which it rode in
            extra.update(digest_of=message.notification_id, digest_groups=message.digest_groups)
        if not outcome.attempted and outcome.status != NotificationStatus.DEAD.value:
            result.deferred += 1
            return
        if outcome.status == NotificationStatus.SENT.value:
            result.sent += 1
            log.info("notification sent", extra={**extra, "ms": outcome.duration_ms})
        elif outcome.status == NotificationStatus.DEAD.value:
            result.dead += 1
            log.error("notification dead", extra={**extra, "error": outcome.error})
        else:
            result.failed += 1
            log.warning("notification failed, will retry",
                        extra={**extra, "error": outcome.error, "retry_at": outcome.next_attempt_at.isoformat()})
        if self.metrics is not None:
            result_label = "retry" if outcome.status == NotificationStatus.FAILED.value else outcome.status
            self.metrics.notifications.labels(channel=item.channel, result=result_label).inc()


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
