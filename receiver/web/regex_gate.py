"""Requests that filter with regexes (`match=` with `=~` or `!~`) take turns, one at a time per worker process.

Such a read tests every candidate row in a Python callback that holds the GIL (SQLite's REGEXP) or keeps a
connection busy (PostgreSQL's `~`). RE2 makes each test linear and database.query_timeout bounds each read, but
ten of them at once would still keep every thread of a worker busy and starve its webhooks. One at a time, the
others wait (no CPU) up to the query budget, then answer 503 `busy`. A streamed answer (an export) holds the gate
until its last byte is produced or the response is closed, whichever comes first; any other until it is made.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterable, Iterator

from flask import Flask, g, request

from .context import services
from .api_errors import ApiError

_HELD = "alert_receiver_regex_gate_held"


def has_regex_matcher(args) -> bool:
    return any("=~" in value or "!~" in value for value in args.getlist("match"))


def register(app: Flask) -> None:
    gate = threading.BoundedSemaphore(1)

    def release() -> None:
        if g.pop(_HELD, False):
            gate.release()

    @app.before_request
    def _take_turn():
        if request.method != "GET" or not has_regex_matcher(request.args):
            return None
        budget = services().config.database.query_timeout.total_seconds()
        if not gate.acquire(timeout=budget):
            raise ApiError(503, "busy", "other regex-filtered reads are running; retry", headers={"Retry-After": "5"})
        g.setdefault(_HELD, True)
        return None

    @app.after_request
    def _release_when_done(response):
        if not g.pop(_HELD, False):
            return response
        if not response.is_streamed:
            gate.release()
            return response
        once = _once(gate.release)
        response.response = _releasing(response.response, once)
        response.call_on_close(once)
        return response

    @app.teardown_request
    def _release_on_error(_exc):
        release()


def _once(action: Callable[[], None]) -> Callable[[], None]:
    done = threading.Lock()

    def run() -> None:
        if done.acquire(blocking=False):
            action()
    return run


def _releasing(body: Iterable[bytes], release: Callable[[], None]) -> Iterator[bytes]:
    try:
        yield from body
    finally:
        release()
