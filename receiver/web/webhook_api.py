"""POST /webhook and /webhook/<name>: authenticate, bound, parse, prepare, submit the write, answer after commit.

Status codes follow Alertmanager's retry rules: it retries 5xx and network errors within a round, and sends the
same body again every group_interval after a 4xx. So a 4xx is only for input that can never succeed; anything a
retry could fix (storage down or locked, overload) is a 503 with Retry-After. Every refused body is kept as a
dead letter with its reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from flask import Blueprint, jsonify, request

from .. import payload as payload_mod
from ..domain import Role
from ..engine.ingest import prepare
from ..engine.ingest_job import IngestSnapshot
from ..http_reader import OVERFLOW_HEADER
from ..store import webhooks as webhook_store
from ..store.db import is_unavailable
from .auth import require
from .context import services
from .api_errors import ApiError

log = logging.getLogger("receiver.webhook")
bp = Blueprint("webhook", __name__)

RETRY_AFTER_SECONDS = "5"
_READ_CHUNK = 1024 * 1024


@bp.after_request
def _count(response):
    services().metrics.webhook_requests.labels(code=str(response.status_code)).inc()
    return response


@bp.post("/webhook")
@bp.post("/webhook/<name>")
@require(Role.WEBHOOK)
def receive(name: str = ""):
    """receive → parse → prepare → submit → answer."""
    svc = services()
    started = time.perf_counter()
    _refuse_by_headers(name)
    big = (request.content_length or 0) > svc.large_body_bytes
    if big and not svc.large_body_gate.acquire(timeout=2.0):
        raise ApiError(503, "overloaded", "too many large webhooks at once; retry", headers={"Retry-After": RETRY_AFTER_SECONDS})
    try:
        body = _read_within_limit(name)
        try:
            parsed = payload_mod.parse(body)
        except payload_mod.PayloadError as exc:
            return _reject(exc.status, exc.reason, exc.message, body=body, size=len(body), source=name, path=exc.path)
        now = svc.clock.now()
        prepared = prepare(parsed, config=svc.config, now=now, source=name)  # outside any lock
        result = _submit(IngestSnapshot.of(prepared, body), name)  # returns once committed
    finally:
        if big:
            svc.large_body_gate.release()
    _count_ingest(parsed, result, name, started)
    _prune_raw_bodies(now)
    return jsonify({"status": "ok", "alerts": len(parsed.alerts), "truncated_alerts": parsed.truncated_alerts,
                    **{k: v for k, v in sorted(result.outcomes.items())}})


def _refuse_by_headers(name: str) -> None:
    """Refuse, as a dead letter, what the headers alone say can never succeed: not JSON, or over the size limit."""
    limit = services().config.server.max_body_size
    length = request.content_length
    content_type = request.mimetype or ""
    if content_type != "application/json":
        body, size = _read_bounded(min(limit, webhook_store.REJECTED_BODY_MAX))
        _reject(415, "unsupported_media_type", f"Content-Type must be application/json, got {content_type or 'none'!r}",
                body=body, size=max(size, length or 0), source=name)
    cut_at = request.headers.get(OVERFLOW_HEADER, "")
    if cut_at.isdigit():  # serve's reader found the body over its limit and handed on only its first bytes
        body, _ = _read_bounded(webhook_store.REJECTED_BODY_MAX)
        _reject(413, "body_too_large", f"{cut_at} bytes or more is over the {limit}-byte limit "
                "(server.max_body_size)", body=body, size=int(cut_at), source=name)
    if length is not None and length > limit:
        body, _ = _read_bounded(webhook_store.REJECTED_BODY_MAX)
        _reject(413, "body_too_large", f"{length} bytes is over the {limit}-byte limit (server.max_body_size)",
                body=body, size=length, source=name)


def _read_within_limit(name: str) -> bytes:
    limit = services().config.server.max_body_size
    body, size = _read_bounded(limit + 1)
    if size > limit:
        _reject(413, "body_too_large", f"over the {limit}-byte limit (server.max_body_size)", body=body, size=size,
                source=name)
    return body


def _submit(job: IngestSnapshot, name: str):
    try:
        return services().writes.submit(job)
    except Exception as exc:
        if is_unavailable(exc):
            log.warning("storage unavailable, answering 503", extra={"error": type(exc).__name__, "source": name})
            raise ApiError(503, "storage_unavailable", "the database is unavailable or locked; retry",
                           headers={"Retry-After": RETRY_AFTER_SECONDS}) from None
        raise


def _count_ingest(parsed, result, name: str, started: float) -> None:
    m = services().metrics
    for outcome, count in result.outcomes.items():
        m.alerts_ingested.labels(result=outcome).inc(count)
    if parsed.truncated_alerts:
        m.truncated_alerts.inc(parsed.truncated_alerts)
        log.info("webhook truncated by Alertmanager", extra={"truncated_alerts": parsed.truncated_alerts, "source": name})
    if result.unknown_severities:
        m.unknown_severity.inc(sum(result.unknown_severities.values()))
        log.warning("unknown severity, default level used",
                    extra={"severities": ",".join(sorted(result.unknown_severities)), "source": name})
    m.ingest_duration.observe(time.perf_counter() - started)
    for seconds in result.resolve_seconds:  # MTTR of the occurrences Alertmanager resolved
        m.time_to_resolve.observe(max(0.0, seconds))


def _prune_raw_bodies(now) -> None:
    """Raw bodies are kept retention.raw_bodies_days; each process prunes at most once an hour, after its answer
    is committed, in its own short transaction (an indexed range delete)."""
    svc = services()
    if svc.last_body_prune is not None and now - svc.last_body_prune < svc.body_prune_every:
        return
    svc.last_body_prune = now
    cutoff = now - dt.timedelta(days=svc.config.retention.raw_bodies_days)
    try:
        with svc.writes.transaction() as conn:
            pruned = webhook_store.prune_bodies(conn, older_than=cutoff)
        if pruned:
            log.info("pruned raw webhook bodies", extra={"pruned": pruned, "older_than": cutoff.isoformat()})
    except Exception as exc:  # pruning is housekeeping: never fail a committed webhook for it
        log.warning("could not prune raw webhook bodies", extra={"error": type(exc).__name__})


def _read_bounded(limit: int) -> tuple[bytes, int]:
    """Read at most `limit` bytes of the body; return them and how many bytes were seen in all (up to limit+1)."""
    chunks = []
    seen = 0
    stream = request.stream
    while seen <= limit:
        chunk = stream.read(min(_READ_CHUNK, limit + 1 - seen))
        if not chunk:
            break
        chunks.append(chunk)
        seen += len(chunk)
    return b"".join(chunks)[:limit], seen


def _reject(status: int, reason: str, detail: str, *, body: bytes, size: int, source: str, path: str = ""):
    svc = services()
    svc.metrics.webhook_rejected.labels(reason=reason).inc()
    dead_letter_id = None
    try:
        with svc.writes.transaction() as conn:
            dead_letter_id = webhook_store.record_rejection(
                conn, body=body, size=size, source=source, status_code=status, reason=reason, detail=detail,
                content_type=request.content_type or "", now=svc.clock.now(),
                keep_at_most=svc.config.retention.rejected_max)
    except Exception as exc:  # the refusal stands even if the dead letter cannot be written
        log.error("could not record rejected webhook", extra={"error": type(exc).__name__, "reason": reason})
    log.info("webhook rejected", extra={"status": status, "reason": reason, "detail": detail[:300], "source": source,
                                        "dead_letter_id": dead_letter_id})
    extra = {"path": path} if path else {}
    raise ApiError(status, reason, detail, dead_letter_id=dead_letter_id, **extra)
