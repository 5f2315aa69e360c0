"""The telegram channel: Bot API payloads as Telegram documents them (a root with an inline keyboard, replies in
its thread, an edit of the root, a digest), HTML that shows hostile values as written, Telegram's error answers
mapped to retryable or not, and the bot token (in the URL's path) never in an error or a log line."""

from __future__ import annotations

import json
import logging
import traceback
from html.parser import HTMLParser

import pytest
import requests
import yaml

from receiver.channels.base import DeliveryError
from receiver.channels.markup import plain
from receiver.channels.telegram import CALLBACK_DATA_LIMIT, TEXT_LIMIT, Callback, parse_callback_data, text_of
from receiver.channels.text import one_line
from receiver.config import ConfigError, load_config
from receiver.domain import ChatThread, Posted, Recipient

from ..security import test_message_markup as markup, test_secret_redaction as redaction
from ..support.messages import make_alert, make_message
from .conftest import TELEGRAM_TOKEN, TELEGRAM_WEBHOOK_SECRET

API = f"https://api.telegram.org/bot{TELEGRAM_TOKEN}"
CHAT = -1001234567890
GROUP = "0123456789abcdef"
THREAD = ChatThread(str(CHAT), "42")
SECRETS = (TELEGRAM_TOKEN, TELEGRAM_TOKEN.split(":")[1], TELEGRAM_WEBHOOK_SECRET)


def sent(mock_http, index: int = -1) -> tuple[str, dict]:
    """(Bot API method, JSON parameters) of a request the channel made."""
    request = mock_http.calls[index].request
    return request.url.rsplit("/", 1)[1], json.loads(request.body)


def ok(mock_http, method: str, result: dict | bool | None = None, **kw):
    mock_http.post(f"{API}/{method}", json={"ok": True, "result": result if result is not None else {
        "message_id": 42, "chat": {"id": CHAT, "type": "supergroup"}, "date": 1, "text": "x"}}, **kw)


def buttons(params: dict) -> list[tuple[str, str]]:
    return [(b["text"], b["callback_data"]) for row in params["reply_markup"]["inline_keyboard"] for b in row]


# --- payloads ------------------------------------------------------------------------------------------------


def test_a_root_message_has_the_keyboard_and_returns_its_ids(make_channel, mock_http):
    ok(mock_http, "sendMessage")
    posted = make_channel("telegram").send(make_message())
    assert posted == Posted(conversation=str(CHAT), root_id="42")
    method, params = sent(mock_http)
    assert method == "sendMessage" and params["chat_id"] == CHAT and params["parse_mode"] == "HTML"
    assert buttons(params) == [("Acknowledge", "ack:alert:1"), ("Resolve", "resolve:alert:1")]
    assert "reply_parameters" not in params and params["link_preview_options"] == {"is_disabled": True}
    assert params["text"].startswith("<b>[L1 FIRING] HighCPUUsage (1 alert)</b>\n")
    assert '<a href="https://alerts.example.org/alerts/1">details</a>' in params["text"]


def test_a_group_root_acts_on_the_group_with_callback_data_under_64_bytes(make_channel, mock_http):
    ok(mock_http, "sendMessage")
    make_channel("telegram").send(make_message(3, group_id=GROUP))
    pairs = buttons(sent(mock_http)[1])
    assert pairs == [("Acknowledge", f"ack:group:{GROUP}"), ("Resolve", f"resolve:group:{GROUP}")]
    for _, data in pairs:
        assert len(data.encode()) <= CALLBACK_DATA_LIMIT
        assert parse_callback_data(data).data == data


def test_callback_data_round_trip_and_refusals():
    assert parse_callback_data("ack:alert:17") == Callback("ack", alert_id=17)
    assert parse_callback_data(f"resolve:group:{GROUP}") == Callback("resolve", group_id=GROUP)
    for bad in (None, 17, "", "ack", "ack:alert:", "ack:alert:0", "ack:alert:-1", "ack:alert:1x", "unack:alert:1",
                "ack:group:XYZ", f"ack:group:{GROUP}0", "ack:alert:" + "9" * 40, "ACK:alert:1", "ack:alert:1\n"):
        assert parse_callback_data(bad) is None, bad


def test_a_reply_goes_into_the_thread_without_buttons(make_channel, mock_http):
    ok(mock_http, "sendMessage")
    assert make_channel("telegram").send(make_message(kind="escalated", level="L1", thread=THREAD)) is None
    method, params = sent(mock_http)
    assert method == "sendMessage" and params["chat_id"] == CHAT
    assert params["reply_parameters"] == {"message_id": 42, "allow_sending_without_reply": True}
    assert "reply_markup" not in params and "ESCALATED" in params["text"]


def test_an_update_edits_the_root_and_shows_who_acknowledged(make_channel, mock_http):
    ok(mock_http, "editMessageText")
    channel = make_channel("telegram")
    firing = make_message(2, kind="update", thread=THREAD, group_id=GROUP)
    assert channel.send(firing) is None
    method, params = sent(mock_http)
    assert method == "editMessageText" and params["chat_id"] == CHAT and params["message_id"] == 42
    assert [t for t, _ in buttons(params)] == ["Acknowledge", "Resolve"]
    assert params["text"].startswith("<b>[L1 FIRING]")

    acked = make_message((make_alert(1, acked_by="telegram:alice"), make_alert(2, acked_by="bob")), kind="update",
                         thread=THREAD, group_id=GROUP)
    channel.send(acked)
    params = sent(mock_http)[1]
    assert params["text"].startswith("<b>[L1 ACKNOWLEDGED]") and "Acknowledged by bob, telegram:alice" in params["text"]
    assert buttons(params) == [("Resolve", f"resolve:group:{GROUP}")]

    done = make_message((make_alert(1, status="resolved", ends_at=make_alert().starts_at.replace(minute=58)),),
                        kind="update", thread=THREAD)
    channel.send(done)
    params = sent(mock_http)[1]
    assert params["text"].startswith("<b>[L1 RESOLVED]") and "reply_markup" not in params  # the keyboard goes


def test_an_edit_that_changes_nothing_is_success(make_channel, mock_http):
    mock_http.post(f"{API}/editMessageText", status=400, json={
        "ok": False, "error_code": 400, "description": "Bad Request: message is not modified: specified new message "
                                                       "content and reply markup are exactly the same"})
    assert make_channel("telegram").send(make_message(kind="update", thread=THREAD)) is None


def test_a_digest_is_one_plain_top_level_message(make_channel, mock_http):
    ok(mock_http, "sendMessage")
    message = make_message(6, kind="repeat", digest_groups=4, group_key="")
    assert make_channel("telegram").send(message) is None
    method, params = sent(mock_http)
    assert method == "sendMessage" and params["chat_id"] == CHAT
    assert "reply_markup" not in params and "reply_parameters" not in params
    assert params["text"].startswith("<b>[L1 REPEAT] 4 groups still firing (6 alerts)</b>")


def test_the_person_paged_is_named_never_addressed(make_channel, mock_http):
    ok(mock_http, "sendMessage")
    make_channel("telegram").send(make_message(recipient=Recipient("alice", email="a@example.org", phone="+4915")))
    text = sent(mock_http)[1]["text"]
    assert "for alice" in text and "a@example.org" not in text and "+4915" not in text


def test_a_chat_by_username_is_sent_as_written(make_channel, mock_http):
    ok(mock_http, "sendMessage")
    make_channel("telegram", chat_id="@sre_alerts").send(make_message())
    assert sent(mock_http)[1]["chat_id"] == "@sre_alerts"


# --- HTML ------------------------------------------------------------------------------------------------------


class Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple]] = []
        self.open: list[str] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, tuple(attrs)))
        self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open.pop() == tag, f"unbalanced </{tag}>"

    def handle_data(self, data):
        self.text += data


HOSTILE = '<b>bold</b> & <a href="https://evil.example">Acknowledge</a> &amp; "q" \'s\' <tg-spoiler>'


def test_hostile_values_are_shown_as_written_never_as_markup(make_channel, mock_http):
    alert = make_alert(labels={"alertname": HOSTILE, "instance": HOSTILE, "severity": "critical"},
                       annotations={"summary": HOSTILE, "runbook_url": "javascript:alert(1)"},
                       url='https://alerts.example.org/alerts/1"><b>x</b>')
    ok(mock_http, "sendMessage")
    make_channel("telegram").send(make_message((alert,), recipient=Recipient(HOSTILE)))
    text = sent(mock_http)[1]["text"]
    parsed = Tags()
    parsed.feed(text)
    parsed.close()
    assert parsed.open == []
    assert {tag for tag, _ in parsed.tags} <= {"b", "a"}
    hrefs = [dict(attrs)["href"] for tag, attrs in parsed.tags if tag == "a"]
    assert all(h.startswith("https://alerts.example.org") for h in hrefs), hrefs  # no javascript:, no evil link
    assert parsed.text.count(HOSTILE) >= 3  # alertname, instance, summary (and the recipient): read as written
    assert "&amp;amp;" in text and "&lt;b&gt;" in text


def test_text_stays_under_4096_characters_in_whole_lines(make_channel, mock_http):
    alerts = tuple(make_alert(i, annotations={"summary": "<&>" * 400}) for i in range(1, 200))
    text = text_of(make_message(alerts, summary_over=500))
    assert len(text) <= TEXT_LIMIT
    parsed = Tags()
    parsed.feed(text)
    assert parsed.open == []
    assert "more (199 in all)" in text


# --- errors ----------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _debug_logs(caplog):
    caplog.set_level(logging.DEBUG)


def assert_no_secret(exc: DeliveryError, caplog) -> None:
    texts = [exc.reason, str(exc), repr(exc), "".join(traceback.format_exception(exc)), caplog.text]
    for secret in SECRETS:
        assert all(secret not in t for t in texts), secret


def error(make_channel, message=None) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        make_channel("telegram").send(message or make_message())
    return info.value


ERRORS = [  # (status, answer, retryable, retry_after, words in the reason)
    (429, {"error_code": 429, "description": "Too Many Requests: retry after 17", "parameters": {"retry_after": 17}},
     True, 17.0, "HTTP 429: Too Many Requests"),
    (502, {"error_code": 502, "description": "Bad Gateway"}, True, None, "HTTP 502"),
    (400, {"error_code": 400, "description": "Bad Request: chat not found"}, False, None, "chat not found"),
    (403, {"error_code": 403, "description": "Forbidden: bot was kicked from the supergroup chat"}, False, None,
     "bot was kicked"),
    (401, {"error_code": 401, "description": "Unauthorized"}, False, None, "HTTP 401"),
    (400, {"error_code": 400, "description": "Bad Request: group chat was upgraded to a supergroup chat",
           "parameters": {"migrate_to_chat_id": -1009999}}, False, None, "set chat_id to it"),
]


@pytest.mark.parametrize("status,answer,retryable,after,words", ERRORS, ids=[e[4][:20] for e in ERRORS])
def test_bot_api_errors_are_mapped(make_channel, mock_http, caplog, status, answer, retryable, after, words):
    mock_http.post(f"{API}/sendMessage", status=status, json={"ok": False, **answer})
    exc = error(make_channel)
    assert exc.retryable is retryable and exc.retry_after == after and words in exc.reason, exc.reason
    assert exc.reason.startswith("telegram sendMessage: ")
    assert_no_secret(exc, caplog)


def test_an_error_answer_that_echoes_the_token_and_url_is_masked(make_channel, mock_http, caplog):
    description = f"Not Found: {API}/sendMessage token {TELEGRAM_TOKEN} secret {TELEGRAM_TOKEN.split(':')[1]}"
    mock_http.post(f"{API}/sendMessage", status=404, json={"ok": False, "error_code": 404, "description": description})
    exc = error(make_channel)
    assert exc.retryable is False and "HTTP 404" in exc.reason and "Not Found" in exc.reason
    assert_no_secret(exc, caplog)


def test_a_connection_error_naming_the_url_says_the_method_only(make_channel, mock_http, caplog):
    mock_http.post(f"{API}/editMessageText",
                   body=requests.ConnectionError(f"Max retries exceeded with url: /bot{TELEGRAM_TOKEN}/editMessageText"))
    exc = error(make_channel, make_message(kind="update", thread=THREAD))
    assert exc.retryable is True and exc.reason.startswith("telegram editMessageText: connection failed")
    assert_no_secret(exc, caplog)


def test_a_2xx_without_ids_is_delivered_but_starts_no_thread(make_channel, mock_http, caplog):
    mock_http.post(f"{API}/sendMessage", json={"ok": True, "result": True})
    assert make_channel("telegram").send(make_message()) is None
    assert "without chat.id and message_id" in caplog.text


@pytest.mark.parametrize("at", ["straddling the cut", "inside the cut"])
@pytest.mark.parametrize("secret", [TELEGRAM_TOKEN, TELEGRAM_TOKEN.split(":")[1]], ids=["token", "token-secret"])
def test_error_bodies_are_redacted_before_they_are_cut(make_channel, mock_http, secret, at):
    redaction.test_http_error_bodies_are_redacted_before_they_are_cut(make_channel, mock_http, "telegram", secret, at)


# --- settings --------------------------------------------------------------------------------------------------


def config_error(tmp_path, **settings) -> str:
    channel = {"type": "telegram", "bot_token": TELEGRAM_TOKEN, "chat_id": CHAT, **settings}
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({"channels": {"tg": channel}, "routes": [{"levels": {"L1": ["tg"]}}]}))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    return str(info.value)


@pytest.mark.parametrize("secret", ["has space", "semi;colon", "x" * 257, "ümlaut"])
def test_a_webhook_secret_telegram_would_refuse_is_a_config_error(tmp_path, secret):
    text = config_error(tmp_path, webhook_secret=secret)
    assert "webhook_secret" in text and ("A-Z, a-z, 0-9, _ and -" in text), text
    if len(secret) > 3:
        assert secret not in text


@pytest.mark.parametrize("token", ["not-a-token", "123456:short", f"{TELEGRAM_TOKEN}/../x"])
def test_a_malformed_bot_token_is_a_config_error_that_does_not_show_it(tmp_path, token):
    text = config_error(tmp_path, bot_token=token)
    assert "bot_token" in text and "@BotFather" in text and token not in text


@pytest.mark.parametrize("chat_id", ["@ab", "general", "12a", 1.5])
def test_a_chat_id_must_be_numeric_or_a_username(tmp_path, chat_id):
    assert "numeric chat id" in config_error(tmp_path, chat_id=chat_id)
    assert "got a boolean" in config_error(tmp_path, chat_id=True)


def test_settings_defaults(make_channel):
    channel = make_channel("telegram", chat_id="-100123", api_url="http://127.0.0.1:8081/")
    assert channel.settings.chat_id == -100123 and channel.settings.api_url == "http://127.0.0.1:8081"
    assert channel.threads and channel.rate_limit.count == 20 and channel.rate_limit.per == 60
    assert channel.settings.timeout.total_seconds() == 10 and channel.repeat_digest is not None
    assert "ftp" in config_error_for_url()


def config_error_for_url() -> str:
    from receiver.channels.telegram import TelegramSettings
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        TelegramSettings.model_validate({"type": "telegram", "bot_token": TELEGRAM_TOKEN, "chat_id": 1,
                                         "api_url": "ftp://example.org"})
    return str(info.value)


def test_a_huge_link_is_left_out_not_the_alert(make_channel):
    alert = make_alert(annotations={"summary": "disk full", "runbook_url": "https://runbooks.example.org/" + "x" * 9000})
    text = text_of(make_message((alert,)))
    assert "disk full" in text and "runbooks.example.org" not in text and len(text) <= TEXT_LIMIT


@pytest.mark.parametrize("value", markup.HOSTILE.values(), ids=markup.HOSTILE.keys())
def test_the_shared_hostile_values_are_text_in_telegram_html(make_channel, mock_http, value):
    # The table every channel is held to (tests/security/test_message_markup.py), read as Telegram reads HTML.
    ok(mock_http, "sendMessage")
    make_channel("telegram").send(markup.hostile_message(value))
    text = sent(mock_http)[1]["text"]
    parsed = Tags()
    parsed.feed(text)
    parsed.close()
    assert parsed.open == [] and {tag for tag, _ in parsed.tags} <= {"b", "a"}
    for tag, attrs in parsed.tags:
        if tag == "a":
            assert list(dict(attrs)) == ["href"] and markup.HTTP_URL.fullmatch(dict(attrs)["href"]), attrs
    assert not markup.CONTROL.search(text)
    assert plain(one_line(value))[:50] in parsed.text  # the alertname, read as written
