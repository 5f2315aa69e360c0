"""The SQLite writer's socket and wire format, shared by its clients (the gunicorn workers, the engine) and its
server (the writer process).

The socket lives in a directory only our user can enter (checked) and is named after the database's absolute path,
so every process finds it without configuration. Frames: an 8-byte big-endian length, then a pickle. Both ends are
this program and the server checks the peer's uid on accept: pickle is safe here.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import socket
import stat
import struct
import tempfile
from typing import Any

from sqlalchemy.engine import Engine

HEADER = struct.Struct("!Q")
MAX_FRAME = 1 << 31  # a 64 MiB body and its parsed snapshot fit many times over

OK, UNAVAILABLE, FAILED = "ok", "unavailable", "failed"  # the status of an answer: (status, value)


class InsecureDirectory(RuntimeError):
    pass


# --- where the socket lives ----------------------------------------------------------------------------------------


def socket_dir() -> str:
    """A directory only this user can enter: $XDG_RUNTIME_DIR/alert-receiver or <tmp>/alert-receiver-<uid>."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "alert-receiver")
    return os.path.join(tempfile.gettempdir(), f"alert-receiver-{os.getuid()}")


def check_private(path: str) -> None:
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise InsecureDirectory(f"{path} must be a directory of uid {os.getuid()} with mode 0700: not using it")


WRITER_SOCKET_ENV = "ALERT_RECEIVER_WRITER_SOCKET"  # PostgreSQL: the socket of this replica's writer, set by serve


def postgresql_socket_path() -> str:
    """A socket for the writer of one `serve` (one replica): on PostgreSQL each replica has its own writer, so the
    path is named after serve's pid, and serve hands it to its workers and engine in WRITER_SOCKET_ENV."""
    return os.path.join(socket_dir(), f"writer-pg-{os.getpid()}.sock")


def socket_path(engine_or_database: Engine | str) -> str | None:
    """The writer's socket: for a SQLite database file, derived from the database's absolute path, so the workers,
    the writer and the tests find it without configuration; for PostgreSQL, the one serve set in WRITER_SOCKET_ENV.
    None for in-memory SQLite and for PostgreSQL outside serve (in-process apps, CLI commands, tests)."""
    if isinstance(engine_or_database, str):
        database = engine_or_database
    else:
        if engine_or_database.dialect.name == "postgresql":
            return os.environ.get(WRITER_SOCKET_ENV) or None
        if engine_or_database.dialect.name != "sqlite":
            return None
        database = engine_or_database.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    digest = hashlib.sha256(os.path.realpath(database).encode()).hexdigest()[:24]
    return os.path.join(socket_dir(), f"writer-{digest}.sock")


# --- framing -------------------------------------------------------------------------------------------------------


def frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def recv_frame(sock: socket.socket) -> Any:
    """One answer: usually a single recv brings its header and its body (one job in flight per connection, so
    nothing follows it)."""
    buf = bytearray()
    need = HEADER.size
    while len(buf) < need:
        chunk = sock.recv(max(need - len(buf), 1 << 16))
        if not chunk:
            raise ConnectionResetError("writer closed the connection")
        buf += chunk
        if need == HEADER.size and len(buf) >= HEADER.size:
            need += HEADER.unpack_from(buf)[0]
    return pickle.loads(memoryview(buf)[HEADER.size:need])


def set_kernel_timeouts(sock: socket.socket, seconds: float) -> None:
    """A blocking socket whose send and recv give up after `seconds` (EAGAIN). A Python timeout would do the same
    with a poll() before every call, and each of those is one more GIL handoff in a threaded worker."""
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


