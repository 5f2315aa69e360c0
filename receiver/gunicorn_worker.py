"""serve's gunicorn worker: gthread, with every request read whole by the event loop before a thread takes it.

gthread hands a connection to a thread as soon as it is readable, and the thread then blocks reading the head and
the body: twenty clients sending a header line every 5 s held every thread, and webhooks and /-/healthy timed out.
Here the worker's event loop reads each request without blocking (http_reader.RequestReader): heads within 10 s,
bodies within their deadline, sizes within the route's limit (checked before a body is read, and while a chunked
one arrives). Only a complete request reaches a thread, so a slow or stalled client costs a socket and a buffer,
never a thread. At most one body over 4 MiB is buffered and handled at a time per worker; other large ones wait,
unread (TCP holds them back), up to PARK_TIMEOUT, then get a 503. Refusals are answered from the loop, and every
connection closes lingering without blocking the loop, so a client still sending sees its 413.
"""

from __future__ import annotations

import collections
import errno
import json
import selectors
import socket
import time
from functools import partial
from typing import IO

from gunicorn.workers.gthread import TConn, ThreadWorker

from .http_reader import OVERFLOW_HEADER, Head, Refused, RequestReader

MAX_READING = 2000  # connections being read at once per worker; more are answered 503 at once
LARGE_BODY = 4 * 1024 * 1024  # a body above this needs the worker's one large-body slot
PARK_TIMEOUT = 5.0  # how long a large body waits, unread, for the slot before a 503
LINGER_SECONDS = 2.0  # after the answer: how long, and how much, a closing connection is drained
LINGER_BYTES = 4 * 1024 * 1024
FORM_OR_JSON_LIMIT = 64 * 1024  # bodies of forms and of the JSON API
PLATFORM_LIMIT = 1024 * 1024  # bodies of requests from other platforms (PagerDuty's webhooks)
DEFAULT_WEBHOOK_LIMIT = 64 * 1024 * 1024  # server.max_body_size's default, for an app without a receiver config
WEBHOOK_PATHS = ("/webhook",)
PLATFORM_PATHS = ("/webhooks/", "/integrations/")
_RECV = 256 * 1024


class PrefixedSocket:
    """A client socket whose request was read already: recv() serves its head, then its body (a file), then
    whatever the socket still has. Closing it closes the body file (a spooled temporary file)."""

    def __init__(self, sock: socket.socket, head: bytes, body: IO[bytes]):
        self._sock = sock
        self._head = memoryview(head)
        self._body = body

    def recv(self, size: int, *flags) -> bytes:
        if self._head:
            chunk, self._head = self._head[:size], self._head[size:]
            return bytes(chunk)
        if not self._body.closed:
            chunk = self._body.read(size)
            if chunk:
                return chunk
            self._body.close()
        return self._sock.recv(size, *flags)

    def recv_into(self, buffer, size: int = 0, *flags) -> int:
        chunk = self.recv(size or len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._body.close()
        self._sock.close()

    def __getattr__(self, name):
        return getattr(self._sock, name)


class Reading:
    """A connection whose request the event loop is still reading."""

    def __init__(self, sock, client, server, reader: RequestReader):
        self.sock, self.client, self.server, self.reader = sock, client, server, reader
        self.continued = False
        self.has_slot = False
        self.parked_at: float | None = None


class BoundedThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reading: dict[socket.socket, Reading] = {}
        self.parked: collections.deque[Reading] = collections.deque()
        self.slot_free = True
        self.lingering: dict[socket.socket, tuple[float, int]] = {}

    # --- limits per route --------------------------------------------------------------------------------

    def limit_of(self, head: Head) -> tuple[int, int | None]:
        """(the body limit of this request's route, bytes kept of an oversized body or None to refuse it)."""
        path = head.path
        if head.method == "POST" and (path in WEBHOOK_PATHS or path.startswith("/webhook/")):
            from .store.webhooks import REJECTED_BODY_MAX

            services = getattr(self.wsgi, "extensions", {}).get("alert_receiver")  # absent: another app (bench)
            limit = services.config.server.max_body_size if services is not None else DEFAULT_WEBHOOK_LIMIT
            return limit, REJECTED_BODY_MAX  # the webhook keeps it as a dead letter
        if path.startswith(PLATFORM_PATHS):
            return PLATFORM_LIMIT, None
        return FORM_OR_JSON_LIMIT, None

    # --- accepting and reading -----------------------------------------------------------------------------

    def accept(self, listener):
        if self.cfg.is_ssl:  # TLS is the reverse proxy's job; if configured anyway, gthread's own path
            return super().accept(listener)
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        sock.setblocking(False)
        if len(self.reading) >= MAX_READING:
            self._answer(sock, 503, "overloaded", "too many connections being read; retry", retry_after=True)
            return
        state = Reading(sock, client, listener.getsockname(), RequestReader(time.monotonic(), self.limit_of))
        self.reading[sock] = state
        self.poller.register(sock, selectors.EVENT_READ, partial(self._on_readable, state))

    def _on_readable(self, state: Reading, _sock) -> None:
        try:
            self._read_more(state)
        except Exception:  # a bug here must cost one connection, never the worker and every request in it
            self.log.exception("reading a request failed")
            self._forget(state)
            self._answer(state.sock, 500, "internal_error", "the request could not be read")

    def _read_more(self, state: Reading) -> None:
        try:
            data = state.sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away before its request was whole
            self._forget(state)
            state.sock.close()
            return
        reader = state.reader
        try:
            reader.feed(data, time.monotonic())
        except Refused as refused:
            self._forget(state)
            self._answer(state.sock, refused.status, refused.reason, refused.detail)
            return
        if reader.expects_continue and not state.continued and not reader.complete:
            state.continued = True
            _send_quietly(state.sock, b"HTTP/1.1 100 Continue\r\n\r\n")
        if not state.has_slot and self._is_large(reader):
            if not self.slot_free:
                self._park(state)
                return
            self.slot_free, state.has_slot = False, True
        if reader.complete:
            self._hand_on(state)

    @staticmethod
    def _is_large(reader: RequestReader) -> bool:
        if reader.head is None or reader.overflow:
            return False
        return max(reader.length or 0, reader.received) > LARGE_BODY

    def _park(self, state: Reading) -> None:
        self.poller.unregister(state.sock)
        state.parked_at = time.monotonic()
        self.parked.append(state)

    def _hand_on(self, state: Reading) -> None:
        self._forget(state, handed_on=True)
        reader = state.reader
        conn = TConn(self.cfg, PrefixedSocket(state.sock, reader.request_head(), reader.body_file()), state.client,
                     state.server)
        conn.data_ready = True
        conn.holds_slot = state.has_slot
        self.nr_conns += 1
        self.enqueue_req(conn)

    def _forget(self, state: Reading, *, handed_on: bool = False) -> None:
        if not handed_on:
            state.reader.discard()
        if self.reading.pop(state.sock, None) is not None and state.parked_at is None:
            self.poller.unregister(state.sock)
        if state.has_slot:
            state.has_slot = False
            self._free_slot()

    def _free_slot(self) -> None:
        self.slot_free = True
        while self.parked:
            state = self.parked.popleft()
            if state.sock in self.reading:
                state.parked_at, state.has_slot, self.slot_free = None, True, False
                self.poller.register(state.sock, selectors.EVENT_READ, partial(self._on_readable, state))
                return

    # --- the loop: gthread's, less its blocking close, and a stop that lets requests being read finish -------

    def run(self):
        self.poller.register(self.method_queue.fileno(), selectors.EVENT_READ, self.method_queue.run_callbacks)
        self.set_accept_enabled(True)
        while self.alive:
            self.notify()
            can_accept = self.nr_conns < self.worker_connections  # requests in threads; those being read wait
            if can_accept != self._accepting:
                self.set_accept_enabled(can_accept)
            self.wait_for_and_dispatch_events(timeout=1.0)
            if not self.is_parent_alive():
                break
            self.murder_keepalived()
            self.murder_pending()
        # Stopping: accept nothing new; a request already arriving is read and answered, within its deadline
        # and graceful_timeout, like one already in a thread.
        self.set_accept_enabled(False)
        graceful_timeout = time.monotonic() + self.cfg.graceful_timeout
        while (self.nr_conns > 0 or self.reading or self.lingering) and time.monotonic() < graceful_timeout:
            self.notify()
            self.wait_for_and_dispatch_events(timeout=0.5)
            self.murder_keepalived()
            self.murder_pending()
        self.murder_keepalived(force=True)
        self.tpool.shutdown(wait=False)
        self.poller.close()
        self.method_queue.close()
        for listener in self.sockets:
            listener.close()

    # --- answering, closing and timing out -----------------------------------------------------------------

    def _answer(self, sock, status: int, reason: str, detail: str, retry_after: bool = False) -> None:
        body = json.dumps({"error": reason, "detail": detail}).encode()
        extra = b"Retry-After: 5\r\n" if retry_after else b""
        head = (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n"
                % (status, _PHRASES.get(status, b"Error"), len(body), extra))
        _send_quietly(sock, head + body)
        self._linger(sock)

    def _linger(self, sock) -> None:
        """Half-close and drain what the client still sends, from the loop: a client still writing its body
        reads the answer instead of a reset, and no thread or loop turn waits on it."""
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        self.lingering[sock] = (time.monotonic() + LINGER_SECONDS, LINGER_BYTES)
        self.poller.register(sock, selectors.EVENT_READ, self._drain)

    def _drain(self, sock) -> None:
        deadline, budget = self.lingering[sock]
        try:
            data = sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data or len(data) >= budget:
            self._close_lingering(sock)
        else:
            self.lingering[sock] = (deadline, budget - len(data))

    def _close_lingering(self, sock) -> None:
        del self.lingering[sock]
        self.poller.unregister(sock)
        sock.close()

    def finish_request(self, conn, fs):
        if getattr(conn, "holds_slot", False):
            conn.holds_slot = False
            self._free_slot()
        sock = None
        if isinstance(conn.sock, PrefixedSocket):
            conn.sock._body.close()
            sock = conn.sock._sock
        result = fs.result() if sock is not None and not fs.cancelled() and fs.exception() is None else None
        if sock is None or result:  # gthread's own connections, and kept-alive ones
            return super().finish_request(conn, fs)
        self.nr_conns -= 1
        sock.setblocking(False)
        self._linger(sock)

    def murder_pending(self):
        super().murder_pending()
        now = time.monotonic()
        for state in [s for s in self.reading.values() if s.parked_at is None and now > s.reader.deadline()]:
            self._forget(state)
            what = "head" if state.reader.head is None else "body"
            self._answer(state.sock, 408, "request_timeout", f"the request {what} did not arrive in time")
        while self.parked and now - self.parked[0].parked_at > PARK_TIMEOUT:
            state = self.parked.popleft()
            state.parked_at = None
            self.reading.pop(state.sock, None)
            state.reader.discard()
            self._answer(state.sock, 503, "overloaded", "too many large bodies at once; retry", retry_after=True)
        for sock in [s for s, (deadline, _) in self.lingering.items() if now > deadline]:
            self._close_lingering(sock)


def _send_quietly(sock, data: bytes) -> None:
    """A short answer on a non-blocking socket: it fits the send buffer; a client that is gone is no error."""
    try:
        sock.send(data)
    except OSError:
        pass


_PHRASES = {400: b"Bad Request", 500: b"Internal Server Error", 408: b"Request Timeout", 413: b"Content Too Large", 431: b"Request Header Fields Too "
            b"Large", 501: b"Not Implemented", 503: b"Service Unavailable"}
__all__ = ["BoundedThreadWorker", "OVERFLOW_HEADER", "PrefixedSocket"]
