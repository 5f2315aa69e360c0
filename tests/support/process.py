"""`alert-receiver serve` as a real process (gunicorn and all) for end-to-end tests; polls with deadlines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from .postgres import free_port


class ProcessExited(RuntimeError):
    """The process waited on is gone: waiting longer cannot help."""


def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except ProcessExited:
            raise
        except Exception as exc:  # not up yet
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})")


class ReceiverProcess:
    def __init__(self, config_path: str, *, host: str = "127.0.0.1", workers: int = 3, extra_env: dict | None = None,
                 log_path: str | None = None, cwd: str | None = None):
        self.config_path = str(config_path)
        self.cwd = cwd  # where relative paths in the config (a SQLite file) land
        self.host = host
        self.port = free_port()
        self.workers = workers
        self.env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        self.env.update({"RECEIVER_CONFIG": self.config_path, **(extra_env or {})})
        self.log_path = log_path or f"{self.config_path}.{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, *args: str) -> "ReceiverProcess":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "receiver", "serve", "--host", self.host, "--port", str(self.port),
             "--workers", str(self.workers), *args],
            env=self.env, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 30.0) -> "ReceiverProcess":
        def ready():
            if self.proc.poll() is not None:
                raise ProcessExited(f"receiver exited with {self.proc.returncode}: {self.log()}")
            return requests.get(self.url + "/-/ready", timeout=1).status_code == 200

        wait_until(ready, timeout=timeout, what=f"{self.url}/-/ready")
        return self

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-4000:]

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self._log.close()
