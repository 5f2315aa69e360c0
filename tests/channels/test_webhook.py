"""The generic webhook: docs/design.md's document exactly, every alert, HMAC over the exact body, extra headers."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import pytest

from receiver.channels.base import DeliveryError

from ..support.messages import T0, make_alert, make_message, message_from_capture
from .conftest import HOOK_AUTH, HOOK_SECRET, HOOK_URL


def test_the_exact_document_and_signature(make_channel, mock_http):
    mock_http.post(HOOK_URL, status=200)
    alerts = (make_alert(1), make_alert(2, status="resolved", ends_at=T0 - dt.timedelta(seconds=1, microseconds=5)))
    make_channel("webhook", name="audit-hook").send(make_message(alerts, channel="audit-hook", kind="escalated"))
    request = mock_http.calls[0].request
    body = request.body
    assert json.loads(body) == {
        "kind": "escalated",
        "level": "L1",
        "group_key": '{}:{alertname="HighCPUUsage", service="api-gateway"}',
        "channel": "audit-hook",
        "alerts": [{
            "id": i,
            "fingerprint": f"{i:016x}",
            "alertname": "HighCPUUsage",
            "status": status,
            "level": "L1",
            "labels": {"alertname": "HighCPUUsage", "instance": f"api-gw-{i}.internal:9100", "job": "node",
                       "service": "api-gateway", "severity": "critical", "team": "platform"},
            "annotations": {"summary": f"CPU usage above 90% on api-gw-{i}",
                            "description": "CPU usage has been above 90% for more than 5 minutes."},
            "starts_at": "2026-11-23T08:48:00.000000Z",
            "ends_at": ends_at,
        } for i, status, ends_at in [(1, "firing", None), (2, "resolved", "2026-11-23T08:59:58.999995Z")]],
    }
    expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert request.headers["X-Alert-Receiver-Signature"] == expected
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.headers["Authorization"] == HOOK_AUTH and request.headers["X-Team"] == "sre"


def test_no_signature_without_a_secret(make_channel, mock_http):
    mock_http.post(HOOK_URL, status=204)
    make_channel("webhook", hmac_secret=None, headers={}).send(make_message())
    assert "X-Alert-Receiver-Signature" not in mock_http.calls[0].request.headers


def test_every_alert_goes_out_no_summary(make_channel, mock_http):
    mock_http.post(HOOK_URL, status=200)
    make_channel("webhook").send(make_message(25, summary_over=20))
    assert [a["id"] for a in json.loads(mock_http.calls[0].request.body)["alerts"]] == list(range(1, 26))


def test_unicode_is_signed_as_sent(make_channel, mock_http):
    mock_http.post(HOOK_URL, status=200)
    make_channel("webhook").send(message_from_capture("f_unicode_special_chars"))
    request = mock_http.calls[0].request
    assert "Ωmega-Team 🚀".encode() in request.body  # UTF-8, not \\u escapes
    expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Alert-Receiver-Signature"] == expected


def test_408_is_retryable(make_channel, mock_http):
    mock_http.post(HOOK_URL, status=408)
    with pytest.raises(DeliveryError) as info:
        make_channel("webhook").send(make_message())
    assert info.value.retryable is True
