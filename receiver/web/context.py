"""What the views share, built once by create_app and stored on the app (no module-level singletons)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

from flask import current_app
from sqlalchemy.engine import Engine

from ..clock import Clock
from ..config import Config
from ..metrics import Metrics
from ..store.db import read_transaction
from ..store.write_port import Writes
from .auth import Authenticator
from .throttle import FailureThrottle


@dataclasses.dataclass
class Services:
    config: Config
    db: Engine  # for reads (read()); every write goes through `writes`
    writes: Writes
    clock: Clock
    metrics: Metrics
    auth: Authenticator
    # Failed authentications per client address (auth.auth_failed): in this process only, bounded.
    auth_throttle: FailureThrottle = dataclasses.field(default_factory=FailureThrottle)
    # A body above this size waits for the gate: a 64 MiB body parses into far more memory, so only a few at once.
    large_body_bytes: int = 4 * 1024 * 1024
    large_body_gate: threading.BoundedSemaphore = dataclasses.field(default_factory=lambda: threading.BoundedSemaphore(1))
    # When this process last pruned old raw bodies (they are kept only server.raw_bodies_days).
    last_body_prune: dt.datetime | None = None
    body_prune_every: dt.timedelta = dt.timedelta(hours=1)

    def read(self):
        """A read transaction within database.query_timeout: every read a request makes goes through here."""
        return read_transaction(self.db, budget=self.config.database.query_timeout.total_seconds())


def services() -> Services:
    return current_app.extensions["alert_receiver"]


def channel_secrets(channel_type: str, field: str) -> dict[str, bytes]:
    """Channel name → the secret `field` of every configured channel of `channel_type` that has it set: what a
    platform's signed request (PagerDuty, Slack, Twilio) is checked against."""
    found = {}
    for name, settings in services().config.channels.items():
        secret = getattr(settings, field, None) if settings.type == channel_type else None
        if secret is not None:
            found[name] = secret.reveal().encode("utf-8")
    return found
