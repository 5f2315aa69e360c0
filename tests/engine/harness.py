"""A receiver with an injected clock and recording channels: post genuine webhooks, tick, deliver, and see what
each channel heard — the escalation ladder tested without sleeping."""

from __future__ import annotations

import dataclasses
import json

from receiver.channels.base import Channel, DeliveryError
from receiver.domain import Message
from receiver.engine import tick as tick_mod
from receiver.engine.delivery import Dispatcher
from receiver.store.write_port import DirectWrites

from ..support.fixtures import raw


class RecordingChannel(Channel):
    """A hand-written fake: records every message; raises the queued errors first."""

    type = "recording"

    def __init__(self, name: str):
        self.name = name
        self.sent: list[Message] = []
        self.errors: list[DeliveryError] = []

    def send(self, message: Message) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(message)


@dataclasses.dataclass(frozen=True)
class Heard:
    channel: str
    kind: str
    level: str
    alerts: tuple[str, ...]  # alertname/instance of each alert


class Ladder:
    def __init__(self, client, db, config, clock):
        self.client = client
        self.db = db
        self.writes = DirectWrites(db)  # the engine functions write through the port
        self.config = config
        self.clock = clock
        self.channels = {name: RecordingChannel(name) for name in config.channels}
        self.dispatcher = Dispatcher(self.writes, config, self.channels, clock=clock, worker="test-engine", rng=lambda: 0.5)
        self._seen = {name: 0 for name in self.channels}

    def post(self, body: bytes | str | dict, path: str = "/webhook"):
        if isinstance(body, str):
            body = raw(body)
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        resp = self.client.post(path, data=body, content_type="application/json")
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def tick(self):
        return tick_mod.tick(self.writes, self.config, self.clock.now())

    def deliver(self) -> None:
        for _ in range(100):
            if not self.dispatcher.run_once().handled:
                return
        raise AssertionError("delivery did not settle")

    def step(self, minutes: float = 0) -> list[Heard]:
        """Advance the clock, tick, deliver; return what every channel heard since the last step."""
        self.clock.advance(minutes * 60)
        self.tick()
        self.deliver()
        return self.heard()

    def heard(self) -> list[Heard]:
        out = []
        for name, channel in self.channels.items():
            for m in channel.sent[self._seen[name]:]:
                out.append(Heard(name, m.kind, m.level, tuple(
                    f"{a.alertname}/{a.labels.get('instance', '')}".rstrip("/") for a in m.alerts)))
            self._seen[name] = len(channel.sent)
        return sorted(out, key=lambda h: (h.kind, h.level, h.channel, h.alerts))

    def close(self):
        self.dispatcher.close()


def body_with(name: str, **labels) -> dict:
    """A genuine captured body with extra labels on every alert (fingerprints are recomputed by the receiver)."""
    doc = json.loads(raw(name))
    for alert in doc["alerts"]:
        alert["labels"].update(labels)
        alert.pop("fingerprint", None)
    doc["groupLabels"].update({k: v for k, v in labels.items() if k in doc["groupLabels"]})
    doc["groupKey"] += "".join(f",{k}={v}" for k, v in sorted(labels.items()))
    return doc
