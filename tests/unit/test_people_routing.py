"""Routing to people without a database: level entries that name a schedule or a person (parsed, inherited from
the default route, checked against people, schedules and channels), the (channel, target) pairs a level tells, and
whom engine/paging resolves a target to at an instant."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from receiver.config import ConfigError, load_config
from receiver.config.routes import PersonTarget
from receiver.domain import Level, Override, Recipient
from receiver.engine import paging
from receiver.engine.oncall import on_call
from receiver.engine.plan import paged_at, plan_route
from receiver.engine.routing import match_routes

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)  # a Monday: alice's week (see SCHEDULES)

BASE = """
people:
  alice: {email: alice@example.org, phone: "+4915550001", slack_user: U01ALICE}
  bob:   {email: bob@example.org, phone: "+4915550002", slack_user: W02BOB}
  dave:  {email: dave@example.org}
schedules:
  primary-db:
    timezone: Europe/Berlin
    fallback: [chat]
    rotations:
      - {participants: [alice, bob], length: 1w, handoff: "mon 09:00", start: 2026-01-05}
channels:
  sms-oncall:   {type: twilio_sms, account_sid: AC1, auth_token: t, from: "+15550000000"}
  email-oncall: {type: email, smtp_host: smtp.example.org, from: alerts@example.org}
  slack-oncall: {type: slack, webhook_url: "https://hooks.slack.com/services/x"}
  chat:         {type: log}
  hook:         {type: webhook, url: "https://hooks.example.org/x"}
"""


def load(tmp_path, text: str):
    path = tmp_path / "receiver.yml"
    path.write_text(textwrap.dedent(BASE) + textwrap.dedent(text))
    return load_config(path, env={})


def problems(tmp_path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return [f"{p.key}: {p.message}" for p in info.value.errors]


def test_a_level_lists_targets_beside_channels_and_routes_inherit_them_per_level(tmp_path):
    config = load(tmp_path, """
routes:
  - matchers: ['team="db"']
    levels: {L2: [chat]}
  - levels:
      L1: [{schedule: primary-db, via: [sms-oncall, email-oncall]}, chat]
      L2: [{person: dave, via: [email-oncall]}]
      L3: [chat]
""")
    db, default = config.resolved_routes()
    target = PersonTarget(schedule="primary-db", via=("sms-oncall", "email-oncall"))
    assert default.channels[Level.L1] == ("chat",) and default.targets[Level.L1] == (target,)
    assert default.channels[Level.L2] == () and default.targets[Level.L2][0].target == "person:dave"
    assert db.targets[Level.L1] == (target,)  # inherited with the level's channels
    assert db.channels[Level.L2] == ("chat",) and db.targets[Level.L2] == ()  # a level it names replaces both
    assert config.unused_channels() == ["slack-oncall", "hook"]  # via and fallback channels count as used


def test_paged_at_tells_each_channel_once_plain_first_and_only_at_levels_it_takes(tmp_path):
    config = load(tmp_path, """
routes:
  - matchers: ['team="db"']
    continue: true
    levels: {L1: [hook, {schedule: primary-db, via: [sms-oncall, email-oncall]}], L2: [{person: dave, via: [sms-oncall, email-oncall]}]}
  - matchers: ['team="db"']
    levels: {L1: [chat, {person: bob, via: [sms-oncall, slack-oncall]}]}
  - levels: {L1: [chat]}
""")
    routes = match_routes(config.resolved_routes(), {"team": "db"})
    assert paged_at(config, routes, Level.L1) == (
        ("hook", None), ("sms-oncall", "schedule:primary-db"), ("email-oncall", "schedule:primary-db"),
        ("chat", None), ("slack-oncall", "person:bob"))  # sms-oncall: the first route's target wins
    # SMS takes L1 only (twilio_sms levels default): at L2 dave is e-mailed, not texted. (log: the second route's
    # L2, inherited from a default route that leaves L2 out.)
    assert paged_at(config, routes, Level.L2) == (("email-oncall", "person:dave"), ("log", None))
    plan = plan_route(config, {"team": "db"}, Level.L1, T0)
    assert plan.channels == ("hook", "sms-oncall", "email-oncall", "chat", "slack-oncall")
    assert plan.paged() == paged_at(config, routes, Level.L1)
    plain = plan_route(config, {"team": "web"}, Level.L1, T0)
    assert plain.targets == () and plain.paged() == (("chat", None),)


@pytest.mark.parametrize("entry, expected", [
    ("{schedule: primary-db, person: dave, via: [chat]}", "a target names a schedule or a person, not both"),
    ("{via: [chat]}", "a target names a schedule or a person"),
    ("{schedule: primary-db, via: []}", "must not be empty"),
    ("{schedule: primary-db}", 'missing required key "via"'),
    ("{schedule: primary-db, via: [chat], to: [x]}", 'unknown key "to"'),
    ("3", "a level lists channel names and {schedule: or person:, via: [channels]} targets"),
])
def test_a_malformed_target_names_its_place(tmp_path, entry, expected):
    found = problems(tmp_path, f"routes:\n  - levels: {{L1: [{entry}]}}\n")
    assert len(found) == 1 and found[0].startswith("routes[0].levels.L1[0]") and expected in found[0], found


def test_names_that_do_not_exist_are_errors_each_at_its_place(tmp_path):
    found = problems(tmp_path, """
routes:
  - levels:
      L1: [{schedule: primary, via: [sms-oncall, pager]}, {person: carol, via: [email-oncall]}]
""")
    assert found == [
        'routes[0].levels.L1[0].schedule: unknown schedule "primary"',
        'routes[0].levels.L1[0].via[1]: undefined channel "pager"',
        'routes[0].levels.L1[1].person: unknown person "carol"',
    ]


def test_a_channel_twice_at_one_level_is_an_error(tmp_path):
    for level in ("[chat, {person: dave, via: [chat]}]",
                  "[{person: dave, via: [email-oncall]}, {schedule: primary-db, via: [email-oncall]}]"):
        found = problems(tmp_path, f"routes:\n  - levels: {{L1: {level}}}\n")
        assert len(found) == 1 and "lists channel" in found[0] and "twice" in found[0], found


def test_addresses_a_via_channel_needs_are_checked_for_everyone_a_target_may_page(tmp_path):
    assert problems(tmp_path, """
routes:
  - levels: {L1: [{person: dave, via: [sms-oncall, slack-oncall, email-oncall, hook]}]}
""") == ['routes[0].levels.L1[0].via[0]: dave has no phone, which channel "sms-oncall" needs to reach them '
         '(person:dave)',
         'routes[0].levels.L1[0].via[1]: dave has no slack_user, which channel "slack-oncall" needs to reach them '
         '(person:dave)']


def test_to_is_optional_only_for_channels_that_serve_people(tmp_path):
    load(tmp_path, "routes:\n  - levels: {L1: [{person: alice, via: [sms-oncall, email-oncall]}]}\n")
    assert problems(tmp_path, "routes:\n  - levels: {L1: [sms-oncall]}\n") == [
        'routes[0].levels.L1[0]: channel "sms-oncall" has no `to:`, and as a plain channel it would reach nobody']


# --- whom a target reaches (engine/paging.resolve) --------------------------------------------------------


def who(config, overrides=()):
    return lambda schedule: on_call(config, schedule, T0, overrides)


def test_resolve_a_schedule_by_rotation_and_by_override_and_a_person(tmp_path):
    config = load(tmp_path, "routes:\n  - levels: {L1: [chat]}\n")
    got = paging.resolve(config, "schedule:primary-db", "sms-oncall", T0, who(config))
    assert (got.person, got.source, got.reason) == ("alice", "rotation", None)
    assert got.recipient == Recipient("alice", "alice@example.org", "+4915550001", "U01ALICE", "rotation")
    bob = Override(1, "primary-db", "bob", T0 - dt.timedelta(hours=1), T0 + dt.timedelta(hours=1))
    got = paging.resolve(config, "schedule:primary-db", "slack-oncall", T0, who(config, [bob]))
    assert (got.recipient.name, got.recipient.slack_user, got.source) == ("bob", "W02BOB", "override")
    got = paging.resolve(config, "person:dave", "email-oncall", T0, who(config))
    assert (got.recipient.email, got.source, got.fallback) == ("dave@example.org", "person", ())


def test_resolve_says_why_nobody_is_reached(tmp_path):
    config = load(tmp_path, "routes:\n  - levels: {L1: [chat]}\n")
    dave = Override(1, "primary-db", "dave", T0, T0 + dt.timedelta(hours=1))
    cases = {
        ("schedule:primary-db", "sms-oncall", (dave,)):
            "nobody on call for schedule primary-db at 2026-11-23T09:00:00Z: dave has no phone for channel sms-oncall",
        ("schedule:gone", "sms-oncall", ()): 'schedule "gone" is no longer configured',
        ("person:dave", "sms-oncall", ()): "dave has no phone for channel sms-oncall",
        ("person:erin", "email-oncall", ()): "erin is not one of the people (the config changed, or an override "
                                            "names someone it does not list)",
    }
    for (target, channel, overrides), reason in cases.items():
        got = paging.resolve(config, target, channel, T0, who(config, overrides))
        assert (got.recipient, got.reason) == (None, reason), target
    got = paging.resolve(config, "schedule:primary-db", "sms-oncall", T0, who(config, (dave,)))
    assert got.fallback == ("chat",) and got.metric_label == "primary-db"
    assert paging.resolve(config, "person:dave", "sms-oncall", T0, who(config)).metric_label == "person:dave"


def test_routes_test_shows_whom_each_channel_pages(tmp_path):
    from click.testing import CliRunner

    from receiver.cli import main

    load(tmp_path, """
routes:
  - levels: {L1: [{schedule: primary-db, via: [sms-oncall, email-oncall]}, chat], L2: [{person: dave, via: [email-oncall]}], L3: [chat]}
""")
    result = CliRunner().invoke(main, ["routes", "test", "-c", str(tmp_path / "receiver.yml"),
                                       "--labels", 'severity="warning"'], env={"RECEIVER_CONFIG": None})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[2:4] == ["+0s L2 firing → email-oncall (person:dave)",
                          "+15m L1 escalated → chat, sms-oncall (schedule:primary-db), email-oncall (schedule:primary-db)"]
