"""ack_silence: an ack on such a route records a silence intent in its own transaction; the engine's silence pass
creates it in every configured Alertmanager (matchers = the alert's labels, endsAt = the ack's expiry or
reconcile.ack_silence_ttl), stores its id, retries failures, and expires it once the ack ends — by unack, expiry or
any resolution. Alertmanager is faked with `responses`; the database is real (both backends)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
import responses
from prometheus_client import CollectorRegistry

from receiver.alertmanager_api import AlertmanagerClient
from receiver.app import create_app
from receiver.engine import lifecycle, silences
from receiver.store import ack_silences as silence_store

from ..engine.harness import Ladder
from ..support.fixtures import raw

AM = "http://am.test:9093"
CHANNELS = {"chat": {"type": "log"}, "pager": {"type": "log"}}


@pytest.fixture
def lad(make_config, clock):
    config = make_config(channels=CHANNELS, reconcile={"alertmanagers": [AM], "ack_silence_ttl": "4h"}, routes=[
        {"name": "quiet", "matchers": ['team="quiet"'], "ack_silence": False},
        {"levels": {"L3": ["chat"], "L2": ["chat"], "L1": ["pager"]}, "ack_silence": True}])
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    ladder = Ladder(app.test_client(), app.extensions["alert_receiver"].db, config, clock)
    yield ladder
    ladder.close()
    app.extensions["alert_receiver"].db.dispose()


def only_alert(lad: Ladder) -> dict:
    [alert] = lad.client.get("/api/v1/alerts").get_json()["alerts"]
    return alert


def rows(lad: Ladder, alert_id: int) -> list:
    with lad.db.connect() as conn:
        return silence_store.of_alert(conn, alert_id)


def run(lad: Ladder) -> silences.SilenceResult:
    return silences.run_once(lad.writes, lad.config, AlertmanagerClient(requests.Session(), timeout=2), lad.clock.now())


def test_ack_creates_a_silence_and_unack_expires_it(lad):
    lad.post("a_single_firing")
    alert = only_alert(lad)
    assert lad.client.post(f"/api/v1/alerts/{alert['id']}/ack", json={"actor": "alice"}).status_code == 200
    [row] = rows(lad, alert["id"])
    assert (row.state, row.silence_id, row.alertmanager) == ("pending", None, AM)  # an intent: no HTTP in the request

    with responses.RequestsMock() as rsps:
        rsps.post(f"{AM}/api/v2/silences", json={"silenceID": "0b5e9e77-1111-4000-8000-00000000abcd"})
        assert run(lad).created == 1
        sent = json.loads(rsps.calls[0].request.body)
    labels = json.loads(raw("a_single_firing"))["alerts"][0]["labels"]
    assert sent["matchers"] == [{"name": k, "value": v, "isRegex": False, "isEqual": True}
                                for k, v in sorted(labels.items())]
    ends = dt.datetime.fromisoformat(sent["endsAt"].replace("Z", "+00:00"))
    assert ends == lad.clock.now() + dt.timedelta(hours=4) and sent["createdBy"] == "alert-receiver"
    [row] = rows(lad, alert["id"])
    assert (row.state, row.silence_id) == ("active", "0b5e9e77-1111-4000-8000-00000000abcd")

    with responses.RequestsMock():  # nothing to do: no call at all
        assert run(lad) == silences.SilenceResult()

    assert lad.client.post(f"/api/v1/alerts/{alert['id']}/unack", json={"actor": "alice"}).status_code == 200
    with responses.RequestsMock() as rsps:
        rsps.delete(f"{AM}/api/v2/silence/0b5e9e77-1111-4000-8000-00000000abcd")
        assert run(lad).expired == 1
    [row] = rows(lad, alert["id"])
    assert (row.state, row.next_attempt_at) == ("expired", None)


def test_an_ack_ttl_is_the_silence_length_and_resolution_expires_it(lad):
    lad.post("a_single_firing")
    alert = only_alert(lad)
    lad.client.post(f"/api/v1/alerts/{alert['id']}/ack", json={"actor": "bob", "ttl": "30m"})
    with responses.RequestsMock() as rsps:
        rsps.post(f"{AM}/api/v2/silences", json={"silenceID": "s-1"})
        run(lad)
        ends = json.loads(rsps.calls[0].request.body)["endsAt"]
    assert dt.datetime.fromisoformat(ends.replace("Z", "+00:00")) == lad.clock.now() + dt.timedelta(minutes=30)
    lad.post("g_routing_critical")  # unrelated group: its silence is not touched
    doc = json.loads(raw("a_single_firing"))
    doc["status"] = doc["alerts"][0]["status"] = "resolved"
    doc["alerts"][0]["endsAt"] = (lad.clock.now() + dt.timedelta(minutes=1)).isoformat()
    lad.clock.advance(120)
    lad.post(doc)  # Alertmanager resolves it: the ack (and so the silence) ends with it
    with responses.RequestsMock() as rsps:
        # Alertmanager answers a second expiry with 500 "already expired": checked, and taken as done.
        rsps.delete(f"{AM}/api/v2/silence/s-1", status=500, body="silence s-1 already expired")
        rsps.get(f"{AM}/api/v2/silence/s-1", json={"id": "s-1", "status": {"state": "expired"}})
        assert run(lad).expired == 1
    assert [r.state for r in rows(lad, alert["id"])] == ["expired"]


def test_failures_are_retried_with_backoff_and_an_ack_undone_first_needs_no_call(lad):
    lad.post("a_single_firing")
    alert = only_alert(lad)
    lad.client.post(f"/api/v1/alerts/{alert['id']}/ack", json={"actor": "carol"})
    with responses.RequestsMock() as rsps:
        rsps.post(f"{AM}/api/v2/silences", status=503, body="unavailable")
        assert run(lad).retries == 1
    [row] = rows(lad, alert["id"])
    assert (row.state, row.attempts) == ("pending", 1) and "503" in row.last_error
    with responses.RequestsMock():  # not due yet (5 s backoff): no call
        run(lad)
    lad.clock.advance(6)
    with responses.RequestsMock() as rsps:
        rsps.post(f"{AM}/api/v2/silences", json={"silenceID": "s-2"})
        assert run(lad).created == 1

    lad.client.post(f"/api/v1/alerts/{alert['id']}/unack", json={"actor": "carol"})
    lad.client.post(f"/api/v1/alerts/{alert['id']}/ack", json={"actor": "carol"})  # a new ack: a new silence
    lad.client.post(f"/api/v1/alerts/{alert['id']}/resolve", json={"actor": "carol"})  # … ended before it was made
    with responses.RequestsMock() as rsps:
        rsps.delete(f"{AM}/api/v2/silence/s-2")
        result = run(lad)
    assert (result.cancelled, result.expired, result.created) == (1, 1, 0)
    assert [r.state for r in rows(lad, alert["id"])] == ["expired", "cancelled"]


def test_routes_without_ack_silence_and_mirrored_acks_record_nothing(lad):
    doc = json.loads(raw("a_single_firing"))
    doc["alerts"][0]["labels"]["team"] = "quiet"
    doc["alerts"][0].pop("fingerprint", None)
    lad.post(doc)
    alert = only_alert(lad)
    lad.client.post(f"/api/v1/alerts/{alert['id']}/ack", json={"actor": "dave"})
    assert rows(lad, alert["id"]) == []

    lad.post("g_routing_critical")  # the default route (ack_silence), acked by the reconciler mirroring a silence
    [other] = [a for a in lad.client.get("/api/v1/alerts").get_json()["alerts"] if a["id"] != alert["id"]]
    done = lifecycle.ack(lad.writes, lad.config, [other["id"]], actor="alertmanager-silence", now=lad.clock.now(),
                         ack_silence=False)
    assert done.changed == [other["id"]] and rows(lad, other["id"]) == []


def test_ack_silence_without_an_alertmanager_is_a_config_error(make_config):
    from receiver.config import ConfigError

    with pytest.raises(ConfigError, match=r"routes\[0\]\.ack_silence.*reconcile\.alertmanagers"):
        make_config(routes=[{"levels": {"L1": ["log"]}, "ack_silence": True}])
