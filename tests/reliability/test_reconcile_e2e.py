"""Reconciliation and ack silences against the REAL Alertmanager (issue #6, item 6), with `alert-receiver serve`
polling it every second:

- an alert is delivered and stored; an operator silences it in Alertmanager → the receiver acknowledges it
  (handled: no more escalation); it then resolves while silenced → Alertmanager sends no resolved webhook, drops it
  from its list, and the receiver's reconciler resolves it, saying why;
- with `ack_silence`, acknowledging in the receiver creates a silence in Alertmanager (the alert turns suppressed
  there), and unacknowledging expires it.

Every wait polls with a deadline; a passing run takes a few seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import requests
import yaml

from ..support.alertmanager import AlertmanagerProcess, api, generated_copy
from ..support.binaries import require_binary
from ..support.process import ReceiverProcess, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.binaries]

WEBHOOK_TOKEN = "e2e-reconcile-webhook-4b1d07"
WRITE_TOKEN = "e2e-reconcile-write-9c3e55"
WAIT_S = 60


@dataclasses.dataclass
class Stack:
    alertmanager: AlertmanagerProcess
    receiver: ReceiverProcess

    def call(self, method: str, path: str, **kwargs) -> dict:
        r = requests.request(method, self.receiver.url + path, timeout=10,
                             headers={"Authorization": f"Bearer {WRITE_TOKEN}"}, **kwargs)
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json()

    def stored(self, alertname: str) -> dict | None:
        alerts = self.call("GET", "/api/v1/alerts", params={"alertname": alertname})["alerts"]
        assert len(alerts) <= 1, alerts
        return alerts[0] if alerts else None

    def am_state(self, alertname: str) -> dict | None:
        found = [a for a in self.alertmanager.alerts() if a["labels"]["alertname"] == alertname]
        return found[0]["status"] if found else None

    def wait(self, predicate, what: str):
        try:
            return wait_until(predicate, timeout=WAIT_S, interval=0.1, what=what)
        except TimeoutError as exc:
            pytest.fail(f"{exc}\n--- alertmanager log\n{self.alertmanager.log()}\n--- receiver log\n"
                        f"{self.receiver.log()}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    binary = require_binary("prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("reconcile-e2e")
    token_file = tmp / "alert-receiver-token"
    token_file.write_text(WEBHOOK_TOKEN + "\n")
    with contextlib.ExitStack() as cleanup:
        receiver = ReceiverProcess(tmp / "receiver.yml", workers=1, log_path=str(tmp / "receiver.log"))
        config = generated_copy(tmp, webhook_base=receiver.url, credentials_file=token_file, fast=True)
        alertmanager = AlertmanagerProcess(binary, config, tmp / "alertmanager")
        write_receiver_config(tmp / "receiver.yml", database=tmp / "receiver.db", token_file=token_file,
                              alertmanager=alertmanager.url)
        cleanup.callback(alertmanager.stop)
        cleanup.callback(receiver.stop)
        alertmanager.start()
        receiver.start()
        alertmanager.wait_ready(timeout=WAIT_S)
        receiver.wait_ready(timeout=WAIT_S)
        yield Stack(alertmanager, receiver)


def write_receiver_config(path: Path, *, database: Path, token_file: Path, alertmanager: str) -> None:
    path.write_text(yaml.safe_dump({
        "database": {"url": f"sqlite:///{database}"},
        "auth": {"tokens": [{"name": "alertmanager", "token_file": str(token_file), "role": "webhook"},
                            {"name": "operator", "token": WRITE_TOKEN, "role": "write"}]},
        "escalation": {"tick": "1s", "L1": {"repeat_every": "1h"}},
        "reconcile": {"alertmanagers": [alertmanager], "interval": "1s", "grace": "1s"},
        "routes": [{"levels": {"L1": ["log"], "L2": ["log"], "L3": ["log"]}, "ack_silence": True}],
    }))


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def alert(alertname: str, *, ends_in: dt.timedelta = dt.timedelta(hours=1), starts_at: dt.datetime) -> dict:
    return {"labels": {"alertname": alertname, "severity": "critical", "service": "checkout",
                       "instance": "checkout-1:8080", "cluster": "e2e"},
            "annotations": {"summary": f"{alertname} on checkout-1:8080"},
            "startsAt": starts_at.isoformat(), "endsAt": (now() + ends_in).isoformat()}


def test_a_silenced_alert_that_resolves_is_resolved_by_the_reconciler(stack):
    name, started = "E2eSilencedThenGone", now()
    pushed = alert(name, starts_at=started)
    stack.alertmanager.push(pushed)
    stored = stack.wait(lambda: stack.stored(name), "the alert delivered by Alertmanager")
    assert (stored["status"], stored["level"], stored["acked_at"]) == ("firing", "L1", None)

    silence = api("POST", f"{stack.alertmanager.url}/api/v2/silences", {
        "matchers": [{"name": "alertname", "value": name, "isRegex": False, "isEqual": True}],
        "startsAt": now().isoformat(), "endsAt": (now() + dt.timedelta(hours=1)).isoformat(),
        "createdBy": "e2e-operator", "comment": "maintenance"})["silenceID"]
    assert stack.wait(lambda: stack.am_state(name)["silencedBy"], "Alertmanager's silence") == [silence]
    acked = stack.wait(lambda: (a := stack.stored(name)) and a["acked_at"] and a, "the receiver's ack of the silence")
    assert acked["acked_by"] == "alertmanager-silence" and acked["status"] == "firing"

    stack.alertmanager.push({**pushed, "endsAt": now().isoformat()})  # it resolves, silenced: no resolved webhook
    stack.wait(lambda: stack.am_state(name) is None, "Alertmanager dropping the resolved alert from its list")
    gone = stack.wait(lambda: (a := stack.stored(name))["status"] == "resolved" and a, "the reconciler's resolution")
    assert gone["resolved_by"] == "reconciler"
    timeline = stack.call("GET", f"/api/v1/alerts/{gone['id']}")["timeline"]
    [resolution] = [e for e in timeline if e["kind"] == "resolved"]
    assert resolution["comment"] == f"reconciled: absent from alertmanager {stack.alertmanager.url}"
    assert [e["kind"] for e in timeline].count("received") == 1  # and nothing else came from Alertmanager
    metrics = requests.get(stack.receiver.url + "/metrics", timeout=10).text
    assert 'alert_receiver_reconcile_drift_total{kind="absent"} 1.0' in metrics
    assert 'alert_receiver_reconcile_drift_total{kind="silenced"} 1.0' in metrics


def test_ack_silence_silences_in_alertmanager_until_unack(stack):
    name = "E2eAckSilenced"
    stack.alertmanager.push(alert(name, starts_at=now()))
    stored = stack.wait(lambda: stack.stored(name), "the alert delivered by Alertmanager")
    stack.call("POST", f"/api/v1/alerts/{stored['id']}/ack", json={"actor": "alice", "comment": "on it"})

    silenced_by = stack.wait(lambda: stack.am_state(name)["silencedBy"], "the ack's silence in Alertmanager")
    [silence] = [s for s in api("GET", f"{stack.alertmanager.url}/api/v2/silences") if s["id"] in silenced_by]
    assert silence["createdBy"] == "alert-receiver" and silence["status"]["state"] == "active"
    assert {m["name"]: m["value"] for m in silence["matchers"]} == stack.stored(name)["labels"]
    assert stack.stored(name)["acked_by"] == "alice"  # our own silence is not mistaken for a person's

    stack.call("POST", f"/api/v1/alerts/{stored['id']}/unack", json={"actor": "alice"})
    stack.wait(lambda: stack.am_state(name)["silencedBy"] == [], "the silence expired by the unack")
    expired = api("GET", f"{stack.alertmanager.url}/api/v2/silence/{silence['id']}")
    assert expired["status"]["state"] == "expired"
    assert stack.stored(name)["acked_at"] is None  # and the reconciler did not re-ack it
