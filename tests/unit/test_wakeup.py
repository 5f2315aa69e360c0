"""Wakeup: Event semantics (set, clear, wait with a timeout, every waiter woken), and a timed wait that ends
in a process whose clocks libfaketime shifts, where threading.Event.wait(timeout) never returns."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from receiver.wakeup import Wakeup

from ..support.binaries import require_binary
from ..support.fixtures import ROOT


def test_wait_times_out_false_and_returns_true_once_set():
    flag = Wakeup()
    started = time.monotonic()
    assert flag.wait(0.2) is False
    assert 0.15 < time.monotonic() - started < 2
    flag.set()
    assert flag.is_set() and flag.wait(10) is True and flag.wait(0) is True
    flag.clear()
    assert not flag.is_set() and flag.wait(0.01) is False


def test_a_set_from_another_thread_wakes_every_waiter_at_once():
    flag = Wakeup()
    woke: list[float] = []
    waiters = [threading.Thread(target=lambda: woke.append(flag.wait(30) and time.monotonic())) for _ in range(3)]
    for t in waiters:
        t.start()
    time.sleep(0.1)  # let them block
    set_at = time.monotonic()
    flag.set()
    flag.set()  # twice: still one wake-up, nothing blocks
    for t in waiters:
        t.join(10)
    assert len(woke) == 3 and all(at - set_at < 2 for at in woke), woke


def test_many_set_and_clear_cycles_never_fill_the_pipe():
    flag = Wakeup()
    for _ in range(100_000):
        flag.set()
        flag.clear()
    assert flag.wait(0.01) is False


def test_a_timed_wait_ends_under_libfaketime():
    faketime = require_binary("faketime")
    snippet = ("import time; from receiver.wakeup import Wakeup; t = time.monotonic(); "
               "print(Wakeup().wait(0.3), round(time.monotonic() - t, 1))")
    done = subprocess.run([faketime, "+90 days", sys.executable, "-c", snippet], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "False" and float(done.stdout.split()[1]) < 5, done.stdout
