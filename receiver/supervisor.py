"""The child processes `serve` runs beside gunicorn (the escalation engine): started before the arbiter,
restarted when they die, sent SIGHUP on reload, stopped with SIGTERM after gunicorn has finished its requests.
They die with serve too, even a SIGKILLed one (lifeline.py)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from typing import Sequence

from .lifeline import child_env
from .wakeup import Wakeup

log = logging.getLogger("receiver.supervisor")

SUPERVISOR_PID_ENV = "RECEIVER_SUPERVISOR_PID"  # workers signal this process to reload everything


class Child:
    def __init__(self, name: str, argv: Sequence[str]):
        self.name = name
        self.argv = list(argv)
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    def start(self, parent_pid: int) -> None:
        self.proc = subprocess.Popen(self.argv, start_new_session=False, env=child_env(parent_pid))
        log.info("started child", extra={"child": self.name, "pid": self.proc.pid})


class Supervisor:
    def __init__(self, restart_delay: float = 1.0):
        self.children: list[Child] = []
        self.restart_delay = restart_delay
        self._stopping = Wakeup()
        self._stopped = Wakeup()  # the children have been stopped: the restarting thread may end
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.pid: int | None = None

    def add(self, name: str, argv: Sequence[str]) -> None:
        self.children.append(Child(name, argv))

    def start(self) -> None:
        self.pid = os.getpid()
        os.environ[SUPERVISOR_PID_ENV] = str(self.pid)
        with self._lock:
            for child in self.children:
                child.start(self.pid)
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        # A dead child is restarted (after a pause, so a child that cannot start does not spin). The thread lives
        # until stop() is done, not only until serve begins to stop: the children it restarted get their
        # parent-death signal when this thread ends, and the writer must serve gunicorn's last requests.
        while not self._stopped.wait(0.5):
            if self._stopping.is_set():
                continue
            with self._lock:
                for child in self.children:
                    if child.proc is not None and child.proc.poll() is not None and not self._stopping.is_set():
                        log.error("child exited; restarting", extra={"child": child.name,
                                                                      "code": child.proc.returncode})
                        time.sleep(self.restart_delay)
                        child.restarts += 1
                        child.start(self.pid)

    def shutting_down(self) -> None:
        """serve is stopping: a child that exits from now on is not restarted. When the whole process group gets
        the signal (Ctrl-C, systemd's default KillMode, `kill -- -PGID`), the children stop on their own while
        gunicorn finishes its requests; they used to be restarted a second later, as if they had crashed."""
        self._stopping.set()

    def shutdown_hook(self):
        """A gunicorn `when_ready` hook: chain our notice in front of the arbiter's handlers of the stop signals."""
        def when_ready(_arbiter) -> None:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
                previous = signal.getsignal(signum)
                if callable(previous):
                    signal.signal(signum, lambda n, frame, previous=previous: (self.shutting_down(), previous(n, frame)))
        return when_ready

    def signal(self, signum: int) -> None:
        with self._lock:
            for child in self.children:
                if child.proc is not None and child.proc.poll() is None:
                    child.proc.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> None:
        if self.pid is not None and os.getpid() != self.pid:
            return  # a forked gunicorn worker unwinding through serve's frames: the children are not its own
        self._stopping.set()
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("child did not stop in time; killing it", extra={"child": child.name})
                child.proc.kill()
                child.proc.wait()
        self._stopped.set()
