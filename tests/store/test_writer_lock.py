"""The SQLite writer queue: bounded waits, immediate hand-over, released when its holder dies."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time

import pytest

from receiver.store.writer_lock import SqliteWriterLock, WriterLockTimeout


def _hold(path, ready, seconds):
    lock = SqliteWriterLock(path, 1.0)
    lock.acquire()
    ready.set()
    time.sleep(seconds)
    lock.release()


@contextlib.contextmanager
def held_by_another_process(path):
    """Another process holds the lock (for up to 30 s) until the block kills it; yields that process."""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold, args=(path, ready, 30))
    holder.start()
    try:
        assert ready.wait(10)
        yield holder
    finally:
        if holder.is_alive():
            holder.kill()
        holder.join(10)


def _kill(holder) -> None:
    # The kernel drops the lock of a killed holder: a SIGKILLed worker cannot wedge the others.
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)


def test_times_out_while_another_process_holds_it_then_is_free(tmp_path):
    path = str(tmp_path / "db.writer-lock")
    with held_by_another_process(path) as holder:
        lock = SqliteWriterLock(path, 0.2)
        started = time.monotonic()
        with pytest.raises(WriterLockTimeout):
            lock.acquire()
        assert time.monotonic() - started < 5
        _kill(holder)
        lock.acquire()
        lock.release()


def test_threads_of_one_process_take_turns(tmp_path):
    import threading

    lock = SqliteWriterLock(str(tmp_path / "db.writer-lock"), 5.0)
    inside = []
    overlap = []

    def work():
        for _ in range(50):
            lock.acquire()
            inside.append(1)
            if len(inside) > 1:
                overlap.append(1)
            inside.pop()
            lock.release()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == []


def _probe(path, result):
    import fcntl

    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result.value = 1
    except BlockingIOError:
        result.value = 0
    finally:
        os.close(fd)


def _free_elsewhere(path) -> bool:
    """True if another process could take the lock right now."""
    ctx = multiprocessing.get_context("fork")
    result = ctx.Value("i", -1)
    proc = ctx.Process(target=_probe, args=(path, result))
    proc.start()
    proc.join(10)
    return result.value == 1


def test_a_thread_that_timed_out_leaves_no_lock_behind_and_the_next_one_takes_over(tmp_path):
    """Threads block in the kernel through a helper thread. One that gives up leaves that helper blocked: when
    the holder goes, the next waiter gets the lock through it, and no extra unlock releases it under its feet."""
    import threading

    path = str(tmp_path / "db.writer-lock")
    with held_by_another_process(path) as holder:
        lock = SqliteWriterLock(path, 0.2)
        failures = []

        def try_once():
            try:
                lock.acquire()
                lock.release()
            except WriterLockTimeout as exc:
                failures.append(exc)

        thread = threading.Thread(target=try_once)
        thread.start()
        thread.join(10)
        assert len(failures) == 1  # timed out in its thread, not in the main one
        _kill(holder)
        got = []
        second = threading.Thread(target=lambda: (lock.acquire(), got.append(True)))
        second.start()
        second.join(10)
        assert got == [True]
        assert not _free_elsewhere(path)  # held, by us
        lock.release()
        assert _free_elsewhere(path)
