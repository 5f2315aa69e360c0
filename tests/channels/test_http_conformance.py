"""One conformance suite that every HTTP channel runs: one POST with the channel's timeouts, 2xx accepted,
429/5xx retryable with Retry-After honoured, other 4xx permanent, connection trouble retryable — and no secret
(webhook URL, routing key, auth token, HMAC secret, header credentials) in an error or a log line."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import email.utils
import logging
import socket
import traceback
from typing import Callable

import pytest
import requests
import time_machine

from receiver.channels.base import DeliveryError

from ..support.messages import make_message
from .conftest import (GCHAT_KEY, GCHAT_POST_URL, GCHAT_TOKEN, GCHAT_URL, HOOK_AUTH, HOOK_SECRET, HOOK_URL,
                       MATTERMOST_URL, PD_KEY, SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_URL, TEAMS_URL,
                       TWILIO_SID, TWILIO_TOKEN)

from .conftest import TELEGRAM_TOKEN, TELEGRAM_WEBHOOK_SECRET  # telegram's case

T0 = dt.datetime(2026, 11, 23, 9, 0, 0, tzinfo=dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class HttpCase:
    kind: str
    url: str  # where the channel POSTs
    ok_status: int  # what the provider answers on success
    secrets: tuple[str, ...]  # must never show in an error or a log
    pointed_at: Callable[[str], dict]  # settings that send the channel to another base URL
    ok_body: str = "ok"  # what the provider answers on success (a Web API answers JSON that says ok)

    def __str__(self) -> str:
        return self.kind


CASES = [
    HttpCase("slack", SLACK_URL, 200, (SLACK_URL, "leak-slack-webhook-secret"),
             lambda base: {"webhook_url": f"{base}/services/T000/B000/leak-slack-webhook-secret"}),
    HttpCase("pagerduty", "https://events.pagerduty.com/v2/enqueue", 202, (PD_KEY,),
             lambda base: {"url": f"{base}/v2/enqueue"}),
    HttpCase("twilio_sms", f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_SID}/Messages.json", 201,
             (TWILIO_TOKEN, base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()),
             lambda base: {"api_url": base}),
    HttpCase("msteams", TEAMS_URL, 202, (TEAMS_URL, "leak-teams-webhook-secret"),
             lambda base: {"webhook_url": f"{base}/webhookb2/leak-teams-webhook-secret"}),
    HttpCase("webhook", HOOK_URL, 200, (HOOK_SECRET, HOOK_AUTH), lambda base: {"url": f"{base}/alerts"}),
    HttpCase("mattermost", MATTERMOST_URL, 200, (MATTERMOST_URL, "leak-mm-hook-secret-0123456789"),
             lambda base: {"webhook_url": f"{base}/hooks/leak-mm-hook-secret-0123456789"}),
    HttpCase("google_chat", GCHAT_POST_URL, 200, (GCHAT_URL, GCHAT_KEY, GCHAT_TOKEN),
             lambda base: {"api_url": base, "webhook_url": f"{base}{GCHAT_URL.split('.com', 1)[1]}"}),
    HttpCase("slack_app", "https://slack.com/api/chat.postMessage", 200, (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET),
             lambda base: {"api_url": base}, ok_body='{"ok": true, "channel": "C0123ABC", "ts": "1.000100"}'),
    HttpCase("telegram", f"https://api.telegram.org/bot{TELEGRAM_TOKEN}/sendMessage", 200,
             (TELEGRAM_TOKEN, TELEGRAM_TOKEN.split(":")[1], TELEGRAM_WEBHOOK_SECRET), lambda base: {"api_url": base},
             ok_body='{"ok": true, "result": {"message_id": 42, "chat": {"id": -1001234567890}}}'),
]
IDS = [c.kind for c in CASES]


def assert_no_secret(case: HttpCase, exc: DeliveryError, caplog) -> None:
    texts = {"reason": exc.reason, "str": str(exc), "repr": repr(exc),
             "traceback": "".join(traceback.format_exception(exc)), "logs": caplog.text}
    for secret in case.secrets:
        for where, text in texts.items():
            assert secret not in text, f"{case.kind}: secret in {where}: {text}"


def send_expecting_error(channel, message=None) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        channel.send(message or make_message())
    return info.value


@pytest.fixture(autouse=True)
def _debug_logs(caplog):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included, so that a leak would be captured


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_one_post_with_timeouts_and_no_redirects_2xx_accepted(case, make_channel, mock_http, caplog):
    mock_http.post(case.url, status=case.ok_status, body=case.ok_body)
    make_channel(case.kind, timeout="7s").send(make_message())
    assert len(mock_http.calls) == 1
    request = mock_http.calls[0].request
    assert request.method == "POST" and request.url == case.url
    assert request.req_kwargs["timeout"] == (7.0, 7.0)
    assert all(secret not in caplog.text for secret in case.secrets)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_redirect_is_not_followed(case, make_channel, mock_http):
    # A redirect would carry the body (and Twilio's credentials) elsewhere: it is a permanent error instead.
    mock_http.post(case.url, status=307, headers={"Location": "https://elsewhere.example.org/"})
    exc = send_expecting_error(make_channel(case.kind))
    assert exc.retryable is False and "HTTP 307" in exc.reason
    assert len(mock_http.calls) == 1


STATUS_CASES = [
    (500, True), (502, True), (503, True), (504, True), (429, True),
    (400, False), (401, False), (403, False), (404, False), (410, False),
]


@pytest.mark.parametrize("status,retryable", STATUS_CASES, ids=[str(s) for s, _ in STATUS_CASES])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_status_classification(case, status, retryable, make_channel, mock_http, caplog):
    # The provider's error body echoes every secret: the reason quotes the body, and must mask them.
    mock_http.post(case.url, status=status, body="error: " + " | ".join(case.secrets))
    exc = send_expecting_error(make_channel(case.kind))
    assert exc.retryable is retryable
    assert f"HTTP {status}" in exc.reason
    assert_no_secret(case, exc, caplog)


RETRY_AFTER_CASES = [
    (429, "120", 120.0),
    (503, "7", 7.0),
    (429, email.utils.format_datetime(T0 + dt.timedelta(seconds=90), usegmt=True), 90.0),
    (429, email.utils.format_datetime(T0 - dt.timedelta(seconds=90), usegmt=True), 0.0),  # already past
    (429, "soon", None),
    (400, "120", None),  # permanent: nothing to wait for
]


@pytest.mark.parametrize("status,header,seconds", RETRY_AFTER_CASES,
                         ids=["429-delta", "503-delta", "429-http-date", "429-date-past", "429-unreadable", "400"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_retry_after_is_honoured(case, status, header, seconds, make_channel, mock_http):
    mock_http.post(case.url, status=status, headers={"Retry-After": header})
    with time_machine.travel(T0, tick=False):
        exc = send_expecting_error(make_channel(case.kind))
    assert exc.retry_after == seconds


def _with_url(exc_type: type[requests.RequestException], case: HttpCase) -> requests.RequestException:
    # What requests really says: the URL (a secret for Slack and Teams) is in the message.
    return exc_type(f"HTTPSConnectionPool(host='x', port=443): Max retries exceeded with url: {case.url} "
                    f"(Caused by {' '.join(case.secrets)})")


FAILURES = [
    (requests.ConnectionError, "connection failed"),
    (requests.ConnectTimeout, "timed out connecting"),
    (requests.ReadTimeout, "timed out waiting for the response"),
    (requests.exceptions.SSLError, "TLS handshake failed"),
    (requests.exceptions.ChunkedEncodingError, "request failed"),
]


@pytest.mark.parametrize("exc_type,words", FAILURES, ids=[t.__name__ for t, _ in FAILURES])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_connection_failures_are_retryable_without_the_url(case, exc_type, words, make_channel, mock_http, caplog):
    mock_http.post(case.url, body=_with_url(exc_type, case))
    exc = send_expecting_error(make_channel(case.kind))
    assert exc.retryable is True
    assert words in exc.reason
    assert_no_secret(case, exc, caplog)


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return port  # nothing listens there now: a connection is refused at once


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_refused_connection_on_a_real_socket(case, make_channel, closed_port, caplog):
    # No `responses` here: requests and urllib3 really connect (to loopback), and log at DEBUG.
    channel = make_channel(case.kind, **case.pointed_at(f"https://127.0.0.1:{closed_port}"))
    exc = send_expecting_error(channel)
    assert exc.retryable is True
    assert "Connection refused" in exc.reason
    assert_no_secret(case, exc, caplog)
