"""Failed authentications per source, in fixed windows: past `limit` failures within `window`, the source is
refused until its window ends (auth.py answers 429 with Retry-After).

In-process, per gunicorn worker: N workers allow up to N × limit failures per window from one source (still
about 20 a minute each, against 256-bit tokens). Bounded in memory: at most `max_sources` are tracked; a new one
evicts the source whose window started first. Sources are the client address as the app sees it (X-Forwarded-For
only from trusted proxies), cut to MAX_SOURCE characters.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import math
import threading

LIMIT = 20
WINDOW = dt.timedelta(minutes=1)
MAX_SOURCES = 10_000
MAX_SOURCE = 100  # an IPv6 address with a zone is far shorter


@dataclasses.dataclass
class _Window:
    started: dt.datetime
    failures: int = 0


class FailureThrottle:
    def __init__(self, *, limit: int = LIMIT, window: dt.timedelta = WINDOW, max_sources: int = MAX_SOURCES):
        self.limit = limit
        self.window = window
        self.max_sources = max_sources
        self._windows: collections.OrderedDict[str, _Window] = collections.OrderedDict()  # oldest window first
        self._lock = threading.Lock()  # gunicorn threads share a worker's throttle

    def __len__(self) -> int:
        return len(self._windows)

    def sources(self) -> list[str]:
        return list(self._windows)

    def retry_after(self, source: str, now: dt.datetime) -> int:
        """Seconds until `source` may try again; 0 when it may now."""
        with self._lock:
            current = self._current(source[:MAX_SOURCE], now)
            if current is None or current.failures < self.limit:
                return 0
            return max(1, math.ceil((current.started + self.window - now).total_seconds()))

    def failed(self, source: str, now: dt.datetime) -> bool:
        """Count one failure of `source`; True when it is the first of its window (the one worth a log line)."""
        source = source[:MAX_SOURCE]
        with self._lock:
            current = self._current(source, now)
            if current is None:
                current = self._windows[source] = _Window(now)
                while len(self._windows) > self.max_sources:
                    self._windows.popitem(last=False)
            current.failures += 1
            return current.failures == 1

    def _current(self, source: str, now: dt.datetime) -> _Window | None:
        """The source's window if it is still open; a closed one is forgotten."""
        found = self._windows.get(source)
        if found is not None and now - found.started >= self.window:
            del self._windows[source]
            return None
        return found
