"""engine.routing: which routes an alert follows, and the level it starts at."""

from __future__ import annotations

import pytest

from receiver.config import Config
from receiver.config.model import LevelsSettings
from receiver.domain import Level
from receiver.engine.routing import LevelDecision, level_for, match_routes

CONFIG = Config.model_validate({
    "channels": {name: {"type": "log"} for name in ("db-pager", "db-chat", "ops", "audit", "everyone")},
    "routes": [
        {"name": "watchdog", "matchers": ['alertname="Watchdog"'], "escalate": False},
        {"name": "audit", "matchers": ['severity=~"critical|warning"'], "levels": {"L1": ["audit"]},
         "continue": True},
        {"name": "db", "matchers": ['team="db"'], "levels": {"L1": ["db-pager"], "L2": ["db-chat"]}},
        {"name": "db-again", "matchers": ['team="db"'], "levels": {"L1": ["ops"]}},
        {"name": "ops-prod", "matchers": ['team=~"ops|sre"', 'env!="dev"'], "levels": {"L1": ["ops"]},
         "continue": True},
        {"name": "not-dev", "matchers": ['env!~"dev|test"'], "levels": {"L3": ["ops"]}},
        {"levels": {"L1": ["everyone"], "L2": ["everyone"], "L3": ["everyone"]}},
    ],
})
ROUTES = CONFIG.resolved_routes()

CASES = [
    ("watchdog-stops-at-first-match", {"alertname": "Watchdog", "team": "db", "severity": "critical"}, ["watchdog"]),
    ("continue-then-first-match", {"team": "db", "severity": "critical"}, ["audit", "db"]),
    ("first-match-wins-over-later-equal", {"team": "db"}, ["db"]),
    ("continue-then-later-match", {"team": "ops", "env": "prod"}, ["ops-prod", "not-dev"]),
    ("all-matchers-must-match", {"team": "ops", "env": "dev"}, ["default"]),
    ("missing-label-is-empty", {"team": "sre"}, ["ops-prod", "not-dev"]),
    ("continue-only-no-default", {"severity": "warning", "env": "dev"}, ["audit"]),
    ("nothing-matches-default", {"env": "test"}, ["default"]),
    ("no-labels", {}, ["not-dev"]),  # env!~"dev|test" matches the empty string
]


@pytest.mark.parametrize(("labels", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_match_routes(labels, expected):
    assert [r.name for r in match_routes(ROUTES, labels)] == expected


def test_matched_route_carries_inherited_channels():
    (db,) = match_routes(ROUTES, {"team": "db"})
    assert db.channels_for(Level.L1) == ("db-pager",)
    assert db.channels_for(Level.L3) == ("everyone",)
    (watchdog,) = match_routes(ROUTES, {"alertname": "Watchdog"})
    assert watchdog.escalate is False


def test_without_a_default_route_nothing_may_match():
    without_default = [r for r in ROUTES if not r.is_default]
    assert match_routes(without_default, {"env": "test"}) == []


def test_defaults_only_config_routes_everything_to_log():
    (route,) = match_routes(Config().resolved_routes(), {"alertname": "Anything"})
    assert route.is_default and route.channels_for(Level.L2) == ("log",)


DEFAULT_LEVELS = LevelsSettings()
CUSTOM_LEVELS = LevelsSettings(severity={"page": Level.L1, "critical": Level.L2}, default=Level.L2)

LEVELS = [
    ("critical", DEFAULT_LEVELS, {"severity": "critical"}, LevelDecision(Level.L1, "critical", True)),
    ("warning", DEFAULT_LEVELS, {"severity": "warning"}, LevelDecision(Level.L2, "warning", True)),
    ("info", DEFAULT_LEVELS, {"severity": "info"}, LevelDecision(Level.L3, "info", True)),
    ("missing", DEFAULT_LEVELS, {"alertname": "X"}, LevelDecision(Level.L3, None, True)),
    ("empty", DEFAULT_LEVELS, {"severity": ""}, LevelDecision(Level.L3, None, True)),
    ("unknown", DEFAULT_LEVELS, {"severity": "disaster"}, LevelDecision(Level.L3, "disaster", False)),
    ("case-matters", DEFAULT_LEVELS, {"severity": "Critical"}, LevelDecision(Level.L3, "Critical", False)),
    ("custom-mapping", CUSTOM_LEVELS, {"severity": "page"}, LevelDecision(Level.L1, "page", True)),
    ("custom-remap", CUSTOM_LEVELS, {"severity": "critical"}, LevelDecision(Level.L2, "critical", True)),
    ("custom-replaces-defaults", CUSTOM_LEVELS, {"severity": "warning"}, LevelDecision(Level.L2, "warning", False)),
    ("custom-default", CUSTOM_LEVELS, {}, LevelDecision(Level.L2, None, True)),
]


@pytest.mark.parametrize(("levels", "labels", "expected"), [c[1:] for c in LEVELS], ids=[c[0] for c in LEVELS])
def test_level_for(levels, labels, expected):
    assert level_for(levels, labels) == expected
