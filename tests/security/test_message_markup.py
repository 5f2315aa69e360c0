"""Issue #15, finding 8: labels, annotations and URLs are data, never markup. One table: each hostile value, put
everywhere an alert carries text or a link (alertname, labels, summary, description, runbook_url, generatorURL),
is sent through each of the seven channels, and the message that leaves is read the way its platform reads it:
Slack mrkdwn (mentions, <url|text> links), Teams markdown ([text](url) links, emphasis, lists), e-mail HTML (tags,
attributes, hrefs), and plain text (control characters) for the log, SMS and PagerDuty. The webhook is JSON:
its values must arrive exactly as they came."""

from __future__ import annotations

import email.message
import json
import logging
import re
import urllib.parse
from html.parser import HTMLParser

import pytest
import responses
from aiosmtpd.controller import Controller

from receiver.channels.registry import CHANNEL_CLASSES, SETTINGS_BY_TYPE
from receiver.logs import JsonFormatter, LogfmtFormatter
from receiver.render import Renderer

from ..channels.conftest import SETTINGS
from ..channels.conftest import http, make_channel, mock_http, renderer, template_errors  # noqa: F401 (fixtures)
from ..channels.test_email import Collector, free_port
from ..support.messages import RECEIVER_URL, make_alert, make_message

HOSTILE = {
    "slack mention": "<!channel> <@U123> <#C123>",
    "slack link": "<https://evil.example|Acknowledge>",
    "javascript URL": "javascript:alert(1)",
    "URL breaking out of a slack link": "https://ok.example/x|Acknowledge>",
    "URL breaking out of a markdown link": "https://ok.example/x) [Acknowledge](https://evil.example",
    "markdown link": "[Acknowledge](https://evil.example)",
    "markdown emphasis and list": "*bold* _it_ ~s~ `code`\n\n- item\n1. [Acknowledge](https://evil.example)",
    "HTML": "</b><script>alert(1)</script><a href=\"https://evil.example\">Acknowledge</a>",
    "attribute breakout": 'https://ok.example/"><img src=x onerror=alert(1)>',
    "control characters": "\x1b[31mred\x1b[0m\x00 \r\nnext\x07 \u202eevil.exe",
}
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
HTTP_URL = re.compile(r"https?://[^\s<>|\\`\"{}^]+")  # nothing that ends a link or an attribute


def hostile_message(value: str):
    alert = make_alert(labels={"alertname": value, "severity": "critical", "instance": value, "note": value},
                       annotations={"summary": f"summary {value}", "description": f"description {value}",
                                    "runbook_url": value}, generator_url=value)
    return make_message((alert,))


def shown(value: str) -> str:
    """What a person should read of `value`: everything but control characters."""
    return CONTROL.sub("", value)


def same_url(sent: str, original: str) -> bool:
    """`sent` is `original` made safe: percent-encoding added, nothing else."""
    return urllib.parse.unquote(sent) == shown(original).strip()


# --- how each platform reads what it is sent ------------------------------------------------------------------


def check_slack(payload: dict, alert, value: str) -> None:
    attachment = payload["attachments"][0]
    texts = [payload["text"], attachment["fallback"]]
    for block in attachment["blocks"]:
        texts += [block["text"]["text"]] if "text" in block else [e["text"] for e in block.get("elements", [])]
    acks = []
    for text in texts:
        assert not CONTROL.search(text), text
        for link in re.findall(r"<([^<>]*)>", text):  # every <...> Slack will act on
            url, bar, label = link.partition("|")
            assert bar and HTTP_URL.fullmatch(url), f"not a link we make: <{link}>"
            expected = {"Details": alert.url, "Acknowledge": alert.ack_url, "alert-receiver": RECEIVER_URL,
                        "Runbook": alert.annotations["runbook_url"]}.get(label, alert.generator_url)
            assert same_url(url, expected), f"<{link}>: the link does not go where its label says"
            acks += [url] if label == "Acknowledge" else []
        bare = re.sub(r"<[^<>]*>", "", text)
        assert "<" not in bare and ">" not in bare, text  # no mention, no link, no half of one
    assert acks == [alert.ack_url]
    section = attachment["blocks"][1]["text"]["text"]
    assert shown(f"summary {value}") in section.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _unescaped(text: str) -> str:
    """`text` as markdown sees it: each backslash-escaped character replaced by `e` (it acts as nothing)."""
    return re.sub(r"\\[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]", "e", text)


def check_teams(body: bytes, alert, value: str) -> None:
    card = json.loads(body)["attachments"][0]["content"]
    blocks = [card["body"][0]] + [item for c in card["body"][1:] for item in c.get("items", [c])]
    acks = []
    for i, block in enumerate(blocks):
        text = block["text"]
        assert not CONTROL.search(text), text
        view = _unescaped(text)
        for label, url in re.findall(r"\[([^\]]*)\]\(([^)]*)\)", view):  # every link Teams will make
            assert HTTP_URL.fullmatch(url) and not re.search(r"[()]", url), f"not a link we make: [{label}]({url})"
            expected = {"Source": alert.generator_url, "Details": alert.url, "Acknowledge": alert.ack_url,
                        "Runbook": alert.annotations["runbook_url"], "alert-receiver": RECEIVER_URL}[label]
            assert same_url(url, expected), f"[{label}]({url}): the link does not go where its label says"
            acks += [url] if label == "Acknowledge" else []
        view = re.sub(r"\[[^\]]*\]\([^)]*\)", "", view)
        if i:  # an alert's block: its **alertname** is the only emphasis
            assert view.startswith("**") and view.count("*") == 4, text
        else:
            assert "*" not in view, text
        assert not re.search(r"[_~`<>\[\]()]", view), text
        assert not re.search(r"(?m)^\s*([-+*]|\d+[.)])\s", view), text  # no list of an alert's making
    assert acks == [alert.ack_url]
    assert all(HTTP_URL.fullmatch(a["url"]) for a in card.get("actions", []))
    unescaped = re.sub(r"\\(.)", r"\1", blocks[1]["text"])
    assert " ".join(shown(f"summary {value}").split()) in " ".join(unescaped.split())


class _Html(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.links: list[tuple[str, str]] = []
        self.text: list[str] = []
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "a":
            self._href, self._label = dict(attrs).get("href", ""), ""

    def handle_data(self, data):
        self.text.append(data)
        if self._href is not None:
            self._label += data

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._label.strip(), self._href))
            self._href = None


OUR_TAGS = {"html", "head", "meta", "title", "body", "h2", "h3", "p", "strong", "div", "table", "tr", "td", "code",
            "a", "pre"}


def check_email(mail: email.message.EmailMessage, alert, value: str) -> None:
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    for part in (mail["Subject"], text, html):
        assert not CONTROL.search(part.replace("\r\n", "\n")), part
    parser = _Html()
    parser.feed(html)
    assert {tag for tag, _ in parser.tags} <= OUR_TAGS, parser.tags
    assert not [a for _, attrs in parser.tags for a in attrs if a.startswith("on")], parser.tags
    for label, href in parser.links:
        assert HTTP_URL.fullmatch(href), f"not a link we make: {label} → {href}"
        expected = {"Details": alert.url, "Acknowledge": alert.ack_url, "Runbook": alert.annotations["runbook_url"],
                    "all of them in alert-receiver": RECEIVER_URL}.get(label, alert.generator_url)
        assert same_url(href, expected), f"{label} → {href}: the link does not go where its label says"
    assert [href for label, href in parser.links if label == "Acknowledge"] == [alert.ack_url]
    assert shown(f"summary {value}").split("\n")[0] in "".join(parser.text)


def check_pagerduty(body: bytes, alert, value: str) -> None:
    event = json.loads(body)
    payload = event["payload"]
    for field in ("summary", "source", "class"):
        assert not CONTROL.search(payload[field]), payload[field]
    for link in event.get("links", []):
        assert HTTP_URL.fullmatch(link["href"]), link
    assert {link["text"] for link in event.get("links", [])} <= {
        "Prometheus: the alert's expression", "alert-receiver: the alert's timeline", "Runbook"}
    assert payload["custom_details"]["labels"] == dict(alert.labels)  # details are data: kept whole


def check_sms(body: str, alert, value: str) -> None:
    assert not CONTROL.search(body) and "\n" not in body and len(body) <= 159, repr(body)


def check_log(record: logging.LogRecord, alert, value: str) -> None:
    assert not CONTROL.search(record.getMessage()), repr(record.getMessage())
    for line in (LogfmtFormatter().format(record), JsonFormatter().format(record)):
        assert "\n" not in line and not CONTROL.search(line), repr(line)  # one record, one line, no escapes
    assert shown(f"summary {value}").split("\n")[0] in record.getMessage()


def check_webhook(body: bytes, alert, value: str) -> None:
    sent = json.loads(body)["alerts"][0]
    assert (sent["alertname"], sent["labels"], sent["annotations"]) == (
        alert.alertname, dict(alert.labels), dict(alert.annotations))  # JSON: data arrives exactly as it came


# --- sending through each channel -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smtp():
    collector, port = Collector(), free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    yield collector, port
    controller.stop()


def sent_body(mock_http) -> bytes:
    body = mock_http.calls[-1].request.body
    return body.encode() if isinstance(body, str) else body


def send(kind: str, message, make_channel, mock_http, smtp, caplog):
    if kind == "email":
        collector, port = smtp
        make_channel("email", smtp_host="127.0.0.1", smtp_port=port, starttls=False, to=["oncall@example.org"],
                     timeout="5s", **{"from": "alerts@example.org"}).send(message)
        return collector.messages[-1][2]
    if kind == "log":
        caplog.set_level(logging.INFO, logger="receiver.channels.log")
        make_channel("log").send(message)
        return [r for r in caplog.records if r.name == "receiver.channels.log"][-1]
    mock_http.add(responses.POST, re.compile(r"https://.*"), status=200, body="ok")
    make_channel(kind).send(message)
    body = sent_body(mock_http)
    if kind == "slack":
        return json.loads(body)
    if kind == "twilio_sms":
        return urllib.parse.parse_qs(body.decode())["Body"][0]
    return body


CHECKS = {"log": check_log, "slack": check_slack, "email": check_email, "pagerduty": check_pagerduty,
          "twilio_sms": check_sms, "msteams": check_teams, "webhook": check_webhook}


@pytest.mark.parametrize("kind", CHECKS)
@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_values_are_shown_never_interpreted(kind, value, make_channel, mock_http, smtp, caplog,
                                                    template_errors):
    message = hostile_message(value)
    CHECKS[kind](send(kind, message, make_channel, mock_http, smtp, caplog), message.alerts[0], value)
    assert template_errors == []  # escaped by the templates themselves, not by the minimal fallback


@pytest.mark.parametrize("name", ["slack/title.j2", "slack/alert.j2", "msteams/title.j2", "msteams/alert.j2"])
def test_the_minimal_message_of_a_failing_template_is_escaped_too(tmp_path, name, template_errors):
    (tmp_path / name).parent.mkdir()
    (tmp_path / name).write_text("{{ 1 / 0 }}")
    kind = name.split("/")[0]
    settings = SETTINGS_BY_TYPE[kind].model_validate(SETTINGS[kind])
    channel = CHANNEL_CLASSES[kind]("test", settings, renderer=Renderer(tmp_path, on_error=template_errors), http=None)
    payload = channel.payload(hostile_message("<!channel> [Acknowledge](https://evil.example) *b* _i_"))
    assert [n for n, _ in template_errors] == [name]
    block = 0 if name.endswith("title.j2") else 1  # the part the failing template writes: the minimal message
    if kind == "slack":
        text = payload["attachments"][0]["blocks"][block]["text"]["text"]
        assert "&lt;!channel&gt;" in text and "<" not in text and ">" not in text, text
    else:
        body = json.loads(payload)["attachments"][0]["content"]["body"]
        text = body[0]["text"] if block == 0 else body[1]["items"][0]["text"]
        assert "channel" in text and not re.search(r"[\[\]()<>_*]", _unescaped(text)), text
