"""A gunicorn worker freezes the loaded application out of the garbage collector once it is initialised: a full
collection walked its ~140,000 objects and held the GIL for 60-170 ms under load, which every in-flight request of
the worker waited for (the bulk of bench/ingest.py's 1-alert p99)."""

from __future__ import annotations

import gc
import types

from receiver import gunicorn_conf


def test_post_worker_init_freezes_what_the_worker_has_loaded():
    tracked = len(gc.get_objects())  # this process has loaded the receiver, as a worker has
    worker = types.SimpleNamespace(wsgi=types.SimpleNamespace(extensions={}), notify=lambda: None)
    try:
        gunicorn_conf.post_worker_init(worker)
        assert gc.get_freeze_count() >= tracked * 0.9
        assert len(gc.get_objects()) < tracked * 0.1  # what a full collection still walks
        assert worker.wsgi.extensions["alert_receiver_heartbeat"] is worker.notify
    finally:
        gc.unfreeze()
