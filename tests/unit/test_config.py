"""receiver.yml: golden good and bad files, defaults, ${VAR}, RECEIVER_* overrides, route resolution."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from receiver.channels.email import EmailSettings
from receiver.channels.registry import SETTINGS_BY_TYPE
from receiver.config import Config, ConfigError, ConfigProblem, default_config, dump_redacted, load_config
from receiver.domain import Level, Role

CONFIGS = Path(__file__).resolve().parent.parent / "testdata" / "configs"
GOOD = sorted((CONFIGS / "good").glob("*.yml"))
BAD = sorted((CONFIGS / "bad").glob("*.yml"))

# Every variable the good configs reference; the values are recognisable so leaks can be searched for.
ENV = {
    "RECEIVER_WEBHOOK_TOKEN": "leak-webhook-token",
    "RECEIVER_READ_TOKEN": "leak-read-token",
    "SLACK_CRITICAL_URL": "https://hooks.slack.com/services/leak-critical",
    "SLACK_WARNING_URL": "https://hooks.slack.com/services/leak-warning",
    "SLACK_INFO_URL": "https://hooks.slack.com/services/leak-info",
    "SMTP_USER": "alerts",
    "SMTP_PASSWORD": "leak-smtp-password",
    "PD_ROUTING_KEY": "leak-pagerduty-routing-key-32chr",
    "TWILIO_SID": "AC0123456789",
    "TWILIO_TOKEN": "leak-twilio-token",
    "TEAMS_URL": "https://example.webhook.office.com/leak-teams",
    "HOOK_SECRET": "leak-hook-secret",
    "DB_PASSWORD": "leak-db-password",
}
td = dt.timedelta


def write(tmp_path: Path, text: str, name: str = "receiver.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, env: dict | None = None) -> Config:
    return load_config(write(tmp_path, text), env=ENV if env is None else env)


def error_of(tmp_path: Path, text: str, env: dict | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, env)
    return info.value


# --- golden files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_config_loads(path):
    config = load_config(path, env=ENV)
    assert config.source == str(path)
    routes = config.resolved_routes()
    assert routes[-1].is_default and not routes[-1].matchers
    for route in routes:
        assert set(route.channels) == set(Level) and set(route.policies) == set(Level)
        assert all(name in config.channels for names in route.channels.values() for name in names)
    redacted = json.dumps(dump_redacted(config))
    assert "leak-" not in redacted


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_config_is_reported(path):
    expected = [line for line in path.with_suffix(".expected").read_text().splitlines() if line.strip()]
    assert expected, f"{path.with_suffix('.expected')} is empty"
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    text = str(info.value)
    assert info.value.file == str(path)
    assert all(line.startswith(str(path)) for line in text.splitlines())
    for fragment in expected:
        assert fragment in text
    assert "secret-part" not in text  # the bad slack URL is a credential too


def test_every_bad_config_has_expectations():
    assert {p.stem for p in BAD} == {p.stem for p in (CONFIGS / "bad").glob("*.expected")}


def test_design_example_means_what_design_says():
    config = load_config(CONFIGS / "good" / "design.yml", env=ENV)
    db_route, default = config.resolved_routes()
    assert db_route.name == 'route[0] team="db"' and default.name == "default"
    assert db_route.channels == {Level.L1: ("pagerduty", "slack-critical"),
                                 Level.L2: ("slack-warning", "email-oncall"), Level.L3: ("slack-info",)}
    assert db_route.policy(Level.L3).escalate_after == td(minutes=2)
    assert default.policy(Level.L3).escalate_after == td(minutes=5)
    assert db_route.policy(Level.L2).escalate_after == td(minutes=15)
    assert db_route.policy(Level.L1).repeat_every == td(minutes=15)
    assert db_route.ack_ttl is None and default.ack_ttl is None
    assert [(t.name, t.role, t.token.reveal()) for t in config.auth.tokens] == [
        ("alertmanager", Role.WEBHOOK, "leak-webhook-token"), ("analysts", Role.READ, "leak-read-token")]
    email = config.channels["email-oncall"]
    assert isinstance(email, EmailSettings) and email.from_addr == "alerts@example.org"
    assert email.password.reveal() == "leak-smtp-password"
    assert config.channels["sms-oncall"].from_number == "+15550000000"
    assert config.unused_channels() == ["log", "teams", "audit-hook"]


# --- no file, RECEIVER_CONFIG, overrides ------------------------------------------------------------------


def test_no_file_runs_on_design_defaults():
    config = load_config(None, env={})
    assert config.source is None and config.from_defaults
    assert dump_redacted(config) == dump_redacted(default_config())
    assert config.database.url == "sqlite:///alert-receiver.db"
    assert config.database.lock_timeout == td(seconds=5) and config.database.sqlite_synchronous == "FULL"
    assert config.server.host == "127.0.0.1" and config.server.port == 9095
    assert config.server.max_body_size == 64 * 2**20
    assert config.auth.tokens == () and config.auth.required is None
    assert config.levels.severity == {"critical": Level.L1, "warning": Level.L2, "info": Level.L3}
    assert config.escalation.tick == td(seconds=15) and config.escalation.ack_ttl == td(0)
    assert config.delivery.retry.give_up_after == td(hours=1) and config.delivery.group_summary_over == 20
    assert config.retention.days == 90
    (route,) = config.resolved_routes()
    assert route.channels == {level: ("log",) for level in Level}
    assert list(config.channels) == ["log"]


def test_empty_file_equals_defaults(tmp_path):
    config = load_text(tmp_path, "")
    assert config.source is not None
    assert dump_redacted(config) == dump_redacted(default_config())


def test_receiver_config_names_the_file(tmp_path):
    path = write(tmp_path, "server: {port: 9999}\n")
    assert load_config(env={"RECEIVER_CONFIG": str(path)}).server.port == 9999


def test_explicit_path_wins_over_receiver_config(tmp_path):
    path = write(tmp_path, "server: {port: 9999}\n")
    assert load_config(path, env={"RECEIVER_CONFIG": "/nonexistent.yml"}).server.port == 9999


@pytest.mark.parametrize("env_key", [None, "RECEIVER_CONFIG"], ids=["argument", "env"])
def test_missing_named_file_is_an_error(tmp_path, env_key):
    missing = str(tmp_path / "nope.yml")
    with pytest.raises(ConfigError, match="nope.yml: file not found"):
        if env_key:
            load_config(env={env_key: missing})
        else:
            load_config(missing, env={})


OVERRIDES = [
    ("RECEIVER_DATABASE_URL", "postgresql+psycopg://u:p@db/alerts", lambda c: c.database.url,
     "postgresql+psycopg://u:p@db/alerts"),
    ("RECEIVER_HOST", "0.0.0.0", lambda c: c.server.host, "0.0.0.0"),
    ("RECEIVER_PORT", "8080", lambda c: c.server.port, 8080),
]


@pytest.mark.parametrize(("var", "value", "get", "expected"), OVERRIDES, ids=[o[0] for o in OVERRIDES])
@pytest.mark.parametrize("with_file", [False, True], ids=["no-file", "file"])
def test_env_overrides_win(tmp_path, var, value, get, expected, with_file):
    path = write(tmp_path, "database: {url: 'sqlite:///other.db'}\nserver: {host: '::1', port: 1234}\n")
    config = load_config(path if with_file else None, env={var: value})
    assert get(config) == expected


def test_bad_env_override_names_the_variable():
    with pytest.raises(ConfigError) as info:
        load_config(None, env={"RECEIVER_PORT": "http"})
    assert info.value.key == "server.port"
    assert "(set by RECEIVER_PORT)" in str(info.value)


def test_env_values_are_not_interpolated_again(tmp_path):
    config = load_text(tmp_path, "server: {public_url: '${URL}'}\n", env={"URL": "https://x.example/${NOT}"})
    assert config.server.public_url == "https://x.example/${NOT}"


def test_interpolation_happens_after_yaml_parsing(tmp_path):
    # A value with YAML syntax in it stays one string; the document's structure cannot change.
    config = load_text(tmp_path, "auth: {tokens: [{name: a, token: '${T}', role: read}]}\n",
                       env={"T": "x: [1, 2] # not a comment"})
    assert config.auth.tokens[0].token.reveal() == "x: [1, 2] # not a comment"


def test_every_problem_is_reported_at_once(tmp_path):
    error = error_of(tmp_path, """\
        channels:
          chat: {type: slack, webhook_url: "${UNSET_URL}"}
          pd: {type: pagerduty}
        escalation: {tick: 0s, ack_ttl: forever}
        """, env={})
    keys = [p.key for p in error.errors]
    # The unset ${VAR} comes first (found before validation) and once: not again as a bad URL.
    assert keys[0] == "channels.chat.webhook_url"
    assert sorted(keys[1:]) == ["channels.pd.routing_key", "escalation.ack_ttl", "escalation.tick"]


def test_config_error_format_and_fields():
    error = ConfigError([ConfigProblem("routes[0].levels.L1", 'undefined channel "x"', "define it"),
                         ConfigProblem("", "second")], file="receiver.yml")
    assert str(error) == ('receiver.yml: routes[0].levels.L1: undefined channel "x" — fix: define it\n'
                          "receiver.yml: second")
    assert (error.file, error.key, error.message, error.fix) == (
        "receiver.yml", "routes[0].levels.L1", 'undefined channel "x"', "define it")


# --- sections ---------------------------------------------------------------------------------------------


def test_config_is_frozen():
    config = default_config()
    with pytest.raises(ValidationError):
        config.server = None  # type: ignore[misc]
    with pytest.raises(ValidationError):
        config.server.port = 1  # type: ignore[misc]


def test_escalation_blocks_merge_over_the_defaults(tmp_path):
    config = load_text(tmp_path, """\
        escalation:
          L3: {repeat_every: 10m}
          L2: {escalate_after: null}
        """)
    assert config.escalation.L3.escalate_after == td(minutes=5)
    assert config.escalation.L3.repeat_every == td(minutes=10)
    assert config.escalation.L2.escalate_after is None
    assert config.escalation.L1.repeat_every == td(minutes=15)


@pytest.mark.parametrize(("yaml_text", "port", "starttls"), [
    ("ssl: true", 465, False),
    ("ssl: true\n    smtp_port: 2465", 2465, False),
    ("starttls: false", 587, False),
    ("", 587, True),
], ids=["ssl", "ssl-own-port", "plain", "default"])
def test_email_tls_defaults(tmp_path, yaml_text, port, starttls):
    config = load_text(tmp_path, f"""\
        channels:
          mail:
            type: email
            smtp_host: smtp.example.org
            from: a@example.org
            to: [b@example.org]
            {yaml_text}
        """.replace("\n    smtp_port", "\n            smtp_port"))
    mail = config.channels["mail"]
    assert (mail.smtp_port, mail.starttls) == (port, starttls)


def test_token_file_is_read_relative_to_the_config_and_stripped(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "am.token").write_text("  from-file \n")
    config = load_text(tmp_path, "auth: {tokens: [{name: am, token_file: secrets/am.token, role: webhook}]}\n")
    token = config.auth.tokens[0]
    assert token.token.reveal() == "from-file"
    assert token.token_file == tmp_path / "secrets" / "am.token"


def test_token_file_error_shows_no_content(tmp_path):
    (tmp_path / "t").write_text("   \n")
    error = error_of(tmp_path, "auth: {tokens: [{name: am, token_file: t, role: webhook}]}\n")
    assert "is empty" in str(error)


@pytest.mark.parametrize(("required", "host", "expected"), [
    (None, "127.0.0.1", False),
    (None, "localhost", False),
    (None, "::1", False),
    (None, "[::1]", False),
    (None, "127.0.0.2", False),
    (None, "0.0.0.0", True),
    (None, "10.0.0.5", True),
    (None, "receiver.example.org", True),
    (False, "0.0.0.0", False),
    (True, "127.0.0.1", True),
], ids=lambda v: str(v))
def test_auth_required_for(tmp_path, required, host, expected):
    tokens = "tokens: [{name: a, token: x, role: read}]"
    text = f"auth: {{required: {'null' if required is None else str(required).lower()}, {tokens}}}\n"
    assert load_text(tmp_path, text).auth.required_for(host) is expected


def test_auth_required_without_tokens_is_an_error(tmp_path):
    assert "no tokens are configured" in str(error_of(tmp_path, "auth: {required: true}\n"))


def test_registry_has_one_settings_model_per_type():
    assert set(SETTINGS_BY_TYPE) == {"log", "slack", "email", "pagerduty", "twilio_sms", "msteams", "webhook",
                                      "mattermost", "google_chat", "slack_app", "telegram"}
    for kind, model in SETTINGS_BY_TYPE.items():
        assert model.model_fields["type"].annotation.__args__ == (kind,)
        assert model.model_config["extra"] == "forbid" and model.model_config["frozen"]


# --- routes -----------------------------------------------------------------------------------------------

IMPLICIT = [
    ("no-routes", "channels: {pd: {type: pagerduty, routing_key: k}}\n", ["default"], True),
    ("routes-only-with-matchers", """\
        channels: {pd: {type: pagerduty, routing_key: k}}
        routes: [{matchers: [team=db], levels: {L1: [pd]}}]
        """, ['route[0] team="db"', "default"], True),
    ("complete-default-route", """\
        channels: {pd: {type: pagerduty, routing_key: k}}
        routes: [{levels: {L1: [pd], L2: [pd], L3: []}}]
        """, ["default"], False),
    ("default-route-missing-a-level", """\
        channels: {pd: {type: pagerduty, routing_key: k}}
        routes: [{levels: {L1: [pd]}}]
        """, ["default"], True),
]


@pytest.mark.parametrize(("text", "names", "has_log"), [i[1:] for i in IMPLICIT], ids=[i[0] for i in IMPLICIT])
def test_implicit_default_route_and_log_channel(tmp_path, text, names, has_log):
    config = load_text(tmp_path, text)
    assert [r.name for r in config.resolved_routes()] == names
    assert ("log" in config.channels) is has_log


def test_default_route_level_left_out_goes_to_log_and_explicit_empty_goes_nowhere(tmp_path):
    config = load_text(tmp_path, """\
        channels: {pd: {type: pagerduty, routing_key: k}}
        routes: [{levels: {L1: [pd], L2: []}}]
        """)
    (default,) = config.resolved_routes()
    assert default.channels == {Level.L1: ("pd",), Level.L2: (), Level.L3: ("log",)}


def test_route_inherits_every_level_and_timer_it_does_not_name(tmp_path):
    config = load_text(tmp_path, """\
        escalation: {L3: {escalate_after: 4m, repeat_every: 30m}, ack_ttl: 2h}
        channels:
          a: {type: log}
          b: {type: log}
          c: {type: log}
        routes:
          - name: special
            matchers: ['team="db"']
            levels: {L1: [a]}
            escalation: {L3: {escalate_after: 1m}, L1: {repeat_every: null}}
          - name: quiet
            matchers: ['team="ops"']
            escalation: {ack_ttl: 0s}
          - levels: {L1: [b], L2: [c], L3: [c]}
            escalation: {L2: {repeat_every: 5m}, ack_ttl: 1h}
        """)
    special, quiet, default = config.resolved_routes()
    assert special.channels == {Level.L1: ("a",), Level.L2: ("c",), Level.L3: ("c",)}
    assert (special.policy(Level.L3).escalate_after, special.policy(Level.L3).repeat_every) == (
        td(minutes=1), td(minutes=30))
    assert special.policy(Level.L1).repeat_every is None  # explicit null switches the inherited repeat off
    assert special.policy(Level.L2).repeat_every == td(minutes=5)  # from the default route's override
    assert special.policy(Level.L2).escalate_after == td(minutes=15)  # from escalation:, via the default route
    assert special.ack_ttl == td(hours=1)
    assert quiet.ack_ttl is None  # 0s: an ack holds until resolve
    assert default.ack_ttl == td(hours=1)
    assert default.policy(Level.L3).escalate_after == td(minutes=4)


def test_route_flags_and_names(tmp_path):
    config = load_text(tmp_path, """\
        routes:
          - {matchers: [alertname=Watchdog], escalate: false}
          - {matchers: ['team=~"db|ops"', 'env!="dev"'], continue: true}
          - {name: everything-else, levels: {L1: [log], L2: [log], L3: [log]}}
        """)
    watchdog, teams, default = config.resolved_routes()
    assert (watchdog.escalate, watchdog.continue_, watchdog.is_default) == (False, False, False)
    assert (teams.escalate, teams.continue_) == (True, True)
    assert teams.name == 'route[1] team=~"db|ops", env!="dev"'
    assert [str(m) for m in teams.matchers] == ['team=~"db|ops"', 'env!="dev"']
    assert (default.name, default.index, default.is_default) == ("everything-else", 2, True)
    assert config.routes[1].continue_ is True
    assert dump_redacted(config)["routes"][1]["continue"] is True


@pytest.mark.parametrize(("text", "fragment"), [
    ("routes: [{matchers: ['a=\"1\", b=\"2\"']}]", "expected one matcher per list item"),
    ("routes: [{matchers: [a=1], levels: {L1: [log, log]}}]", 'L1 lists channel "log" twice'),
    ("routes: [{levels: {L1: [log], L2: [log], L3: [log]}, continue: true}]", "continue has no effect"),
    ("routes: [{name: x, matchers: [a=1]}, {name: x, matchers: [b=1]}]", 'route name "x" is used more than once'),
    ("routes: [{matchers: [a=1], escalation: {L2: {escalate_after: 0s}}}]", "the minimum is 1s"),
    ("channels: {'bad name': {type: log}}", 'invalid key "bad name"'),
], ids=["two-in-one-item", "repeated-channel", "continue-on-default", "duplicate-names", "zero-timer", "bad-name"])
def test_route_problems(tmp_path, text, fragment):
    assert fragment in str(error_of(tmp_path, text + "\n"))


def test_config_can_be_built_from_python_objects():
    from receiver.channels.pagerduty import PagerDutySettings
    from receiver.config.routes import RouteSettings

    route = RouteSettings.model_validate({"matchers": ['team="db"'], "levels": {"L1": ["pd"]},
                                          "escalation": {"L3": {"escalate_after": "1m"}}})
    config = Config(channels={"pd": PagerDutySettings(type="pagerduty", routing_key="k")}, routes=[route],
                    escalation={"L3": {"repeat_every": "10m"}})
    db, default = config.resolved_routes()
    assert db.policy(Level.L3).escalate_after == td(minutes=1)
    assert db.policy(Level.L3).repeat_every == td(minutes=10)  # still inherited: the route did not name it
    assert default.channels[Level.L1] == ("log",) and "log" in config.channels
    assert config.source is None


def test_cross_check_errors_come_out_of_the_model_too():
    with pytest.raises(ConfigError) as info:
        Config.model_validate({"routes": [{"matchers": ["a=1"], "levels": {"L1": ["nope"]}}]})
    assert info.value.file is None and info.value.key == "routes[0].levels.L1"
    assert str(info.value).startswith('config: routes[0].levels.L1: undefined channel "nope"')


# --- dump_redacted ----------------------------------------------------------------------------------------


def test_dump_redacted_hides_every_secret():
    config = load_config(CONFIGS / "good" / "everything.yml", env=ENV)
    dump = dump_redacted(config)
    text = json.dumps(dump)
    assert "leak-" not in text and "oncall-token-from-file" not in text
    assert dump["database"]["url"] == "postgresql+psycopg://alerts:********@db.example.org:5432/alerts"
    assert dump["channels"]["hook"]["headers"] == {"Authorization": "********", "X-Team": "sre"}
    assert dump["channels"]["slack"]["webhook_url"] == "********"
    assert dump["escalation"]["L1"]["repeat_every"] == "1h30m"
    assert dump["routes"][0]["matchers"] == ['alertname="Watchdog"']
    assert dump["channels"]["mail"]["from"] == "Alerts <alerts@example.org>"
    assert config.database.url.endswith("leak-db-password@db.example.org:5432/alerts")  # the config keeps it
