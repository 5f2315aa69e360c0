"""The load generator is a fair stand-in for Alertmanager: its bodies have the shape of the genuine captures and
parse as they do, and it sends the same bytes again after a non-2xx answer or a refused connection until a 2xx."""

from __future__ import annotations

import json

import requests

from receiver.payload import parse

from ..support.fixtures import raw
from ..support.loadgen import LoadGenerator
from ..support.postgres import free_port
from ..support.process import wait_until


def test_bodies_have_the_shape_of_alertmanager_captures():
    body, fingerprints = LoadGenerator("http://127.0.0.1:1", alerts_per_group=3).body(7)
    ours, capture = json.loads(body), json.loads(raw("b_group_5_firing"))
    assert set(ours) == set(capture)
    assert set(ours["alerts"][0]) == set(capture["alerts"][0])
    assert ours["version"] == "4" and ours["alerts"][0]["endsAt"] == capture["alerts"][0]["endsAt"]
    payload = parse(body)
    assert [a.fingerprint for a in payload.alerts] == fingerprints and len(set(fingerprints)) == 3
    assert payload.group_key == '{}:{alertname="LoadGenCrash", group="7", service="loadgen-crash"}'


def test_retries_the_same_bytes_until_2xx(sink):
    sink.answer(503, 500, 429)
    load = LoadGenerator(sink.url, backoff_initial=0.01)
    body, fingerprints = load.body(1)
    assert load.post_until_acknowledged(requests.Session(), 1, body, fingerprints)
    got = sink.received
    assert [r.status for r in got] == [503, 500, 429, 200] and {r.body for r in got} == {body}
    assert load.acknowledged == set(fingerprints)


def test_a_refused_connection_is_retried_and_recorded_as_status_0():
    load = LoadGenerator(f"http://127.0.0.1:{free_port()}", senders=1, backoff_initial=0.01, timeout=1).start()
    wait_until(lambda: len(load.snapshot()[2]) >= 3, timeout=10, what="three attempts")
    load.stop(timeout=0)  # nothing will ever answer: abandon
    sent, acknowledged, attempts = load.snapshot()
    assert {a.status for a in attempts} == {0} and {a.group for a in attempts} == {1}  # the same group, again
    assert acknowledged == set() and set(sent) == set(load.body(1)[1])
