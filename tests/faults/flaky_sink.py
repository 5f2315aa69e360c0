"""A provider that is down in the ways providers go down: answering 500, throttling with 429 and Retry-After, or
hanging past the client's timeout; switched from one to the next by the test, and back to 200 when it recovers.
Every request is recorded with the monotonic time it arrived and what it got (0: hung until the client gave up)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("ok", "error", "throttle", "hang")


@dataclasses.dataclass(frozen=True)
class Hit:
    at: float  # time.monotonic() on arrival
    mode: str
    status: int  # 0: hung (the sender timed out)
    body: bytes

    def json(self):
        return json.loads(self.body)


class FlakySink:
    def __init__(self, *, retry_after_s: int = 1, hang_s: float = 3.0):
        self.mode = "ok"
        self.retry_after_s = retry_after_s
        self.hang_s = hang_s  # longer than the channel's timeout
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with sink.lock:
                    mode = sink.mode
                    status = {"ok": 200, "error": 500, "throttle": 429, "hang": 0}[mode]
                    sink.hits.append(Hit(time.monotonic(), mode, status, body))
                headers = {}
                if mode == "hang":
                    sink.stopping.wait(sink.hang_s)  # the sender's timeout runs out meanwhile
                    status = 503
                elif mode == "throttle":
                    headers["Retry-After"] = str(sink.retry_after_s)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:  # the sender gave up on a hung request
                    pass

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "FlakySink":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def switch(self, mode: str) -> None:
        assert mode in MODES, mode
        with self.lock:
            self.mode = mode

    def recorded(self) -> list[Hit]:
        with self.lock:
            return list(self.hits)
