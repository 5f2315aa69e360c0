"""The real Alertmanager in tests: a generated copy of alertmanager/alertmanager.yml (only addresses, the bearer
token's path and timers substituted), the process on a loopback port with its v2 API, and a recording proxy that
sits between Alertmanager and alert-receiver and keeps both sides of every webhook.

Run as Alertmanager runs in production, minus the network: `--cluster.listen-address=` (the default gossips on
0.0.0.0:9094) and `--web.external-url` (docs/design.md, "Alertmanager facts"). Every wait polls with a deadline.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import subprocess
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

from .postgres import free_port
from .process import wait_until

ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER_YML = ROOT / "alertmanager" / "alertmanager.yml"

_RECEIVER_URL = "http://alert-receiver:9095/"  # where alertmanager.yml delivers to alert-receiver
_CREDENTIALS_FILE = re.compile(r"(?m)^(\s*credentials_file:).*$")
_SMARTHOST = re.compile(r"(?m)^(\s*smtp_smarthost:).*$")
_GROUP_WAIT = re.compile(r"(?m)^(\s*group_wait:)\s*(\S+)\s*$")
_GROUP_INTERVAL = re.compile(r"(?m)^(\s*group_interval:)\s*(\S+)\s*$")


def api(method: str, url: str, body: object | None = None, *, timeout: float = 5) -> object:
    """One JSON request; the decoded JSON answer (or the raw bytes of a non-JSON one)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = response.read()
        is_json = response.headers.get_content_type() == "application/json"
    return json.loads(payload) if payload and is_json else payload


def generated_copy(directory: Path, *, webhook_base: str | None = None, credentials_file: Path | None = None,
                   fast: bool = False) -> Path:
    """alertmanager.yml, written to `directory`, differing from the original only in:

    - the alert-receiver webhook URLs → `webhook_base` (default: a closed loopback port, so nothing leaves);
    - the SMTP smarthost → a closed loopback port (the fallback receiver's e-mail goes nowhere);
    - the bearer token's `credentials_file` → `credentials_file`, when given;
    - with `fast`: every `group_wait` that is not 0s becomes 1s and every `group_interval` 1s, so that a group's
      first webhook and each change (a new alert, a resolution) arrive within about a second. `repeat_interval`
      stays as it is (long): the only webhooks are the ones a test causes.
    """
    text = ALERTMANAGER_YML.read_text(encoding="utf-8")
    closed = f"127.0.0.1:{free_port()}"
    base = (webhook_base or f"http://{closed}").rstrip("/") + "/"
    text, webhooks = re.subn(re.escape(_RECEIVER_URL), base, text)
    text, smtp = _SMARTHOST.subn(rf"\g<1> {closed}", text)
    assert webhooks >= 1 and smtp == 1, "alertmanager.yml no longer delivers to http://alert-receiver:9095/"
    if credentials_file is not None:
        text, files = _CREDENTIALS_FILE.subn(rf"\g<1> {credentials_file}", text)
        assert files >= 1, "alertmanager.yml no longer reads alert-receiver's token from a credentials_file"
    if fast:
        text, waits = _GROUP_WAIT.subn(lambda m: f"{m[1]} {'0s' if m[2] == '0s' else '1s'}", text)
        text, intervals = _GROUP_INTERVAL.subn(r"\g<1> 1s", text)
        assert waits >= 1 and intervals >= 1
    copy = directory / "alertmanager.yml"
    copy.write_text(text, encoding="utf-8")
    return copy


class AlertmanagerProcess:
    """`prometheus-alertmanager` on a free loopback port, with its data and log under `workdir`.

    Alone by default (`--cluster.listen-address=`). With `clustered=True` it gossips on its own loopback
    `cluster_port` with the `peers` (their `cluster_address`), tuned by `cluster_flags` (e.g. `--cluster.peer-timeout`).
    """

    def __init__(self, binary: str, config: Path, workdir: Path, *, log_level: str = "warn", clustered: bool = False,
                 peers: tuple[str, ...] = (), cluster_flags: tuple[str, ...] = ()):
        self.binary = binary
        self.config = config
        self.workdir = workdir
        self.log_level = log_level
        self.port = free_port()
        self.clustered = clustered
        self.cluster_port = free_port() if clustered else None
        self.peers = tuple(peers)
        self.cluster_flags = tuple(cluster_flags)
        self.log_path = workdir / "alertmanager.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "AlertmanagerProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.external-url={self.url}",
                *self._cluster_args(),
                f"--log.level={self.log_level}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def cluster_address(self) -> str:
        return f"127.0.0.1:{self.cluster_port}"

    def _cluster_args(self) -> list[str]:
        if not self.clustered:
            return ["--cluster.listen-address="]  # the default gossips on 0.0.0.0:9094
        return [f"--cluster.listen-address={self.cluster_address}",
                f"--cluster.advertise-address={self.cluster_address}",
                *(f"--cluster.peer={peer}" for peer in self.peers), *self.cluster_flags]

    def cluster_peers(self) -> list[str]:
        """The addresses of the cluster members this Alertmanager sees (itself included), from GET /api/v2/status."""
        status = api("GET", f"{self.url}/api/v2/status")
        return sorted(peer["address"] for peer in (status.get("cluster") or {}).get("peers") or [])

    def wait_ready(self, timeout: float = 30.0) -> "AlertmanagerProcess":
        def state() -> str | None:
            if self.proc.poll() is not None:
                return "exited"
            try:
                api("GET", f"{self.url}/-/ready", timeout=1)
            except (urllib.error.URLError, ConnectionError):
                return None
            return "ready"

        try:
            outcome = wait_until(state, timeout=timeout, interval=0.1, what=f"Alertmanager at {self.url}/-/ready")
        except TimeoutError as exc:
            raise RuntimeError(f"Alertmanager did not start: {exc}\n{self.log()}") from None
        if outcome == "exited":
            raise RuntimeError(f"Alertmanager exited with {self.proc.returncode}:\n{self.log()}")
        return self

    def push(self, *alerts: dict) -> None:
        """POST /api/v2/alerts, as Prometheus does."""
        api("POST", f"{self.url}/api/v2/alerts", list(alerts))

    def alerts(self) -> list[dict]:
        """GET /api/v2/alerts: every alert with its state (active, suppressed) and receivers."""
        return api("GET", f"{self.url}/api/v2/alerts")

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One request that went through the proxy, and what the upstream answered to it."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # the upstream's status; 502 when it could not be reached
    response_headers: dict[str, str]
    response: bytes

    def json(self):
        return json.loads(self.body)


class RecordingProxy:
    """A transparent HTTP proxy: forwards every POST unchanged (path, body, Authorization, Content-Type) to
    `upstream`, answers the sender with the upstream's own status, headers and body, and records both sides. Put
    between Alertmanager and alert-receiver, it shows what Alertmanager sent, how often, and what it was told."""

    _FORWARDED = ("Authorization", "Content-Type", "User-Agent")
    _ANSWERED = ("Content-Type", "Retry-After", "WWW-Authenticate")

    def __init__(self, upstream: str, *, timeout: float = 30.0):
        self.upstream = urlparse(upstream)
        self.timeout = timeout
        self.exchanges: list[Exchange] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name: self.headers[name] for name in proxy._FORWARDED if self.headers.get(name)}
                status, answer_headers, answer = proxy._forward(self.path, headers, body)
                with proxy.lock:
                    proxy.exchanges.append(
                        Exchange(self.path, dict(self.headers), body, status, answer_headers, answer))
                self.send_response(status)
                for name, value in answer_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=self.timeout)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            kept = {name: response.headers[name] for name in self._ANSWERED if response.headers.get(name)}
            return response.status, kept, answer
        except OSError as exc:
            return 502, {"Content-Type": "text/plain"}, f"proxy: upstream unreachable: {exc!r}".encode()
        finally:
            connection.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "RecordingProxy":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def recorded(self) -> list[Exchange]:
        with self.lock:
            return list(self.exchanges)
