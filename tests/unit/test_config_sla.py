"""`sla:` in receiver.yml: the defaults of the issue, blocks merged over them key by key, null switching a target
off, `sla.notify` checked against the channels, and route overrides inherited like the timers."""

from __future__ import annotations

import datetime as dt

import pytest

from receiver.config import Config, ConfigError
from receiver.config.sla_targets import SlaTarget, lookup
from receiver.domain import Level

from .test_config import error_of, load_text

td = dt.timedelta


def targets(config: Config, route: int = -1) -> dict[str, tuple]:
    resolved = config.resolved_routes()[route]
    return {lvl.value: (t.ack, t.resolve) for lvl, t in resolved.sla.items()}


def test_defaults_are_the_issues():
    config = Config()
    assert (config.sla.L1.ack, config.sla.L1.resolve) == (td(minutes=5), td(minutes=30))
    assert (config.sla.L2.ack, config.sla.L2.resolve) == (td(minutes=15), td(hours=2))
    assert config.sla.L3 == SlaTarget() and config.sla.notify == ()
    assert targets(config) == {"L1": (td(minutes=5), td(minutes=30)), "L2": (td(minutes=15), td(hours=2)),
                               "L3": (None, None)}


def test_blocks_merge_over_the_defaults_and_null_switches_off(tmp_path):
    config = load_text(tmp_path, """\
        sla:
          L1: {ack: 2m}
          L2: {resolve: null}
          L3: {resolve: 4h}
        """)
    assert targets(config) == {"L1": (td(minutes=2), td(minutes=30)), "L2": (td(minutes=15), None),
                               "L3": (None, td(hours=4))}
    config = load_text(tmp_path, "sla: {L1: null}\n")
    assert targets(config)["L1"] == (None, None) and targets(config)["L2"] == (td(minutes=15), td(hours=2))
    assert Config.model_validate({"sla": None}).sla == Config().sla  # `sla:` with nothing under it


def test_route_overrides_are_inherited_like_the_timers(tmp_path):
    config = load_text(tmp_path, """\
        sla: {L2: {ack: 10m}}
        routes:
          - name: db
            matchers: ['team="db"']
            sla: {L1: {ack: 1m}, L3: {ack: 1h}}
          - name: batch
            matchers: ['team="batch"']
            sla: {L1: null, L2: {resolve: null}}
          - sla: {L1: {resolve: 1h}}
        """)
    db, batch, default = (targets(config, i) for i in range(3))
    assert default == {"L1": (td(minutes=5), td(hours=1)), "L2": (td(minutes=10), td(hours=2)),
                       "L3": (None, None)}
    assert db == {"L1": (td(minutes=1), td(hours=1)), "L2": (td(minutes=10), td(hours=2)),
                  "L3": (td(hours=1), None)}
    assert batch == {"L1": (None, None), "L2": (td(minutes=10), None), "L3": (None, None)}
    target = lookup(config.resolved_routes())
    assert target("db", "L1").ack == td(minutes=1)
    assert target("a route a reload removed", "L1").ack == td(minutes=5)  # as the default route
    assert target("db", "L9") == SlaTarget()


def test_notify_names_channels_that_exist(tmp_path):
    error = error_of(tmp_path, """\
        channels: {chat: {type: log}, ops-chat: {type: log}}
        sla: {notify: [chat, ops-chatt]}
        """)
    assert error.key == "sla.notify[1]"
    assert 'undefined channel "ops-chatt"' in error.message and 'did you mean "ops-chat"' in error.fix
    config = load_text(tmp_path, """\
        channels: {chat: {type: log}, sla-mail: {type: log}}
        routes: [{levels: {L1: [chat], L2: [chat], L3: [chat]}}]
        sla: {notify: [sla-mail]}
        """)
    assert config.sla.notify == ("sla-mail",) and config.unused_channels() == []


@pytest.mark.parametrize(("text", "key", "fragment"), [
    ("sla: {L1: {ack: 0s}}", "sla.L1.ack", "the minimum is 1s"),
    ("sla: {L1: {acknowledge: 5m}}", "sla.L1.acknowledge", ""),
    ("sla: {L4: {ack: 5m}}", "sla.L4", ""),
    ("sla: {L2: {resolve: 90}}", "sla.L2.resolve", "no unit"),
    ("channels: {c: {type: log}}\nsla: {notify: [c, c]}", "sla.notify", 'lists channel "c" twice'),
    ("routes: [{matchers: [a=1], sla: {L1: {ack: soon}}}]", "routes[0].sla.L1.ack", "not a duration"),
], ids=["zero", "unknown-key", "unknown-level", "bare-number", "twice", "route-bad-duration"])
def test_bad_sla_settings_name_the_key(tmp_path, text, key, fragment):
    error = error_of(tmp_path, text + "\n")
    assert isinstance(error, ConfigError)
    assert key in [p.key for p in error.errors], [p.key for p in error.errors]
    assert fragment in str(error)


def test_sla_of_a_level_with_nothing_resolved():
    from receiver.config.routes import ResolvedRoute

    route = ResolvedRoute(index=0, name="r", matchers=(), channels={}, policies={}, ack_ttl=None, escalate=True,
                          ack_silence=False, continue_=False, is_default=True)
    assert route.sla_for(Level.L1) == SlaTarget()  # built by hand (tests): no targets


def test_describe_names_each_levels_targets(tmp_path):
    from receiver.config.sla_targets import describe

    config = load_text(tmp_path, """\
        routes:
          - {name: db, matchers: ['team="db"'], sla: {L1: {resolve: null}, L3: {ack: 90m}}}
          - {levels: {L1: [log], L2: [log], L3: [log]}}
        """)
    assert describe(config.resolved_routes()[0].sla) == "L1 ack 5m; L2 ack 15m, resolve 2h; L3 ack 1h30m"
