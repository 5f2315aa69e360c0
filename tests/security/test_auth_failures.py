"""Issue #15, finding 10: failed authentication was silent and unthrottled (1,000 wrong tokens in under 3 s).

Now every failure is counted (alert_receiver_auth_failures_total{kind, reason}: never the token or the address),
logged once per source and window, and a source past the limit gets 429 with Retry-After until its window ends,
whatever it presents; the right token from another source still works."""

from __future__ import annotations

import base64
import datetime as dt
import logging

import pytest

from ..dashboard.support import csrf_of
from .conftest import TOKENS, bearer

ATTACKER = {"REMOTE_ADDR": "203.0.113.7"}
COLLEAGUE = {"REMOTE_ADDR": "198.51.100.9"}
GUESSES = 200


def failures(app, kind: str, reason: str) -> float:
    value = app.extensions["alert_receiver"].metrics.registry.get_sample_value(
        "alert_receiver_auth_failures_total", {"kind": kind, "reason": reason})
    return value or 0.0


def auth_log(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "receiver.auth"]


def guess(client, i: int, source=ATTACKER, path="/api/v1/alerts"):
    return client.get(path, headers=bearer(f"guess-{i:04d}"), environ_base=source)


def test_a_source_guessing_tokens_is_throttled_and_the_right_token_elsewhere_still_works(secured_app, caplog):
    caplog.set_level(logging.INFO, logger="receiver.auth")
    client = secured_app.test_client()
    statuses = [guess(client, i).status_code for i in range(GUESSES)]
    assert statuses[0] == 401 and 429 in statuses, statuses[:40]
    limit = statuses.index(429)
    assert 3 <= limit <= 50 and set(statuses[:limit]) == {401} and set(statuses[limit:]) == {429}
    # Blocked, the source gets 429 even with the right token: it learns nothing more until the window ends.
    blocked = client.get("/api/v1/alerts", headers=bearer(TOKENS["read"]), environ_base=ATTACKER)
    assert blocked.status_code == 429 and blocked.get_json()["error"] == "too_many_auth_failures"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 3600
    # Another source, the right token: served.
    assert client.get("/api/v1/alerts", headers=bearer(TOKENS["read"]), environ_base=COLLEAGUE).status_code == 200
    assert failures(secured_app, "bearer", "invalid") == limit
    assert failures(secured_app, "bearer", "throttled") == GUESSES - limit + 1
    # One log line for the source and window, naming it; not one per failure.
    lines = auth_log(caplog)
    assert len(lines) == 1 and lines[0].source == "203.0.113.7" and lines[0].kind == "bearer"
    exposition = client.get("/metrics").get_data(as_text=True)
    assert "203.0.113.7" not in exposition and "guess-" not in exposition


def test_the_throttle_ends_with_its_window_and_the_next_window_logs_again(secured_app, clock, caplog):
    caplog.set_level(logging.INFO, logger="receiver.auth")
    client = secured_app.test_client()
    for i in range(GUESSES):
        guess(client, i)
    retry_after = int(guess(client, 0).headers["Retry-After"])
    clock.advance(retry_after - 1)
    assert guess(client, 1).status_code == 429
    clock.advance(1)
    assert client.get("/api/v1/alerts", headers=bearer(TOKENS["read"]), environ_base=ATTACKER).status_code == 200
    assert guess(client, 2).status_code == 401
    assert len(auth_log(caplog)) == 2


def test_basic_auth_failures_are_counted_as_basic(secured_app):
    client = secured_app.test_client()
    wrong = {"Authorization": "Basic " + base64.b64encode(b"am:wrong-password").decode()}
    assert client.post("/webhook", data=b"{}", content_type="application/json", headers=wrong,
                       environ_base=ATTACKER).status_code == 401
    assert failures(secured_app, "basic", "invalid") == 1


def test_a_request_without_credentials_is_no_failure(secured_app):
    client = secured_app.test_client()
    for _ in range(GUESSES):
        assert client.get("/api/v1/alerts", environ_base=ATTACKER).status_code == 401
    assert failures(secured_app, "bearer", "invalid") == 0 and failures(secured_app, "basic", "invalid") == 0


def test_wrong_tokens_at_the_sign_in_form_are_throttled_too(secured_app, caplog):
    caplog.set_level(logging.INFO, logger="receiver.auth")
    client = secured_app.test_client()
    csrf = csrf_of(client.get("/login", environ_base=ATTACKER).get_data(as_text=True))
    statuses = [client.post("/login", data={"csrf": csrf, "token": f"guess-{i}"}, environ_base=ATTACKER).status_code
                for i in range(GUESSES)]
    limit = statuses.index(429)
    assert set(statuses[:limit]) == {401} and set(statuses[limit:]) == {429}
    right = client.post("/login", data={"csrf": csrf, "token": TOKENS["read"]}, environ_base=ATTACKER)
    assert right.status_code == 429 and int(right.headers["Retry-After"]) >= 1
    assert failures(secured_app, "login", "invalid") == limit
    assert failures(secured_app, "login", "throttled") == GUESSES - limit + 1
    other = secured_app.test_client()
    csrf = csrf_of(other.get("/login", environ_base=COLLEAGUE).get_data(as_text=True))
    assert other.post("/login", data={"csrf": csrf, "token": TOKENS["read"]}, environ_base=COLLEAGUE).status_code == 303
    assert len(auth_log(caplog)) == 1


def test_the_tracked_sources_are_bounded():
    from receiver.web.throttle import FailureThrottle

    throttle = FailureThrottle(limit=3, window=dt.timedelta(minutes=1), max_sources=100)
    now = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)
    for i in range(10_000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}", now)
    assert len(throttle) == 100
    # The newest sources are the ones kept: one that keeps failing stays throttled.
    for _ in range(3):
        throttle.failed("203.0.113.7", now)
    for i in range(99):
        throttle.failed(f"10.1.0.{i}", now)
    assert throttle.retry_after("203.0.113.7", now) == 60


@pytest.mark.parametrize("source", ["", "x" * 10_000], ids=["empty", "long"])
def test_odd_sources_are_bounded_keys(source):
    from receiver.web.throttle import FailureThrottle

    throttle = FailureThrottle(limit=1, window=dt.timedelta(seconds=5), max_sources=10)
    now = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)
    throttle.failed(source, now)
    assert throttle.retry_after(source, now) == 5 and all(len(k) <= 100 for k in throttle.sources())
