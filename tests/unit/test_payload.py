"""payload.parse: genuine captures in, typed alerts out; every malformed body named precisely."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from receiver.domain import fingerprint
from receiver.payload import PayloadError, parse

from ..support.fixtures import captures, raw, raw_bodies


@pytest.mark.parametrize("name", sorted(raw_bodies()))
def test_every_genuine_body_parses_with_its_fingerprints(name):
    body = raw_bodies()[name]
    parsed = parse(body)
    doc = json.loads(body)
    assert len(parsed.alerts) == len(doc["alerts"])
    for alert, wire in zip(parsed.alerts, doc["alerts"]):
        assert alert.fingerprint == wire["fingerprint"] == fingerprint(wire["labels"])
        assert alert.starts_at.tzinfo is dt.timezone.utc
        # Firing alerts carry Alertmanager's zero time: that means "no end".
        assert (alert.ends_at is None) == (wire["status"] == "firing")


def test_nine_fractional_digits_are_kept_to_the_microsecond():
    alert = parse(raw("a_single_firing")).alerts[0]
    assert alert.starts_at == dt.datetime(2026, 11, 23, 8, 9, 16, 782977, tzinfo=dt.timezone.utc)


def test_offsets_are_normalised_to_utc():
    doc = json.loads(raw("a_single_firing"))
    doc["alerts"][0]["startsAt"] = "2026-11-23T10:09:16.5+02:00"
    assert parse(json.dumps(doc).encode()).alerts[0].starts_at == dt.datetime(2026, 11, 23, 8, 9, 16, 500000,
                                                                              tzinfo=dt.timezone.utc)


def test_truncated_and_group_fields():
    parsed = parse(raw("e_max_alerts_truncated"))
    assert parsed.truncated_alerts == 7
    assert parsed.receiver == "search\\.team\\+webhook"
    assert parsed.group_key.startswith("{}")


def _doc(**changes):
    doc = json.loads(raw("a_single_firing"))
    doc.update(changes)
    return doc


def _alert(**changes):
    alert = dict(_doc()["alerts"][0])
    alert.update(changes)
    return json.dumps(_doc(alerts=[alert])).encode()


@pytest.mark.parametrize("body, status, reason, path", [
    (b"", 400, "malformed_json", ""),
    (b"{", 400, "malformed_json", ""),
    (b"\xc3\x28", 400, "malformed_json", ""),
    (b"[" * 100000 + b"]" * 100000, 400, "malformed_json", ""),  # nesting past the parser limit
    (b'"a string"', 422, "invalid_payload", ""),
    (json.dumps(_doc(version="5")).encode(), 422, "unsupported_version", "version"),
    (json.dumps(_doc(version=4)).encode(), 422, "invalid_payload", "version"),
    (json.dumps({"version": "4"}).encode(), 422, "invalid_payload", "alerts"),
    (json.dumps(_doc(alerts="none")).encode(), 422, "invalid_payload", "alerts"),
    (json.dumps(_doc(truncatedAlerts=-1)).encode(), 422, "invalid_payload", "truncatedAlerts"),
    (_alert(startsAt="2026-13-01T00:00:00Z"), 422, "invalid_payload", "alerts[0].startsAt"),
    (_alert(startsAt="2026-11-23 08:00"), 422, "invalid_payload", "alerts[0].startsAt"),
    (_alert(startsAt=None), 422, "invalid_payload", "alerts[0].startsAt"),
    (_alert(status="pending"), 422, "invalid_payload", "alerts[0].status"),
    (_alert(labels={"a": ["b"]}), 422, "invalid_payload", "alerts[0].labels.a"),
    (_alert(labels=None), 422, "invalid_payload", "alerts[0].labels"),
    (_alert(fingerprint="not-hex!"), 422, "invalid_payload", "alerts[0].fingerprint"),
], ids=["empty", "truncated-json", "invalid-utf8", "deeply-nested", "json-string", "version-5", "version-number",
        "no-alerts", "alerts-not-list", "negative-truncated", "month-13", "no-zone", "starts-null", "pending-status",
        "label-list", "labels-null", "bad-fingerprint"])
def test_bad_bodies_are_refused_with_status_reason_and_path(body, status, reason, path):
    with pytest.raises(PayloadError) as info:
        parse(body)
    assert (info.value.status, info.value.reason, info.value.path) == (status, reason, path)


def test_resolved_alert_without_end_takes_its_start():
    alert = parse(_alert(status="resolved", endsAt="0001-01-01T00:00:00Z")).alerts[0]
    assert alert.ends_at == alert.starts_at


def test_captures_cover_both_statuses():
    statuses = {a["status"] for c in captures() for a in c["body"]["alerts"]}
    assert statuses == {"firing", "resolved"}
