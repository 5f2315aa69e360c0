"""GET /api/v1/alerts/export.csv and /api/v1/alerts/export (read): the filtered history, streamed.

`format` is csv (the default), json (one array) or ndjson; the filters are those of GET /api/v1/alerts.
The query runs before the response starts, so an unavailable database is a 503, not a truncated file; an error
after that aborts the chunked response without its final chunk, which clients report as an incomplete transfer.

A sync gunicorn worker (`gunicorn -k sync receiver.wsgi:app`) is killed when a request runs longer than `timeout`;
`serve`'s threaded workers are not. When the app has a heartbeat (a callable in
`app.extensions["alert_receiver_heartbeat"]`, set per worker by gunicorn_conf's post_worker_init to `worker.notify`),
the export calls it after every batch, so that a long export that makes progress lives on under either.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterator

from flask import Blueprint, Response, current_app, request

from ..domain import Role
from ..statistics.read_export import FORMATS, Export
from ..store.db import is_unavailable
from .auth import require
from .context import services
from .api_errors import ApiError
from .params import ALERT_FILTER_PARAMS, alert_filter, check_known

bp = Blueprint("export_api", __name__, url_prefix="/api/v1")
log = logging.getLogger("receiver.export")

HEARTBEAT_KEY = "alert_receiver_heartbeat"


@bp.get("/alerts/export.csv")
@require(Role.READ)
def export_csv():
    return _export("csv")


@bp.get("/alerts/export")
@require(Role.READ)
def export():
    return _export("csv")


def _export(default_format: str):
    args = request.args
    check_known(args, ALERT_FILTER_PARAMS + ("format",))
    fmt = args.get("format", default_format)
    if fmt not in FORMATS:
        raise ApiError(400, "bad_parameter", f"format: {fmt!r} is not one of {', '.join(FORMATS)}",
                       parameter="format")
    flt = alert_filter(args)
    try:
        export = Export(services().db, flt, fmt, budget=services().config.database.query_timeout.total_seconds())
    except Exception as exc:
        if is_unavailable(exc):
            raise ApiError(503, "storage_unavailable", "the database is unavailable or locked; retry",
                           headers={"Retry-After": "5"}) from None
        raise
    heartbeat = current_app.extensions.get(HEARTBEAT_KEY)
    extension = "json" if fmt == "json" else fmt
    name = f"alerts-{services().clock.now().strftime('%Y%m%dT%H%M%SZ')}.{extension}"
    resp = Response(_body(export, heartbeat), mimetype=None, content_type=FORMATS[fmt])
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


class _Body:
    """The response iterator: encodes to UTF-8, beats the worker's heartbeat, logs the outcome, and closes the
    export (its database connection) when the client goes away."""

    def __init__(self, export: Export, heartbeat: Callable[[], None] | None):
        self.export = export
        self.heartbeat = heartbeat
        self.started = time.monotonic()
        self.chunks: Iterator[str] = iter(export)
        self.done = False

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        try:
            chunk = next(self.chunks)
        except StopIteration:
            self.done = True
            raise
        except Exception:
            log.exception("export failed after the response started; the download is incomplete",
                          extra={"rows": self.export.rows})
            raise
        if self.heartbeat is not None:
            self.heartbeat()
        return chunk.encode("utf-8")

    def close(self) -> None:
        self.export.close()
        log.info("export finished" if self.done else "export stopped by the client",
                 extra={"rows": self.export.rows, "seconds": round(time.monotonic() - self.started, 3)})


def _body(export: Export, heartbeat: Callable[[], None] | None) -> _Body:
    return _Body(export, heartbeat)
