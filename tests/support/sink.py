"""A real local HTTP sink for end-to-end runs: records every request it gets, answers from a script of statuses
(e.g. 503, 503, then 200), and lets tests wait for what arrived with a deadline."""

from __future__ import annotations

import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler

from .local_server import LocalServer
from .process import wait_until


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the sink answered

    def json(self):
        return json.loads(self.body)


class HttpSink(LocalServer):
    def __init__(self):
        self.received: list[Received] = []
        self.script: list[tuple[int, dict[str, str]]] = []  # answers to give before the default 200
        self.to_hold = 0  # the next requests this many are held (recorded with status 0) until release()
        self.released = threading.Event()
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender died mid-request (the crash tests kill it anywhere): like a real provider, never
                    # take a truncated body as a request, nor answer it.
                    self.close_connection = True
                    return
                with sink.lock:
                    held = sink.to_hold > 0
                    if held:
                        sink.to_hold -= 1
                        sink.received.append(Received(self.path, dict(self.headers), body, 0))
                    else:
                        status, headers = sink.script.pop(0) if sink.script else (200, {})
                        sink.received.append(Received(self.path, dict(self.headers), body, status))
                if held:  # a provider that hangs: the sender is stuck in send() until released (or killed)
                    sink.released.wait(60)
                    status, headers = 200, {}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):  # quiet
                pass

        super().__init__(Handler)

    def stop(self) -> None:
        self.released.set()
        super().stop()

    def answer(self, *statuses: int | tuple[int, dict[str, str]]) -> None:
        """Answer the next requests with these statuses (then 200 again)."""
        with self.lock:
            self.script.extend(s if isinstance(s, tuple) else (s, {}) for s in statuses)

    def hold(self, count: int = 1) -> None:
        """Hang on the next `count` requests until release()."""
        with self.lock:
            self.to_hold += count
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def held(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.status == 0]

    def ok(self, path: str | None = None) -> list[Received]:
        """The requests answered 2xx, optionally for one path, in arrival order."""
        with self.lock:
            return [r for r in self.received if 200 <= r.status < 300 and (path is None or r.path == path)]

    def wait_for(self, count: int, *, path: str | None = None, timeout: float = 30.0) -> list[Received]:
        return wait_until(lambda: (got := self.ok(path)) and len(got) >= count and got, timeout=timeout,
                          interval=0.05, what=f"{count} delivered request(s) to the sink{f' at {path}' if path else ''}")
