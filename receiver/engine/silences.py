"""Ack silences (routes with `ack_silence: true`): the engine's side of the intents lifecycle.ack records.

One pass: retire the silences whose ack ended (one set-based statement each way), create the pending ones, expire
the ones due — every Alertmanager call made outside any transaction, each outcome recorded after it in a short one.
A claim (a lease on next_attempt_at) keeps a second engine off the same row; a failed call is retried with backoff
until it succeeds or the silence is no longer wanted. At-least-once: an engine that dies between Alertmanager's
answer and the record leaves one silence behind, which ends by itself at its endsAt.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging


from ..alertmanager_api import AlertmanagerClient, AlertmanagerError
from ..config import Config
from ..store import ack_silences as silence_store
from ..store.write_port import Writes

log = logging.getLogger("receiver.engine.silences")

LEASE = dt.timedelta(minutes=1)
BATCH = 50
FIRST_RETRY = dt.timedelta(seconds=5)
MAX_RETRY = dt.timedelta(minutes=5)
CREATED_BY = "alert-receiver"


@dataclasses.dataclass
class SilenceResult:
    created: int = 0
    expired: int = 0
    cancelled: int = 0
    retries: int = 0


def retry_delay(attempts: int) -> dt.timedelta:
    return min(FIRST_RETRY * 2 ** min(attempts, 16), MAX_RETRY)


def run_once(writes: Writes, config: Config, client: AlertmanagerClient, now: dt.datetime) -> SilenceResult:
    result = SilenceResult()
    with writes.transaction() as conn:
        result.cancelled, _ = silence_store.retire_unwanted(conn, now=now)
        to_create = silence_store.claim_due(conn, silence_store.PENDING, now=now, lease=LEASE, limit=BATCH)
        to_expire = silence_store.claim_due(conn, silence_store.EXPIRING, now=now, lease=LEASE, limit=BATCH)
    for row in to_create:
        try:
            silence_id = client.create_silence(
                row.alertmanager, row.labels, starts_at=now, ends_at=max(row.ends_at, now + FIRST_RETRY),
                created_by=CREATED_BY, comment=f"acknowledged in alert-receiver (alert {row.alert_id}); "
                                               "expired by it when the ack ends")
        except AlertmanagerError as exc:
            _retry(writes, row, now, exc, result)
            continue
        with writes.transaction() as conn:
            silence_store.mark_created(conn, row.id, silence_id, now=now)
        result.created += 1
        log.info("silence created", extra={"alert_id": row.alert_id, "alertmanager": row.alertmanager,
                                           "silence_id": silence_id})
    for row in to_expire:
        try:
            client.expire_silence(row.alertmanager, row.silence_id)
        except AlertmanagerError as exc:
            _retry(writes, row, now, exc, result)
            continue
        with writes.transaction() as conn:
            silence_store.mark_expired(conn, row.id, now=now)
        result.expired += 1
        log.info("silence expired", extra={"alert_id": row.alert_id, "alertmanager": row.alertmanager,
                                           "silence_id": row.silence_id})
    return result


def _retry(writes: Writes, row: silence_store.Claimed, now: dt.datetime, exc: AlertmanagerError,
           result: SilenceResult) -> None:
    delay = retry_delay(row.attempts)
    with writes.transaction() as conn:
        silence_store.mark_retry(conn, row.id, now=now, delay=delay, error=str(exc))
    result.retries += 1
    log.warning("alertmanager silence call failed; retrying", extra={"alert_id": row.alert_id, "error": str(exc),
                                                                     "retry_in_s": delay.total_seconds()})

