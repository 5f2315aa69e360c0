"""Reading one HTTP/1.1 request off a socket without a thread: head, then body, within limits and deadlines.

A pure state machine (no socket, no clock of its own): the worker's event loop feeds it the bytes it receives and
asks it for deadlines. It knows the request's framing (Content-Length or chunked) and its route's limit before
reading the body, so a body that is too large is refused before it is read, and a chunked one as soon as it
crosses the limit. A body is spooled to a temporary file past SPOOL_OVER, so reading one costs no memory: a
chunked body that turns out too large (its size unknown until then) was never held. When the request is complete
it hands back one plain request: the head as the client sent it, less the framing (`Transfer-Encoding`, `Expect`),
plus `Content-Length` of the body it holds, and that body as a file.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from typing import IO, Callable

MAX_HEAD = 64 * 1024  # request line and headers
HEAD_TIMEOUT = 10.0  # seconds from the connection's first moment to the end of its head
BODY_TIMEOUT = 30.0  # seconds for a body, plus BODY_SECONDS_PER_MIB for each MiB it declares or sends
BODY_SECONDS_PER_MIB = 1.0
# Set by the reader when a body was over its limit and only its first bytes are handed on (see web/webhook_api.py); a
# client's own header of this name is always removed.
OVERFLOW_HEADER = "X-Alert-Receiver-Body-Overflow"
_MIB = 1024 * 1024
SPOOL_OVER = _MIB  # body bytes held in memory; the rest goes to a temporary file
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?")


class Refused(Exception):
    """Answer `status` with `reason` and close: the request cannot be read as it stands."""

    def __init__(self, status: int, reason: str, detail: str):
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


@dataclasses.dataclass
class Head:
    method: str
    target: str
    path: str
    lines: list[bytes]  # the header lines as sent, framing ones included
    headers: dict[str, str]  # lower-case name → value (the last one)

    def get(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class RequestReader:
    """feed() bytes until `complete`; `limit_of(head)` gives the body limit of a request's route and whether an
    oversized body is handed on as a prefix (the webhook keeps a dead letter) rather than refused here."""

    def __init__(self, started: float, limit_of: Callable[[Head], tuple[int, int | None]]):
        self.started = started
        self.limit_of = limit_of
        self.buffer = bytearray()
        self.head: Head | None = None
        self.head_done_at: float | None = None
        self.limit = 0
        self.keep_on_overflow: int | None = None  # bytes kept of an oversized body, or None: refuse it
        self.length: int | None = None  # Content-Length, or None when chunked
        self.body: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_OVER)
        self.kept = 0  # body bytes in self.body
        self.received = 0  # body bytes seen (decoded when chunked)
        self.overflow = False
        self.complete = False
        self.expects_continue = False
        self._chunk_left = 0  # chunked: bytes left in the current chunk; -1 once the last chunk was seen
        self._chunk_state = "size"

    # --- deadlines -------------------------------------------------------------------------------------------

    def deadline(self) -> float:
        if self.head is None:
            return self.started + HEAD_TIMEOUT
        declared = self.length if self.length is not None else self.received
        return self.head_done_at + BODY_TIMEOUT + BODY_SECONDS_PER_MIB * declared / _MIB

    # --- feeding ---------------------------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> None:
        """Take bytes; raises Refused. After the head, `head` is set; at the end, `complete`."""
        if self.head is None:
            self.buffer += data
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    raise Refused(431, "headers_too_large", f"the request head is over {MAX_HEAD} bytes")
                return
            if end + 4 > MAX_HEAD:
                raise Refused(431, "headers_too_large", f"the request head is over {MAX_HEAD} bytes")
            head, rest = bytes(self.buffer[:end]), bytes(self.buffer[end + 4:])
            self.buffer = bytearray()
            self._start_body(parse_head(head), now)
            data = rest
        if not self.complete and data:
            self._take_body(data)

    def _start_body(self, head: Head, now: float) -> None:
        self.head, self.head_done_at = head, now
        self.limit, self.keep_on_overflow = self.limit_of(head)
        te, cl = head.get("transfer-encoding"), head.get("content-length")
        if te is not None and cl is not None:
            raise Refused(400, "bad_framing", "both Transfer-Encoding and Content-Length")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise Refused(501, "unsupported_transfer_encoding", f"Transfer-Encoding {te!r}: only chunked")
            self.length = None
        else:
            if cl is not None and not cl.strip().isdigit():
                raise Refused(400, "bad_content_length", f"Content-Length {cl[:40]!r} is not a number")
            self.length = int(cl) if cl is not None else 0
            if self.length > self.limit:
                if self.keep_on_overflow is None:
                    raise too_large(self.length, self.limit)
                self.overflow = True
                self.complete = self.keep_on_overflow == 0
        self.expects_continue = (head.get("expect") or "").strip().lower() == "100-continue"
        if self.length == 0:
            self.complete = True

    def _take_body(self, data: bytes) -> None:
        if self.length is not None:
            take = data[: self.length - self.received]
            self.received += len(take)
            self._keep(take)
            if self.received >= self.length:
                self.complete = True
            return
        self.buffer += data
        self._dechunk()

    def _keep(self, data: bytes) -> None:
        room = (self.keep_on_overflow if self.overflow else self.limit) - self.kept
        if len(data) > room and not self.overflow:
            if self.keep_on_overflow is None:
                raise too_large(self.received, self.limit)
            self.overflow = True
            room = self.keep_on_overflow - self.kept
        if room > 0:
            self.kept += self.body.write(data[:room])
        if self.overflow and self.kept >= self.keep_on_overflow:
            self.body.truncate(self.keep_on_overflow)
            self.kept = min(self.kept, self.keep_on_overflow)
            self.complete = True  # hand the prefix on now: the answer is a 413 whatever the rest holds

    def _dechunk(self) -> None:
        while not self.complete:
            if self._chunk_state == "data":
                take = bytes(self.buffer[: self._chunk_left])
                del self.buffer[: len(take)]
                self._chunk_left -= len(take)
                self.received += len(take)
                self._keep(take)
                if self._chunk_left:
                    return
                self._chunk_state = "crlf"
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                if len(self.buffer) > 4096:
                    raise Refused(400, "bad_chunk", "a chunk size line or trailer over 4096 bytes")
                return
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            if self._chunk_state == "crlf":
                if line:
                    raise Refused(400, "bad_chunk", "chunk data longer than its size")
                self._chunk_state = "size"
            elif self._chunk_state == "size":
                size = _CHUNK_SIZE.fullmatch(line)
                if not size:
                    raise Refused(400, "bad_chunk", f"bad chunk size line {line[:40]!r}")
                self._chunk_left = int(size.group(1), 16)
                self._chunk_state = "data" if self._chunk_left else "trailer"
            elif not line:  # the empty line after the trailers ends the body
                self.complete = True

    # --- the request handed on -------------------------------------------------------------------------------

    def request_head(self) -> bytes:
        """The head as the application will read it: as sent, less the framing and the client's own
        OVERFLOW_HEADER, with Content-Length of the body held (and OVERFLOW_HEADER when the body was cut)."""
        assert self.head is not None and self.complete
        dropped = (b"transfer-encoding", b"content-length", b"expect", OVERFLOW_HEADER.lower().encode())
        lines = [line for line in self.head.lines if line.split(b":", 1)[0].strip().lower() not in dropped]
        lines.append(b"Content-Length: %d" % self.kept)
        if self.overflow:
            lines.append(b"%s: %d" % (OVERFLOW_HEADER.encode(), self.received if self.length is None else self.length))
        request_line = f"{self.head.method} {self.head.target} HTTP/1.1".encode("latin-1")
        return b"\r\n".join([request_line, *lines]) + b"\r\n\r\n"

    def body_file(self) -> IO[bytes]:
        """The body held, from its start; the caller closes it."""
        self.body.seek(0)
        return self.body

    def discard(self) -> None:
        self.body.close()


def too_large(size: int, limit: int) -> Refused:
    return Refused(413, "body_too_large", f"the body ({size} bytes or more) is over this route's {limit}-byte limit")


def parse_head(raw: bytes) -> Head:
    request_line, *lines = raw.split(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[2].startswith(b"HTTP/1."):
        raise Refused(400, "bad_request_line", f"not an HTTP/1.x request line: {request_line[:80]!r}")
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            raise Refused(400, "bad_header", f"not a header line: {line[:80]!r}")
        headers[name.decode("latin-1").lower()] = value.strip().decode("latin-1")
    target = parts[1].decode("latin-1")
    return Head(parts[0].decode("latin-1"), target, target.split("?", 1)[0], lines, headers)
