"""Long-running processes settle the garbage collector once started (receiver/gc_policy.py): a full collection
walked a worker's ~140,000 loaded objects and held the GIL for 60-170 ms under load, which every in-flight request
waited for (the bulk of bench/ingest.py's 1-alert p99); young collections took ~5 % of a worker's CPU at 100 alerts
per webhook."""

from __future__ import annotations

import gc
import types

import pytest

from receiver import gc_policy, gunicorn_conf


@pytest.fixture
def restored_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_a_gunicorn_worker_freezes_what_it_has_loaded_once_initialised(restored_gc):
    tracked = len(gc.get_objects())  # this process has loaded the receiver, as a worker has
    worker = types.SimpleNamespace(wsgi=types.SimpleNamespace(extensions={}), notify=lambda: None)
    gunicorn_conf.post_worker_init(worker)
    assert gc.get_freeze_count() >= tracked * 0.9
    assert len(gc.get_objects()) < tracked * 0.1  # what a full collection still walks
    assert gc.get_threshold()[0] == gc_policy.YOUNG_THRESHOLD
    assert worker.wsgi.extensions["alert_receiver_heartbeat"] is worker.notify


def test_only_the_young_threshold_changes(restored_gc):
    gc.set_threshold(700, 10, 10)
    gc_policy.settle_after_startup()
    assert gc.get_threshold() == (gc_policy.YOUNG_THRESHOLD, 10, 10)
