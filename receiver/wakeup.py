"""Wakeup: a flag that threads wait on with a timeout, as on a threading.Event.

Its timed wait is a poll() on a pipe, with a relative timeout. Event.wait(t) waits for an absolute CLOCK_MONOTONIC
deadline instead (sem_clockwait), which a process whose clocks are shifted never reaches: under libfaketime, as the
test suite runs on other dates, `Event().wait(1)` does not return, and a loop that sleeps on it stops for good.
"""

from __future__ import annotations

import os
import select


class Wakeup:
    def __init__(self) -> None:
        self._read, self._write = os.pipe()  # not inherited by children (PEP 446)
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        """Wake every waiter, now and until clear(). Safe in a signal handler: one flag, one write."""
        if not self._set:
            self._set = True
            try:
                os.write(self._write, b"!")
            except BlockingIOError:  # the pipe is full of earlier wake-ups: waiters wake all the same
                pass

    def clear(self) -> None:
        self._set = False
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass

    def wait(self, timeout: float | None = None) -> bool:
        """Until set() or `timeout` seconds; True when set. One poll object per call: they are not thread-safe."""
        if not self._set:
            poller = select.poll()
            poller.register(self._read, select.POLLIN)
            poller.poll(None if timeout is None else max(0, int(timeout * 1000)))
        return self._set

    def __del__(self) -> None:  # nobody can wait on it any more: give the pipe back
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass
