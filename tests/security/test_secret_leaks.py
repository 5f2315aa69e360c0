"""No secret ever leaves: API tokens, the SMTP password, PagerDuty routing key and webhook secret, Slack, Teams and
webhook URLs, the webhook HMAC secret and the Twilio auth token never appear in a log line, an error, /metrics,
check-config's output or any API answer — driven through the app's real paths (deliveries failing with 4xx, 5xx
and connection errors, config errors, reloads) in-process, then through a real `alert-receiver serve`."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
import socket
import urllib.parse

import pytest
import requests
import responses
import yaml
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.channels.registry import build_channels
from receiver.cli import main
from receiver.config import ConfigError, load_config
from receiver.engine.delivery import Dispatcher
from receiver.logs import JsonFormatter
from receiver.render import Renderer

from ..support.fixtures import raw
from ..support.process import ReceiverProcess, wait_until
from ..support.sink import HttpSink
from .conftest import TOKENS, bearer

TWILIO_SID = "AC0123456789abcdef0123456789abcdef"
SECRETS = {
    "SMTP_PASSWORD": "leak-smtp-password-3141",
    "PD_ROUTING_KEY": "leak-pd-routing-key-27182818",
    "PD_WEBHOOK_SECRET": "leak-pd-webhook-secret-1618",
    "SLACK_SECRET": "leak-slack-path-secret-4669",
    "TEAMS_SECRET": "leak-teams-path-secret-5772",
    "HOOK_URL_SECRET": "leak-hook-url-token-1123",
    "HOOK_SECRET": "leak-hook-hmac-secret-5813",
    "TWILIO_TOKEN": "leak-twilio-auth-token-1414",
    "SLACK_BOT_TOKEN": "xoxb-leak-slack-bot-token-7071",
    "SLACK_SIGNING_SECRET": "leak-slack-signing-secret-6931",
    "TELEGRAM_BOT_TOKEN": "123456:leak-telegram-bot-token-9999",
    "TELEGRAM_WEBHOOK_SECRET": "leak-telegram-webhook-secret-2236",
    **{f"TOKEN_{role.upper()}": token for role, token in TOKENS.items()},
}


def forms(secret: str) -> list[str]:
    """The secret and the encodings it could leak in."""
    out = [secret, urllib.parse.quote(secret, safe="")]
    if secret == SECRETS["TWILIO_TOKEN"]:
        out.append(base64.b64encode(f"{TWILIO_SID}:{secret}".encode()).decode())
    return out


def assert_no_secret(texts: dict[str, str]) -> None:
    found = [f"{name} in {where}: …{text[max(0, text.find(form) - 120):text.find(form) + 60]}…"
             for where, text in texts.items() for name, secret in SECRETS.items() for form in forms(secret)
             if form in text]
    assert not found, "secrets leaked:\n" + "\n".join(found)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on return: connecting is refused


def receiver_yml(db_url: str, base: str, smtp_port: int) -> dict:
    """Every secret-bearing setting, each from ${VAR}; every provider at `base` (a mock or a local sink)."""
    return {
        "database": {"url": db_url, "lock_timeout": "2s"},
        "auth": {"tokens": [{"name": f"{role}-client", "token": f"${{TOKEN_{role.upper()}}}", "role": role}
                            for role in TOKENS]},
        "channels": {
            "slack": {"type": "slack", "webhook_url": base + "/services/T0/B0/${SLACK_SECRET}"},
            "teams": {"type": "msteams", "webhook_url": base + "/webhookb2/${TEAMS_SECRET}"},
            "pd": {"type": "pagerduty", "routing_key": "${PD_ROUTING_KEY}", "url": base + "/v2/enqueue",
                   "webhook_secret": "${PD_WEBHOOK_SECRET}"},
            "sms": {"type": "twilio_sms", "account_sid": TWILIO_SID, "auth_token": "${TWILIO_TOKEN}",
                    "api_url": base, "from": "+15550000000", "to": ["+15551111111"]},
            "mail": {"type": "email", "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "ssl": True,
                     "username": "oncall", "password": "${SMTP_PASSWORD}", "from": "alerts@example.org",
                     "to": ["oncall@example.org"], "timeout": "2s"},
            "hook": {"type": "webhook", "url": base + "/hook/${HOOK_URL_SECRET}?key=${HOOK_URL_SECRET}",
                     "hmac_secret": "${HOOK_SECRET}"},
            "slackapp": {"type": "slack_app", "bot_token": "${SLACK_BOT_TOKEN}", "api_url": base + "/slackapi",
                         "signing_secret": "${SLACK_SIGNING_SECRET}", "channel": "C0LEAKS"},
            "tg": {"type": "telegram", "bot_token": "${TELEGRAM_BOT_TOKEN}", "api_url": base + "/tgapi",
                   "chat_id": -100123, "webhook_secret": "${TELEGRAM_WEBHOOK_SECRET}", "rate_limit_per_minute": 60},
        },
        "routes": [{"levels": {"L1": ["slack", "teams", "pd", "sms", "mail", "hook", "slackapp", "tg"], "L2": ["slack"],
                               "L3": ["slack"]}}],
        "delivery": {"retry": {"initial": "1s", "max_backoff": "2s", "give_up_after": "1h"}},
    }


def log_text(caplog) -> str:
    # The receiver's own formatter: extra fields (where a careless caller would put a URL) are included.
    formatter = JsonFormatter()
    return "\n".join(formatter.format(r) for r in caplog.records)


def answer_text(resp) -> str:
    return f"{resp.status_code} {dict(resp.headers)} {resp.get_data(as_text=True)}"


# --- in-process: every path an operator or a provider can reach ------------------------------------------


def test_no_secret_in_logs_errors_metrics_or_api_answers(db_url, tmp_path, clock, caplog):
    caplog.set_level(logging.DEBUG)
    base = "https://provider.example.org"
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump(receiver_yml(db_url, base, closed_port())))
    config = load_config(path, env=SECRETS)
    app = create_app(config, clock=clock, registry=CollectorRegistry())
    svc = app.extensions["alert_receiver"]
    client = app.test_client()
    texts: dict[str, str] = {}
    try:
        assert client.post("/webhook", data=raw("g_routing_critical"), content_type="application/json",
                           headers=bearer(TOKENS["webhook"])).status_code == 200
        # Deliveries through the real channels: providers answer 500, then 429, then the connection fails with
        # urllib3's message (which names the URL's path), then a 400 quoting the request (URL, headers, body: all
        # a provider could echo); SMTP is refused throughout.
        def quoting(req):
            return 400, {}, f"bad request to {req.url} with {dict(req.headers)}: {req.body!r}"

        def unreachable(req):
            raise requests.ConnectionError(f"HTTPSConnectionPool(host='provider.example.org', port=443): Max retries "
                                           f"exceeded with url: {req.path_url} (Caused by NewConnectionError)")

        provider = re.compile(r"https://provider\.example\.org/.*")
        tried: list[str] = []  # the first path segment of every request: which channel called
        with requests.Session() as http, responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            channels = build_channels(config.channels, renderer=Renderer(), http=http)
            dispatcher = Dispatcher(svc.writes, config, channels, clock=clock, worker="leak-test", metrics=svc.metrics,
                                    rng=lambda: 0.5)
            for add in (lambda: mock.add(responses.POST, provider, status=500, body="internal error"),
                        lambda: mock.add(responses.POST, provider, status=429, headers={"Retry-After": "1"}),
                        lambda: mock.add_callback(responses.POST, provider, callback=unreachable),
                        lambda: mock.add_callback(responses.POST, provider, callback=quoting)):  # permanent: last
                mock.reset()
                add()
                clock.advance(60)
                for _ in range(20):
                    if not dispatcher.run_once().handled:
                        break
                tried.extend(urllib.parse.urlsplit(c.request.url).path.split("/")[1] for c in mock.calls)
        assert set(tried) == {"v2", "webhookb2", "2010-04-01", "services", "hook", "slackapi", "tgapi"} \
            and len(tried) >= 16, tried
        # Every route, as admin and as a caller with a wrong token: bodies and headers.
        admin = bearer(TOKENS["admin"])
        notifications = client.get("/api/v1/notifications?limit=100", headers=admin).get_json()["notifications"]
        assert notifications and any(n["attempts"] for n in notifications), notifications
        for n in notifications:
            texts[f"notification {n['id']}"] = answer_text(client.get(f"/api/v1/notifications/{n['id']}", headers=admin))
        for rule in app.url_map.iter_rules():
            if "<" in rule.rule or "GET" not in rule.methods:
                continue
            for who, headers in (("admin", admin), ("wrong", bearer("wrong-token"))):
                resp = client.get(rule.rule, headers=headers)
                texts[f"GET {rule.rule} as {who}"] = answer_text(resp)
                resp.close()
        alert_id = client.get("/api/v1/alerts", headers=admin).get_json()["alerts"][0]["id"]
        texts["alert"] = answer_text(client.get(f"/api/v1/alerts/{alert_id}", headers=admin))
        texts["metrics"] = client.get("/metrics").get_data(as_text=True)
        texts["pagerduty bad signature"] = answer_text(client.post(
            "/webhooks/pagerduty", data=b'{"event": {}}', headers={"X-PagerDuty-Signature": "v1=00"}))
        for route, headers in (("/integrations/slack/interactions", {"X-Slack-Signature": "v0=00",
                                                                     "X-Slack-Request-Timestamp": "1"}),
                               ("/integrations/telegram", {"X-Telegram-Bot-Api-Secret-Token": "wrong"}),
                               ("/integrations/twilio/sms", {"X-Twilio-Signature": "AAAA"})):
            texts[f"{route} bad signature"] = answer_text(client.post(route, data=b"payload=%7B%7D", headers=headers))
        # A reload that fails on a file full of secrets in invalid places.
        bad = receiver_yml(db_url, base, 25)
        bad["channels"]["slack"]["webhook_url"] = "ftp://${SLACK_SECRET}"
        bad["channels"]["pd"]["routing_key"] = ["${PD_ROUTING_KEY}"]
        bad["channels"]["mail"]["password"] = 31415926
        bad["auth"]["tokens"][1]["token"] = "${TOKEN_WEBHOOK}"  # the same value as another token
        path.write_text(yaml.safe_dump(bad))
        reload = client.post("/-/reload", headers=admin)
        assert reload.status_code == 400
        texts["reload refused"] = answer_text(reload)
        with pytest.raises(ConfigError) as caught:
            load_config(path, env=SECRETS)
        texts["config error"] = str(caught.value)
    finally:
        svc.db.dispose()
    texts["logs"] = log_text(caplog)
    assert "delivery" in texts["logs"] or "notification" in texts["logs"], "the deliveries logged nothing"
    assert_no_secret(texts)


def test_check_config_prints_no_secret(tmp_path, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump(receiver_yml(f"sqlite:///{tmp_path}/r.db", "https://provider.example.org", 465)))
    runner = CliRunner()
    good = runner.invoke(main, ["check-config", str(path)])
    assert good.exit_code == 0, good.output
    bad_yml = receiver_yml(f"sqlite:///{tmp_path}/r.db", "ftp://provider.example.org", 465)
    bad_yml["channels"]["sms"]["auth_token"] = 12345
    bad_yml["auth"]["tokens"][2]["token"] = "${TOKEN_WEBHOOK}"
    path.write_text(yaml.safe_dump(bad_yml))
    bad = runner.invoke(main, ["check-config", str(path)])
    assert bad.exit_code != 0
    assert "channels.sms.auth_token" in bad.output
    assert_no_secret({"check-config": good.output, "check-config of a bad file": bad.output})


# --- a real `alert-receiver serve`: its stderr -------------------------------------------------------------


@pytest.mark.e2e
def test_a_real_server_logs_no_secret(tmp_path):
    sink = HttpSink().start()
    sink.answer(*([500] * 6), *([(429, {"Retry-After": "1"})] * 6))
    config_path = tmp_path / "receiver.yml"
    settings = receiver_yml(f"sqlite:///{tmp_path}/receiver.db", sink.url, closed_port())
    # Slack and Teams take https:// URLs only: a closed local port makes their connections fail.
    for name in ("slack", "teams"):
        settings["channels"][name]["webhook_url"] = settings["channels"][name]["webhook_url"].replace(
            sink.url, f"https://127.0.0.1:{closed_port()}")
    config_path.write_text(yaml.safe_dump(settings))
    receiver = ReceiverProcess(config_path, workers=2, extra_env={**SECRETS, "RECEIVER_LOG_LEVEL": "DEBUG"})
    texts: dict[str, str] = {}
    try:
        receiver.start().wait_ready()
        url = receiver.url
        admin = bearer(TOKENS["admin"])
        assert requests.post(url + "/webhook", data=raw("g_routing_critical"), timeout=10,
                             headers={**bearer(TOKENS["webhook"]), "Content-Type": "application/json"}).status_code == 200
        for headers in (bearer("wrong-token"), {"Authorization": "Basic !!"}, {"Authorization": TOKENS["admin"]}):
            requests.get(url + "/api/v1/alerts", headers=headers, timeout=10)
        # Every HTTP channel tried at least twice (500, then 429); the SMTP server refused.
        def tried() -> set[str]:
            listed = requests.get(url + "/api/v1/notifications", headers=admin, timeout=10).json()["notifications"]
            return {n["channel"] for n in listed if n["attempts"] >= 2}

        wait_until(lambda: tried() >= {"slack", "teams", "pd", "sms", "mail", "hook", "slackapp", "tg"}, timeout=60,
                   what="every channel to fail twice")
        texts["metrics"] = requests.get(url + "/metrics", timeout=10).text
        texts["notifications"] = requests.get(url + "/api/v1/notifications", headers=admin, timeout=10).text
        bad = receiver_yml(f"sqlite:///{tmp_path}/receiver.db", "ftp://x", closed_port())
        bad["channels"]["pd"]["routing_key"] = 42
        config_path.write_text(yaml.safe_dump(bad))
        reload = requests.post(url + "/-/reload", headers=admin, timeout=10)
        assert reload.status_code == 400
        texts["reload refused"] = reload.text
    finally:
        receiver.stop()
        sink.stop()
    with open(receiver.log_path, encoding="utf-8", errors="replace") as f:
        texts["stderr"] = f.read()
    assert "level=" in texts["stderr"] and "serving" in texts["stderr"], texts["stderr"][-2000:]
    assert_no_secret(texts)
