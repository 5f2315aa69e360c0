"""The command line: check-config exit codes and messages, routes test timelines."""

from __future__ import annotations

import pathlib

import pytest
from click.testing import CliRunner

from receiver.cli import is_loopback, main

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "testdata" / "configs"
BAD = sorted(p for p in (CONFIGS / "bad").glob("*.yml"))


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args, env=None):
        return runner.invoke(main, list(args), env={"RECEIVER_CONFIG": None, **(env or {})}, catch_exceptions=False)

    return invoke


def test_check_config_ok_for_defaults_and_a_good_file(run):
    result = run("check-config")
    assert result.exit_code == 0 and "built-in defaults: OK" in result.output
    result = run("check-config", str(CONFIGS / "good" / "minimal.yml"))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_check_config_fails_naming_file_key_and_fix(run, path):
    expected = (path.with_suffix(".expected")).read_text().splitlines()
    result = run("check-config", str(path), env={"SMTP_PASSWORD": None})
    assert result.exit_code == 1
    for fragment in filter(None, (line.strip() for line in expected)):
        assert fragment in result.output, fragment
    assert path.name in result.output


def test_routes_test_prints_the_timeline_with_route_overrides(run, tmp_path):
    cfg = tmp_path / "receiver.yml"
    cfg.write_text("""
channels:
  pd: {type: pagerduty, routing_key: "k"}
  slack: {type: slack, webhook_url: "https://hooks.slack.com/services/x"}
routes:
  - matchers: ['team="db"']
    levels: {L1: [pd]}
    escalation: {L3: {escalate_after: 2m}}
  - levels: {L1: [pd, slack], L2: [slack], L3: [log]}
""")
    out = run("routes", "test", "-c", str(cfg), "--labels", 'severity="info",team="db"').output.splitlines()
    assert out == [
        'routes: route[0] team="db"',
        "level: L3",
        "+0s L3 firing → log",
        "+2m L2 escalated → slack",
        "+17m L1 escalated → pd",
        "+32m L1 repeat → pd",
        "then every 15m at L1 until acknowledged or resolved",
        "sla: L1 ack 5m, resolve 30m; L2 ack 15m, resolve 2h; L3 none",
    ]
    out = run("routes", "test", "-c", str(cfg), "--labels", 'severity="critical"').output.splitlines()
    assert out[:3] == ["routes: default", "level: L1", "+0s L1 firing → pd, slack"]


def test_routes_test_rejects_non_equality_labels(run):
    result = CliRunner().invoke(main, ["routes", "test", "--labels", 'team=~"db"'])
    assert result.exit_code == 2 and "--labels" in result.output


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("10.1.2.3", False), ("receiver.example", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_the_configuration_reference_example_is_valid(run, tmp_path):
    import re

    reference = (CONFIGS.parents[2] / "docs" / "configuration.md").read_text()
    example = next(b for b in re.findall(r"```yaml\n(.*?)```", reference, re.S) if b.startswith("database:"))
    secret = tmp_path / "read-token"
    secret.write_text("read-secret\n")
    path = tmp_path / "receiver.yml"
    path.write_text(example.replace("/run/secrets/read-token", str(secret)))
    env = {name: "https://example.org/x" for name in re.findall(r"\$\{(\w+)\}", example)}
    result = run("check-config", str(path), env=env)
    assert result.exit_code == 0, result.output
    assert "7 channel(s), 3 route(s), 2 token(s)" in result.output


def test_check_config_warns_about_chat_replies_that_cannot_reach_the_receiver(run, tmp_path):
    import yaml

    channels = {"slack": {"type": "slack_app", "bot_token": "xoxb-check-0", "channel": "C0ALERTS"},
                "tg": {"type": "telegram", "bot_token": "123456:" + "A" * 30, "chat_id": -100123},
                "sms": {"type": "twilio_sms", "account_sid": "AC" + "1" * 32, "auth_token": "tok",
                        "from": "+15550000000", "to": ["+15551111111"]}}
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({"channels": channels}))
    result = CliRunner().invoke(main, ["check-config", str(path)], env={"RECEIVER_CONFIG": None})
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    by_channel = {w.split(":")[1].strip(): w for w in warnings}
    assert sorted(by_channel) == ["channels.slack", "channels.sms", "channels.tg"]
    assert "signing_secret" in by_channel["channels.slack"] and "webhook_secret" in by_channel["channels.tg"]
    assert "public_url" in by_channel["channels.sms"]
    # Configured for replies: no warning.
    channels["slack"]["signing_secret"] = "s" * 16
    channels["tg"]["webhook_secret"] = "tg-secret_1"
    path.write_text(yaml.safe_dump({"channels": channels, "server": {"public_url": "https://alerts.example.org"}}))
    result = CliRunner().invoke(main, ["check-config", str(path)], env={"RECEIVER_CONFIG": None})
    assert result.exit_code == 0 and "warning:" not in result.output, result.output
