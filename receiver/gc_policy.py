"""The garbage collector's settings for a long-running process, applied once its start-up is done.

Measured in bench/ingest.py on a gunicorn worker (gc.callbacks, PostgreSQL, 2 cores):

- A full collection walked the loaded application (~140,000 objects) and held the GIL for 60-170 ms under load,
  every in-flight request of the worker waiting: most of the 1-alert p99. Frozen (`gc.freeze`), what start-up
  built is never walked again, and a full collection takes ~1 ms.
- At 100 alerts per webhook the default first threshold (700 net allocations of containers) ran about 70 young
  collections a second per worker: ~5 % of its CPU, and the GIL held through each. Almost every object a request
  makes dies with it by reference count, so a threshold of 10,000 runs almost none; cyclic garbage still
  triggers one when it reaches that many objects.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def settle_after_startup() -> None:
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
