"""Hostile HTTP clients for the #15 findings 2-4: slow connections that hold a server's threads, huge bodies sent
on the fly, and the RSS of serve's gunicorn workers while they arrive. Everything is bounded in time; 127.0.0.1 only.
"""

from __future__ import annotations

import errno
import os
import resource
import selectors
import socket
import threading
import time
import urllib.parse
from typing import NamedTuple

# --- slow clients -------------------------------------------------------------------------------------------

SLOW_BODY_LENGTH = 100_000  # what the slow-body connections announce; they never send that much


class SlowConn(NamedTuple):
    kind: str  # "header" or "body"
    sock: socket.socket
    opened_at: float  # monotonic; for "body" the headers were complete at this moment


def raise_nofile(needed: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE to fit `needed` more descriptors (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard if hard != resource.RLIM_INFINITY else needed + 1024, max(soft, needed + 1024))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class SlowClients:
    """N slow-header and M slow-body connections to one server, serviced by a single background thread.

    Slow header: the request line and Host, then one more header line every `interval` seconds (slowloris).
    Slow body: complete headers announcing SLOW_BODY_LENGTH bytes, then a few bytes every `interval` seconds, so an
    idle timeout alone never fires: only a deadline on the whole header or body read ends them. Sends never block
    (a socket whose buffer is full is skipped that round). Records when the server closed each one (EOF or reset).
    Stops by itself after `max_duration` seconds; `close()` ends it sooner.
    """

    def __init__(self, host: str, port: int, *, interval: float = 2.0, max_duration: float = 120.0,
                 path: str = "/webhook"):
        self.host, self.port, self.path = host, port, path
        self.interval = interval
        self.max_duration = max_duration
        self.conns: list[SlowConn] = []
        self.closed_at: dict[int, float] = {}  # index in conns → monotonic time the server closed it
        self.answers: dict[int, bytes] = {}  # index in conns → first bytes the server sent (e.g. a 408), if any
        self.send_errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self, headers: int, bodies: int) -> "SlowClients":
        """Open the connections (each connect bounded by 5 s) and start the background thread."""
        raise_nofile(headers + bodies)
        request_line = f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
        body_head = request_line + (f"Content-Type: application/json\r\nContent-Length: {SLOW_BODY_LENGTH}\r\n\r\n"
                                    "{").encode()
        for kind, count, first in (("header", headers, request_line), ("body", bodies, body_head)):
            for _ in range(count):
                self.conns.append(self._connect(kind, first))
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._thread.start()
        return self

    def _connect(self, kind: str, first: bytes) -> SlowConn:
        sock = socket.create_connection((self.host, self.port), timeout=5)
        sock.sendall(first)  # a few dozen bytes: always fits the socket buffer
        sock.setblocking(False)
        return SlowConn(kind, sock, time.monotonic())

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        for i, conn in enumerate(self.conns):
            selector.register(conn.sock, selectors.EVENT_READ, i)
        deadline = time.monotonic() + self.max_duration
        next_send, line = time.monotonic() + self.interval, 0
        try:
            while not self._stop.is_set() and time.monotonic() < deadline and selector.get_map():
                for key, _ in selector.select(timeout=min(0.2, max(0.0, next_send - time.monotonic()))):
                    self._readable(selector, key.data)
                if time.monotonic() >= next_send:
                    line += 1
                    self._send_round(selector, line)
                    next_send += self.interval
        finally:
            selector.close()
            for conn in self.conns:
                conn.sock.close()

    def _readable(self, selector: selectors.BaseSelector, i: int) -> None:
        """Keep what the server said; an EOF or a reset means it closed the connection."""
        conn = self.conns[i]
        try:
            data = conn.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.answers.setdefault(i, data[:200])
            return
        self.closed_at[i] = time.monotonic()
        selector.unregister(conn.sock)

    def _send_round(self, selector: selectors.BaseSelector, line: int) -> None:
        for key in list(selector.get_map().values()):
            conn = self.conns[key.data]
            data = f"X-Slow-{line}: 1\r\n".encode() if conn.kind == "header" else b"  "
            try:
                conn.sock.send(data)
            except BlockingIOError:
                pass  # the server is not reading and the buffer is full: skip this round, never block
            except OSError:
                self.send_errors += 1  # closed under us; the read side records when

    def open_count(self, kind: str | None = None) -> int:
        """Connections the server has not closed (yet)."""
        return sum(1 for i, c in enumerate(self.conns) if (kind is None or c.kind == kind) and i not in self.closed_at)

    def close_delays(self, kind: str) -> list[float | None]:
        """Seconds from opening (headers complete, for "body") to the server's close; None: still open."""
        return [self.closed_at[i] - c.opened_at if i in self.closed_at else None
                for i, c in enumerate(self.conns) if c.kind == kind]

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for conn in self.conns:
            conn.sock.close()

    def __enter__(self) -> "SlowClients":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- huge bodies, streamed ----------------------------------------------------------------------------------

_BLOCK = 256 * 1024


class StreamResult(NamedTuple):
    status: int | None  # None: no answer (closed, reset or deadline)
    sent_before_answer: int  # body bytes sent when the status line arrived (all that were sent, without one)
    elapsed: float
    head: bytes  # the answer's status line and headers, as far as read


def _pieces(total: int, prefix: bytes, fill: bytes):
    """`total` body bytes: `prefix`, then `fill` repeated; a block reused, never the whole body in memory."""
    block = (fill * (_BLOCK // len(fill) + 1))[:_BLOCK]
    head = prefix[:total]
    if head:
        yield head
    left = total - len(head)
    while left > 0:
        n = min(left, _BLOCK)
        yield block if n == _BLOCK else block[:n]
        left -= n


def _framed(total: int, prefix: bytes, fill: bytes, chunked: bool):
    for piece in _pieces(total, prefix, fill):
        yield (b"%x\r\n" % len(piece) + piece + b"\r\n", len(piece)) if chunked else (piece, len(piece))
    if chunked:
        yield b"0\r\n\r\n", 0


class _Answer:
    """The reader thread's view of the connection: the answer's head, and how much was sent when it came."""

    def __init__(self):
        self.sent = 0
        self.sent_at_answer: int | None = None
        self.head = b""
        self.status: int | None = None
        self.done = threading.Event()


def _read_answer(sock: socket.socket, answer: _Answer, deadline: float) -> None:
    buf = b""
    try:
        while time.monotonic() < deadline and b"\r\n\r\n" not in buf and len(buf) < 65536:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            buf += data
            if answer.status is None and b"\r\n" in buf:
                answer.sent_at_answer = answer.sent
                parts = buf.split(b"\r\n", 1)[0].split()
                answer.status = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else -1
    except OSError:
        pass  # reset: whatever arrived before it is kept
    finally:
        answer.head = buf.split(b"\r\n\r\n", 1)[0]
        answer.done.set()


def stream_body(url: str, total_bytes: int, chunked: bool, path: str, headers: dict[str, str] | None = None, *,
                prefix: bytes = b"", fill: bytes = b"a", timeout: float = 60.0,
                rate: float | None = None) -> StreamResult:
    """POST a `total_bytes` body generated on the fly over a raw socket, reading the answer concurrently.

    Sending stops as soon as the status line arrives, or when the server stops reading (EPIPE, ECONNRESET), or at
    the deadline. `rate` (bytes/s) paces the body so that concurrent bodies overlap. Returns a StreamResult:
    (status, bytes sent before the answer, elapsed seconds, answer head).
    """
    parts = urllib.parse.urlsplit(url)
    started = time.monotonic()
    deadline = started + timeout
    sock = socket.create_connection((parts.hostname, parts.port), timeout=min(5.0, timeout))
    sock.settimeout(0.5)  # every send and recv returns within 0.5 s, so both loops see the deadline
    answer = _Answer()
    reader = threading.Thread(target=_read_answer, args=(sock, answer, deadline), daemon=True)
    try:
        sock.sendall(_request_head(parts.hostname, parts.port, path, total_bytes, chunked, headers or {}))
        reader.start()
        _send_body(sock, answer, _framed(total_bytes, prefix, fill, chunked), deadline, rate, started)
        answer.done.wait(max(0.0, deadline - time.monotonic()))
    finally:
        _close(sock, reader)
    sent = answer.sent_at_answer if answer.sent_at_answer is not None else answer.sent
    return StreamResult(answer.status, sent, time.monotonic() - started, answer.head)


def _request_head(host: str, port: int, path: str, total: int, chunked: bool, headers: dict[str, str]) -> bytes:
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(total)}
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close",
             *(f"{k}: {v}" for k, v in {**headers, **framing}.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _send_body(sock: socket.socket, answer: _Answer, frames, deadline: float, rate: float | None,
               started: float) -> None:
    """Send frame after frame until the answer comes, the server stops reading, or the deadline."""
    for frame, body_bytes in frames:
        view = memoryview(frame)
        while view:
            if answer.status is not None or answer.done.is_set() or time.monotonic() >= deadline:
                return
            try:
                view = view[sock.send(view):]
            except socket.timeout:
                continue  # the server is not reading just now: look at the answer and the deadline again
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.ECONNRESET):
                    return  # the server stopped reading
                raise
        answer.sent += body_bytes
        if rate:
            _pace(answer.sent, rate, started, deadline)


def _pace(sent: int, rate: float, started: float, deadline: float) -> None:
    """Hold back until `sent` bytes are due at `rate` (a throttle, not a wait for state)."""
    ahead = started + sent / rate - time.monotonic()
    if ahead > 0:
        time.sleep(min(ahead, max(0.0, deadline - time.monotonic())))


def _close(sock: socket.socket, reader: threading.Thread) -> None:
    """Wake a reader still blocked in recv (shutdown), let it finish, then close."""
    if reader.is_alive():
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already reset by the server
        reader.join(2)
    sock.close()


# --- RSS of serve's workers ---------------------------------------------------------------------------------


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None


def parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # the command name may hold spaces and parentheses: fields start after the last ')'
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _status_kib(pid: int, field: bytes) -> int | None:
    """A /proc/<pid>/status field given in kB (VmRSS, VmHWM), in bytes; None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(field + b":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _vm_rss(pid: int) -> int | None:
    return _status_kib(pid, b"VmRSS")


def reset_peak(pid: int) -> bool:
    """Reset the kernel's peak RSS (VmHWM) of `pid` to its current RSS; False when not allowed or gone."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker_pids(serve_pid: int) -> list[int]:
    """serve's gunicorn workers: its children running serve's own command line (the engine and the writer run
    other ones)."""
    own = _cmdline(serve_pid)
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    return sorted(p for p in pids if parent_pid(p) == serve_pid and _cmdline(p) == own)


def rss_of_tree(pid: int) -> dict[int, int]:
    """RSS in bytes of each gunicorn worker of the serve process `pid`: {worker pid: bytes}."""
    out = {}
    for worker in worker_pids(pid):
        rss = _vm_rss(worker)
        if rss is not None:
            out[worker] = rss
    return out


class RssSampler:
    """Samples every worker's RSS every `interval` seconds in a thread: the baseline (first sample) and the max.

    The kernel's own peak (VmHWM, reset at the start) is taken too when it may be reset, so a peak shorter than
    `interval` is not missed. A context manager; stops by itself after `max_duration`. `growth()` → {pid: max -
    baseline} in bytes."""

    def __init__(self, serve_pid: int, *, interval: float = 0.05, max_duration: float = 120.0):
        self.serve_pid = serve_pid
        self.interval = interval
        self.max_duration = max_duration
        self.baseline: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> "RssSampler":
        self._hwm = {pid: reset_peak(pid) for pid in worker_pids(self.serve_pid)}
        self._sample()  # the baseline before anything is sent
        self._thread.start()
        return self

    def _sample(self) -> None:
        for pid, rss in rss_of_tree(self.serve_pid).items():
            self.baseline.setdefault(pid, rss)
            self.peak[pid] = max(self.peak.get(pid, 0), rss)
        self.samples += 1

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_duration
        while not self._stop.wait(self.interval) and time.monotonic() < deadline:
            self._sample()

    def stop(self) -> "RssSampler":
        self._stop.set()
        self._thread.join(5)
        self._sample()
        for pid, reset in self._hwm.items():
            peak = _status_kib(pid, b"VmHWM") if reset else None
            if peak is not None and pid in self.peak:
                self.peak[pid] = max(self.peak[pid], peak)
        return self

    def growth(self) -> dict[int, int]:
        return {pid: self.peak[pid] - base for pid, base in self.baseline.items()}

    def max_growth(self) -> int:
        return max(self.growth().values(), default=0)

    def __enter__(self) -> "RssSampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"
