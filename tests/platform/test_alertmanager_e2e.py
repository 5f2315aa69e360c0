"""The whole pipeline with the real Alertmanager (issue #4, item 5): alerts pushed to Alertmanager's v2 API are
grouped, inhibited and resolved by the project's own alertmanager.yml, delivered with its bearer token to
`alert-receiver serve`, stored, and sent on by the receiver's `webhook` channels to a local sink.

    Alertmanager (copy of alertmanager.yml) ─▶ recording proxy ─▶ alert-receiver serve ─▶ sink /l1 /l2 /l3
      ▲ POST /api/v2/alerts                   (both sides of      (SQLite, token file)    (what the channels
      │                                        every webhook)                              sent)
    the test

The copy differs from the original only in addresses, the token file's path and timers (group_wait 1s where it is
not 0s, group_interval 1s); repeat_interval and the receiver's escalation timers stay long, so every webhook and
every message is one a test caused. For the retry the receiver is made genuinely unavailable: the test holds
SQLite's write lock, the receiver answers 503 after `database.lock_timeout`, Alertmanager retries the same bytes.
The tests share one stack and use their own alertnames (so their own groups); each waits for what it asserts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
import requests
import yaml

from ..support.alertmanager import AlertmanagerProcess, Exchange, RecordingProxy, generated_copy
from ..support.binaries import require_binary
from ..support.process import ReceiverProcess, wait_until
from ..support.sink import HttpSink

pytestmark = [pytest.mark.e2e, pytest.mark.binaries]

WEBHOOK_TOKEN = "e2e-alertmanager-token-5d1c8e"  # role webhook, read from the same file by both sides
READ_TOKEN = "e2e-read-token-a73f02"
CLUSTER = "e2e"
LOCK_TIMEOUT_S = 2  # the receiver's database.lock_timeout: how long a webhook waits for SQLite before its 503
WAIT_S = 60  # deadline of every wait: generous for a loaded 2-core CI machine; a passing run waits about a second


@dataclasses.dataclass
class Stack:
    alertmanager: AlertmanagerProcess
    proxy: RecordingProxy
    receiver: ReceiverProcess
    sink: HttpSink
    database: Path

    def get(self, path: str, **params) -> dict:
        r = requests.get(self.receiver.url + path, params=params, timeout=10,
                         headers={"Authorization": f"Bearer {READ_TOKEN}"})
        assert r.status_code == 200, (path, r.status_code, r.text)
        return r.json()

    def explain(self) -> str:
        return (f"--- alertmanager log\n{self.alertmanager.log()}\n--- receiver log\n{self.receiver.log()}\n"
                f"--- webhooks through the proxy\n" +
                "\n".join(f"{e.status} {e.path} {e.body[:300]!r}" for e in self.proxy.recorded()))


def write_receiver_config(path: Path, *, database: Path, token_file: Path, sink: HttpSink) -> None:
    path.write_text(yaml.safe_dump({
        "database": {"url": f"sqlite:///{database}", "lock_timeout": f"{LOCK_TIMEOUT_S}s"},
        "auth": {"tokens": [
            {"name": "alertmanager", "token_file": str(token_file), "role": "webhook"},
            {"name": "e2e-reader", "token": READ_TOKEN, "role": "read"},
        ]},
        # Nothing escalates or repeats while the tests run: the sink hears only first pages and resolutions.
        "escalation": {"tick": "1s", "L3": {"escalate_after": "1h"}, "L2": {"escalate_after": "1h"},
                       "L1": {"repeat_every": "1h"}},
        "channels": {name: {"type": "webhook", "url": f"{sink.url}/{name}"} for name in ("l1", "l2", "l3")},
        "routes": [{"levels": {"L1": ["l1"], "L2": ["l2"], "L3": ["l3"]}}],
    }))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    binary = require_binary("prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("alertmanager-e2e")
    token_file = tmp / "alert-receiver-token"  # /etc/alertmanager/secrets/alert-receiver-token in production
    token_file.write_text(WEBHOOK_TOKEN + "\n")
    token_file.chmod(0o600)
    database = tmp / "receiver.db"
    with contextlib.ExitStack() as cleanup:
        sink = HttpSink().start()
        cleanup.callback(sink.stop)
        write_receiver_config(tmp / "receiver.yml", database=database, token_file=token_file, sink=sink)
        receiver = ReceiverProcess(tmp / "receiver.yml", workers=2, log_path=str(tmp / "receiver.log"))
        proxy = RecordingProxy(receiver.url).start()
        cleanup.callback(proxy.stop)
        config = generated_copy(tmp, webhook_base=proxy.url, credentials_file=token_file, fast=True)
        alertmanager = AlertmanagerProcess(binary, config, tmp / "alertmanager", log_level="debug")
        cleanup.callback(alertmanager.stop)
        cleanup.callback(receiver.stop)
        receiver.start()
        alertmanager.start()  # both start at once; each is waited for below
        receiver.wait_ready(timeout=WAIT_S)
        alertmanager.wait_ready(timeout=WAIT_S)
        yield Stack(alertmanager, proxy, receiver, sink, database)


# --- what the test pushes, and what came out ------------------------------------------------------------------------


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def alert(alertname: str, severity: str, service: str, instance: str, *, starts_at: dt.datetime,
          ends_at: dt.datetime | None = None) -> dict:
    """A postable alert as Prometheus sends it: explicit startsAt (Alertmanager would otherwise take endsAt), and
    endsAt an hour ahead while it fires, or the moment it resolved."""
    return {
        "labels": {"alertname": alertname, "severity": severity, "service": service, "instance": instance,
                   "cluster": CLUSTER},
        "annotations": {"summary": f"{alertname} on {instance}"},
        "startsAt": starts_at.isoformat(),
        "endsAt": (ends_at or starts_at + dt.timedelta(hours=1)).isoformat(),
    }


def resolved(pushed: dict) -> dict:
    return {**pushed, "endsAt": now().isoformat()}


def webhooks(stack: Stack, alertname: str) -> list[Exchange]:
    """The webhooks Alertmanager sent for the groups of `alertname`, in order, with what the receiver answered."""
    return [e for e in stack.proxy.recorded() if e.json().get("groupLabels", {}).get("alertname") == alertname]


def messages(stack: Stack, alertname: str) -> list[dict]:
    """The documents the receiver's webhook channels delivered about `alertname`, in arrival order."""
    return [r.json() for r in stack.sink.ok() if any(a["alertname"] == alertname for a in r.json()["alerts"])]


def instances(document: dict) -> list[str]:
    return sorted(a["labels"]["instance"] for a in document["alerts"])


def parse_time(text: str) -> dt.datetime:
    # Alertmanager writes nanoseconds; the receiver and Python stop at microseconds.
    text = text.replace("Z", "+00:00")
    head, dot, tail = text.partition(".")
    if dot:
        digits = len(tail) - len(tail.lstrip("0123456789"))
        tail = tail[:min(digits, 6)] + tail[digits:]
    return dt.datetime.fromisoformat(head + dot + tail)


def stored(stack: Stack, alertname: str, **filters) -> dict[str, dict]:
    """The receiver's occurrences of `alertname`, by instance (one each in these tests)."""
    alerts = stack.get("/api/v1/alerts", alertname=alertname, **filters)["alerts"]
    by_instance = {a["labels"]["instance"]: a for a in alerts}
    assert len(by_instance) == len(alerts), f"more than one occurrence per instance: {alerts}"
    return by_instance


def notifications(stack: Stack, alert_ids) -> list[dict]:
    """The receiver's outbox messages that carry any of these alerts, oldest first."""
    found = {n["id"]: n for alert_id in alert_ids
             for n in stack.get("/api/v1/notifications", alert_id=alert_id)["notifications"]}
    return [found[i] for i in sorted(found)]


def timeline(stack: Stack, alert_id: int) -> list[str]:
    return [e["kind"] for e in stack.get(f"/api/v1/alerts/{alert_id}")["timeline"]]


def wait_for(stack: Stack, predicate, what: str):
    try:
        return wait_until(predicate, timeout=WAIT_S, interval=0.1, what=what)
    except TimeoutError as exc:
        pytest.fail(f"{exc}\n{stack.explain()}")


@contextlib.contextmanager
def sqlite_write_lock(database: Path):
    """Hold SQLite's write lock on the receiver's database, as a backup or an operator's sqlite3 shell in a write
    transaction would: every writer of the receiver waits database.lock_timeout for it, then gives up."""
    conn = sqlite3.connect(database, isolation_level=None, timeout=WAIT_S)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


# --- the tests ------------------------------------------------------------------------------------------------------


def test_one_group_is_one_notification_and_resolves_alert_by_alert(stack):
    """Three warnings of one alertname on one service are one Alertmanager group: one webhook after group_wait, three
    stored alerts at L2, one message on the L2 channel. Resolving one sends a resolution notice for that one only;
    the snapshot that carries it (with the other two still firing) sends nothing else."""
    name, started = "E2eDiskFilling", now()
    pushed = {f"web-{i}:9100": alert(name, "warning", "checkout", f"web-{i}:9100", starts_at=started)
              for i in (1, 2, 3)}
    stack.alertmanager.push(*pushed.values())

    [message] = wait_for(stack, lambda: messages(stack, name), "the group's first message")
    # One webhook (sent again only if the receiver was too slow to answer: the same bytes) for the three alerts.
    assert len({e.body for e in webhooks(stack, name)}) == 1
    webhook = webhooks(stack, name)[-1]
    sent = webhook.json()
    assert webhook.status == 200 and webhook.headers["Authorization"] == f"Bearer {WEBHOOK_TOKEN}"
    assert sent["receiver"] == "alert-receiver-warning" and sent["status"] == "firing"
    assert sorted(a["labels"]["instance"] for a in sent["alerts"]) == sorted(pushed)
    assert (message["kind"], message["level"], message["channel"]) == ("firing", "L2", "l2")
    assert message["group_key"] == sent["groupKey"] and instances(message) == sorted(pushed)
    for item in message["alerts"]:
        assert item["status"] == "firing" and item["level"] == "L2" and item["ends_at"] is None
        assert item["labels"] == pushed[item["labels"]["instance"]]["labels"]
        assert parse_time(item["starts_at"]) == started

    records = stored(stack, name)
    assert sorted(records) == sorted(pushed)
    for instance, record in records.items():
        assert (record["status"], record["level"], record["severity"]) == ("firing", "L2", "warning")
        assert record["group_key"] == sent["groupKey"] and record["receiver"] == "alert-receiver-warning"
        assert record["fingerprint"] == next(a["fingerprint"] for a in sent["alerts"]
                                             if a["labels"]["instance"] == instance)
    assert {a["labels"]["instance"]: a["id"] for a in message["alerts"]} == {i: r["id"] for i, r in records.items()}

    gone = resolved(pushed["web-1:9100"])
    stack.alertmanager.push(gone)
    notice = wait_for(stack, lambda: [m for m in messages(stack, name) if m["kind"] == "resolved"],
                      "the resolution notice")[0]
    assert (notice["channel"], instances(notice)) == ("l2", ["web-1:9100"])
    assert notice["alerts"][0]["status"] == "resolved"
    snapshot = webhooks(stack, name)[-1].json()  # the group as Alertmanager saw it: one resolved, two firing
    assert sorted((a["labels"]["instance"], a["status"]) for a in snapshot["alerts"]) == [
        ("web-1:9100", "resolved"), ("web-2:9100", "firing"), ("web-3:9100", "firing")]

    records = stored(stack, name)
    assert records["web-1:9100"]["status"] == "resolved"
    assert parse_time(records["web-1:9100"]["ends_at"]) == parse_time(gone["endsAt"])
    assert [records[i]["status"] for i in ("web-2:9100", "web-3:9100")] == ["firing", "firing"]
    assert timeline(stack, records["web-1:9100"]["id"]).count("received") == 1
    assert [(n["kind"], n["channel"], n["status"], len(n["alert_ids"]))
            for n in notifications(stack, [r["id"] for r in records.values()])] == [
        ("firing", "l2", "sent", 3), ("resolved", "l2", "sent", 1)]
    assert [m["kind"] for m in messages(stack, name)] == ["firing", "resolved"]


def test_critical_inhibits_the_same_warning_until_it_resolves(stack):
    """A critical inhibits the warning of the same alertname, service and instance (alertmanager.yml's inhibit
    rule): Alertmanager leaves it out of its group's webhook while the critical fires, so the receiver never stores
    or pages it; the warning of another instance in the same group goes through. When the critical resolves, the
    receiver sends its resolution notice, and Alertmanager delivers the warning it held back."""
    name, started = "E2eHighErrorRate", now()
    critical = alert(name, "critical", "search", "search-1:8080", starts_at=started)
    stack.alertmanager.push(critical)
    [page] = wait_for(stack, lambda: messages(stack, name), "the critical's page")
    assert (page["kind"], page["level"], page["channel"], instances(page)) == ("firing", "L1", "l1", ["search-1:8080"])

    inhibited = alert(name, "warning", "search", "search-1:8080", starts_at=started)
    sibling = alert(name, "warning", "search", "search-2:8080", starts_at=started)  # another instance: not inhibited
    stack.alertmanager.push(inhibited, sibling)
    [warning] = wait_for(stack, lambda: [m for m in messages(stack, name) if m["level"] == "L2"],
                         "the warning group's message")
    assert (warning["kind"], warning["channel"], instances(warning)) == ("firing", "l2", ["search-2:8080"])
    # Alertmanager, not the receiver, left it out: the warning group's webhook never carried it.
    warning_webhooks = {e.body for e in webhooks(stack, name) if e.json()["receiver"] == "alert-receiver-warning"}
    assert [[a["labels"]["instance"] for a in json.loads(w)["alerts"]] for w in warning_webhooks] == [["search-2:8080"]]
    critical_record = stored(stack, name, severity="critical")["search-1:8080"]
    state = next(a["status"] for a in stack.alertmanager.alerts() if a["labels"] == inhibited["labels"])
    assert state["state"] == "suppressed" and state["inhibitedBy"] == [critical_record["fingerprint"]]
    assert sorted(stored(stack, name, severity="warning")) == ["search-2:8080"]

    stack.alertmanager.push(resolved(critical))
    wait_for(stack, lambda: {(m["kind"], m["level"]) for m in messages(stack, name)
                             if instances(m) == ["search-1:8080"]} >= {("resolved", "L1"), ("firing", "L2")},
             "the critical's resolution notice and the warning it held back")
    by_kind = {(m["kind"], m["channel"]): m for m in messages(stack, name)}
    assert sorted(by_kind) == [("firing", "l1"), ("firing", "l2"), ("resolved", "l1")]
    notice = by_kind["resolved", "l1"]
    assert instances(notice) == ["search-1:8080"] and notice["alerts"][0]["labels"]["severity"] == "critical"
    [released] = [m for m in messages(stack, name) if m["level"] == "L2" and instances(m) == ["search-1:8080"]]
    assert released["alerts"][0]["labels"] == inhibited["labels"]

    assert stored(stack, name, severity="critical")["search-1:8080"]["status"] == "resolved"
    warnings = stored(stack, name, severity="warning")
    assert {i: (w["status"], w["level"]) for i, w in warnings.items()} == {
        "search-1:8080": ("firing", "L2"), "search-2:8080": ("firing", "L2")}


def test_alertmanager_retries_after_the_receiver_answers_503(stack):
    """While the receiver cannot write (SQLite locked by someone else) it answers 503 with Retry-After, and stores
    nothing. Alertmanager retries the same bytes; once the lock is gone the next attempt is stored: one alert, one
    `received`, one page, however many attempts it took."""
    name = "E2eCheckoutDown"
    pushed = alert(name, "critical", "checkout", "checkout-1:8080", starts_at=now())
    with sqlite_write_lock(stack.database):
        stack.alertmanager.push(pushed)
        wait_for(stack, lambda: len([e for e in webhooks(stack, name) if e.status == 503]) >= 2,
                 "two 503 answers from the locked receiver")
        assert messages(stack, name) == []
    wait_for(stack, lambda: any(e.status == 200 for e in webhooks(stack, name)), "the retry that is stored")
    [page] = wait_for(stack, lambda: messages(stack, name), "the page")

    attempts = webhooks(stack, name)
    assert [e.status for e in attempts][-1] == 200 and {e.status for e in attempts[:-1]} == {503}, (
        [e.status for e in attempts])
    assert len({e.body for e in attempts}) == 1, "Alertmanager's retries are byte-identical"
    refusal = attempts[0]
    assert refusal.response_headers.get("Retry-After")
    assert json.loads(refusal.response)["error"] == "storage_unavailable"

    assert (page["kind"], page["level"], page["channel"]) == ("firing", "L1", "l1")
    assert instances(page) == ["checkout-1:8080"]
    [record] = stored(stack, name).values()
    assert (record["status"], record["level"]) == ("firing", "L1")
    assert timeline(stack, record["id"]).count("received") == 1
    assert [(n["kind"], n["channel"], n["status"], n["attempts"]) for n in notifications(stack, [record["id"]])] == [
        ("firing", "l1", "sent", 1)]
    assert len(messages(stack, name)) == 1
