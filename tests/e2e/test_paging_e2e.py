"""Routing to people through `alert-receiver serve` for real (gunicorn, the engine, the SQLite writer or PostgreSQL):
an L1 alert on a `schedule:` route reaches the on-call person's e-mail address through a real SMTP server (aiosmtpd)
and their phone through Twilio's Messages API, and the notifications record them; with nobody on shift the
schedule's fallback is paged and the alert's timeline says why.

serve runs in its own processes, where `responses` (which patches requests inside one process) cannot reach, so
the Twilio API is stood in for by the local HTTP sink (`api_url`), as every other provider in the e2e tests is: the
engine's real HTTP client posts the real form to it. tests/channels/test_recipient.py checks the same request
against `responses` in process. Every wait polls with a deadline."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
import requests
import yaml
from aiosmtpd.controller import Controller

from ..channels.test_email import Collector, free_port
from ..engine.harness import body_with
from ..support.fixtures import raw
from ..support.process import ReceiverProcess, wait_until

pytestmark = pytest.mark.e2e

SID = "AC0123456789abcdef"
TWILIO_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"


@pytest.fixture
def smtp():
    collector, port = Collector(), free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    yield collector, port
    controller.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/receiver.db"
    return request.getfixturevalue("pg_server").database_for(tmp_path, "paging")


@pytest.fixture
def receiver(tmp_path, database, sink, smtp):
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({
        "database": {"url": database},
        "people": {"alice": {"email": "alice@example.org", "phone": "+4915550001"},
                   "bob": {"email": "bob@example.org", "phone": "+4915550002"}},
        "schedules": {
            "primary-db": {"timezone": "Europe/Berlin", "rotations": [{"participants": ["alice"]}]},  # always alice
            # Its only rotation starts in 2099: nobody is on shift today.
            "nights": {"fallback": ["fallback-hook"],
                       "rotations": [{"participants": ["bob"], "length": "1w", "start": "2099-01-05"}]},
        },
        "channels": {
            "sms-oncall": {"type": "twilio_sms", "account_sid": SID, "auth_token": "twilio-token",
                           "from": "+15550000000", "api_url": sink.url},
            "email-oncall": {"type": "email", "smtp_host": "127.0.0.1", "smtp_port": smtp[1], "starttls": False,
                             "from": "alerts@example.org", "timeout": "5s"},
            "fallback-hook": {"type": "webhook", "url": f"{sink.url}/fallback"},
            "chat": {"type": "log"},
        },
        "routes": [
            {"matchers": ['team="nights"'], "levels": {"L1": [{"schedule": "nights", "via": ["sms-oncall"]}]}},
            {"levels": {"L1": [{"schedule": "primary-db", "via": ["sms-oncall", "email-oncall"]}],
                        "L2": ["chat"], "L3": ["chat"]}},
        ],
    }))
    started = ReceiverProcess(path, workers=2).start().wait_ready()
    yield started
    assert started.stop() == 0, started.log()


def post(receiver: ReceiverProcess, body: bytes) -> None:
    r = requests.post(receiver.url + "/webhook", data=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text


def notifications(receiver: ReceiverProcess) -> list[dict]:
    return requests.get(receiver.url + "/api/v1/notifications", timeout=10).json()["notifications"]


def test_a_schedule_route_pages_the_person_on_call_by_email_and_sms(receiver, sink, smtp):
    collector, _ = smtp
    post(receiver, raw("g_routing_critical"))  # severity critical: L1
    [text] = sink.wait_for(1, path=TWILIO_PATH)
    form = parse_qs(text.body.decode())
    assert form["To"] == ["+4915550001"] and form["From"] == ["+15550000000"]
    assert "L1 FIRING" in form["Body"][0]
    wait_until(lambda: collector.messages, timeout=30, what="the e-mail")
    [(mail_from, rcpt_tos, mail)] = collector.messages
    assert (mail_from, rcpt_tos, mail["To"]) == ("alerts@example.org", ["alice@example.org"], "alice@example.org")

    def recorded():
        found = {n["channel"]: n for n in notifications(receiver)}
        return all(found.get(c, {}).get("status") == "sent" for c in ("sms-oncall", "email-oncall")) and found

    found = wait_until(recorded, timeout=30, what="both messages recorded as sent")
    for channel in ("sms-oncall", "email-oncall"):
        assert (found[channel]["target"], found[channel]["person"], found[channel]["person_source"]) == (
            "schedule:primary-db", "alice", "rotation"), found[channel]
    alert_id = found["sms-oncall"]["alert_ids"][0]
    timeline = requests.get(f"{receiver.url}/api/v1/alerts/{alert_id}", timeout=10).json()["timeline"]
    assert {e["details"]["person"] for e in timeline if e["kind"] == "notified"} == {"alice"}


def test_nobody_on_shift_pages_the_fallback_and_the_timeline_says_why(receiver, sink):
    post(receiver, json.dumps(body_with("g_routing_critical", team="nights")).encode())
    [fallback] = sink.wait_for(1, path="/fallback")
    document = fallback.json()
    assert (document["kind"], document["level"], document["channel"]) == ("firing", "L1", "fallback-hook")
    assert "recipient" not in document  # the fallback is a plain channel: nobody in particular
    alert_id = document["alerts"][0]["id"]
    timeline = requests.get(f"{receiver.url}/api/v1/alerts/{alert_id}", timeout=10).json()["timeline"]
    [event] = [e for e in timeline if e["kind"] == "nobody_on_call"]
    assert event["details"]["schedule"] == "nights" and event["details"]["fallback"] == ["fallback-hook"]
    assert event["details"]["reason"].startswith("nobody on call for schedule nights at ")
    assert event["details"]["then"] == "paged the schedule's fallback instead: fallback-hook"
    [sms] = [n for n in notifications(receiver) if n["channel"] == "sms-oncall"]
    assert (sms["status"], sms["attempts"], sms["person"]) == ("dead", 0, None)
    assert sms["last_error"] == event["details"]["reason"]
    assert sink.ok(TWILIO_PATH) == []  # nobody was texted
    metrics = requests.get(receiver.url + "/metrics", timeout=10).text
    assert 'alert_receiver_oncall_unresolved_total{schedule="nights"} 1.0' in metrics
