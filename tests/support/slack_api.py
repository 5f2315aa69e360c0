"""A real local HTTP server playing Slack's Web API for end-to-end runs: `chat.postMessage` answers
{"ok": true, "channel", "ts"} with a fresh ts (https://api.slack.com/methods/chat.postMessage#examples), and
`chat.update` answers {"ok": true, "channel", "ts"} for a message it posted and {"ok": false, "error":
"message_not_found"} for any other (https://api.slack.com/methods/chat.update#errors). A request without the
bot token as bearer is answered {"ok": false, "error": "not_authed"}, as Slack does. Every call is recorded."""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler

from .local_server import LocalServer
from .process import wait_until

CHANNEL_ID = "C0E2ECHAT"


@dataclasses.dataclass
class Call:
    method: str  # chat.postMessage | chat.update
    body: dict
    authorization: str
    answer: dict = dataclasses.field(default_factory=dict)


class SlackApi(LocalServer):
    def __init__(self, token: str):
        self.token = token
        self.calls: list[Call] = []
        self.posted: set[str] = set()
        self.lock = threading.Lock()
        stamps = itertools.count(1)
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                method = self.path.rsplit("/", 1)[-1]
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                with api.lock:
                    call = Call(method, body, self.headers.get("Authorization", ""))
                    if self.headers.get("Authorization") != f"Bearer {api.token}":
                        answer = {"ok": False, "error": "not_authed"}
                    elif method == "chat.postMessage":
                        ts = f"1700000000.{next(stamps):06d}"
                        api.posted.add(ts)
                        answer = {"ok": True, "channel": CHANNEL_ID, "ts": ts, "message": {"text": body.get("text")}}
                    elif method == "chat.update":
                        ts = body.get("ts")
                        answer = ({"ok": True, "channel": CHANNEL_ID, "ts": ts} if ts in api.posted
                                  else {"ok": False, "error": "message_not_found"})
                    else:
                        answer = {"ok": False, "error": "unknown_method"}
                    call.answer = answer
                    api.calls.append(call)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def of(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method]

    def wait(self, what: str, predicate, timeout: float = 30.0):
        return wait_until(lambda: predicate(self), timeout=timeout, interval=0.05, what=what)
