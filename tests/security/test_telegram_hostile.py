"""POST /integrations/telegram under hostile input: whoever lacks the secret token is refused before the body is
read; with it, oversized, non-JSON, deeply nested and oddly shaped bodies and over-long callback data are 4xx or
an answered no-op, never a 5xx and never a change; and neither the webhook secret nor the bot token shows in an
answer or a log line."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, strategies as st

from receiver.logs import JsonFormatter
from receiver.web import telegram_webhook

from ..web.test_telegram_webhook import SECRET, TOKEN, firing, post, tg_client, update  # noqa: F401 (fixture)
from .conftest import HYPOTHESIS


def acked(client, alert_id: int) -> bool:
    return client.get(f"/api/v1/alerts/{alert_id}").get_json()["acked"]


def test_an_oversized_body_is_413_and_unauthenticated_ones_401(tg_client):  # noqa: F811
    big = b'{"update_id": 1, "pad": "' + b"x" * (telegram_webhook.MAX_BODY + 1) + b'"}'
    resp = post(tg_client, big)
    assert resp.status_code == 413 and resp.get_json()["error"] == "body_too_large"
    assert post(tg_client, big, secret="wrong").status_code == 401  # refused before the body is looked at


@pytest.mark.parametrize("body", [b"", b"{not json", b"\xff\xfe", b"[]", b'"x"', b"null", b"{}",
                                  b'{"update_id": "1"}', b'{"update_id": true}', b'{"update_id": 1.5}',
                                  b'{"update_id": 99999999999999999999999}'],
                         ids=["empty", "not-json", "not-utf8", "list", "string", "null", "no-update-id",
                              "update-id-string", "update-id-bool", "update-id-float", "update-id-huge"])
def test_a_body_that_is_not_an_update_is_400(tg_client, body):  # noqa: F811
    resp = post(tg_client, body)
    assert resp.status_code == 400 and resp.get_json()["error"] == "malformed_update"


@pytest.mark.parametrize("depth", [1000, 30_000])  # 30,000 levels: 150 kB, under MAX_BODY
def test_deeply_nested_json_is_refused_not_crashed(tg_client, depth):  # noqa: F811
    for body in (b"[" * depth + b"]" * depth, b'{"update_id": 1, "callback_query": ' + b'{"a":' * depth + b"1"
                 + b"}" * depth + b"}"):
        assert post(tg_client, body).status_code in (200, 400)


QUERIES = {  # callback_query → the status it must get
    "not-an-object": ("x", 400),
    "no-id": ({"from": {"id": 1}, "data": "ack:alert:1"}, 400),
    "id-number": ({"id": 7, "from": {"id": 1}, "data": "ack:alert:1"}, 400),
    "id-too-long": ({"id": "q" * 257, "from": {"id": 1}, "data": "ack:alert:1"}, 400),
    "no-from": ({"id": "q", "data": "ack:alert:1"}, 400),
    "from-id-string": ({"id": "q", "from": {"id": "1"}, "data": "ack:alert:1"}, 400),
    "no-message": ({"id": "q", "from": {"id": 1}, "data": "ack:alert:1"}, 200),
    "data-object": ({"id": "q", "from": {"id": 1}, "data": {"a": 1}}, 200),
}


@pytest.mark.parametrize("name", QUERIES)
def test_callback_queries_of_the_wrong_shape_change_nothing(tg_client, name):  # noqa: F811
    [a] = firing(tg_client)
    query, status = QUERIES[name]
    resp = post(tg_client, json.dumps({"update_id": 5, "callback_query": query}).encode())
    assert resp.status_code == status, (resp.status_code, resp.data[:200])
    assert not acked(tg_client, a["id"])


@pytest.mark.parametrize("data", [f"ack:alert:{'1' * 62}", "ack:alert:1" + " " * 60, "ack:alert:1" * 1000,
                                  "ack:alert:1\x00", "ack:alert:\u0661"], ids=["65-bytes", "padded", "10k",
                                                                                  "nul", "arabic-digit"])
def test_over_long_or_odd_callback_data_is_answered_and_changes_nothing(tg_client, data):  # noqa: F811
    [a] = firing(tg_client)
    resp = post(tg_client, update(data))
    assert resp.status_code == 200 and "not one alert-receiver understands" in resp.get_json()["text"]
    assert not acked(tg_client, a["id"])


@HYPOTHESIS
@given(document=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                             lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                          max_size=4), max_leaves=20),
       data=st.text(max_size=80))
def test_any_signed_json_is_2xx_or_4xx(tg_client, document, data):  # noqa: F811
    for body in ({"update_id": 1, "callback_query": document},
                 {"update_id": 2, "callback_query": {"id": "q", "from": {"id": 1}, "data": data, "message": document}},
                 document):
        resp = post(tg_client, json.dumps(body).encode())
        assert resp.status_code in (200, 400), (resp.status_code, resp.data[:300])


def test_every_configured_secret_is_compared_in_constant_time(monkeypatch):
    calls = []
    real = telegram_webhook.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(telegram_webhook.hmac, "compare_digest", spy)

    class Settings:
        def __init__(self, secret):
            self.webhook_secret = type("S", (), {"reveal": lambda _: secret})()

    channels = [("one", Settings("first-secret")), ("two", Settings("second-secret")), ("three", Settings("x"))]
    assert [n for n, _ in telegram_webhook.matching("first-secret", channels)] == ["one"]
    assert len(calls) == 3 and all(len(a) == len(b) == 32 for a, b in calls)  # digests: no length to time


def test_no_secret_in_answers_or_logs(tg_client, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    [a] = firing(tg_client)
    answers = [post(tg_client, update(f"ack:alert:{a['id']}"), secret=s) for s in (None, "wrong", SECRET[:-1])]
    answers += [post(tg_client, update(d)) for d in (f"ack:alert:{a['id']}", "bogus", f"resolve:alert:{a['id']}")]
    answers += [post(tg_client, b"{not json"), post(tg_client, b"x" * (telegram_webhook.MAX_BODY + 10))]
    texts = [r.get_data(as_text=True) + str(dict(r.headers)) for r in answers]
    texts += [caplog.text, "\n".join(JsonFormatter().format(r) for r in caplog.records)]
    texts.append(tg_client.get("/metrics").get_data(as_text=True))
    for text in texts:
        for secret in (SECRET, TOKEN, TOKEN.split(":")[1]):
            assert secret not in text
