"""The seed's root cause: DatabaseConnectionPoolExhausted hides SlowDatabaseQueries and HighDatabaseConnections on
the same PgBouncer — same cluster, service and instance — and nothing else (not even the pool's own 80% warning).

- plain Python over alertmanager.yml (the matcher reading of tests/platform/test_alertmanager_config.py);
- the real Alertmanager on a copy of alertmanager.yml (test_alertmanager_config's `generated_copy`, fast timers)
  delivering to a local sink: the three seed alerts of one PgBouncer plus controls are pushed; the sink receives
  the pool alert and the controls, never the inhibited symptoms, and Alertmanager's API marks exactly those
  suppressed by the pool alert's fingerprint. When the pool alert resolves, the symptoms it held back arrive.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pytest

from tests.platform.test_alertmanager_config import ALERTING_RULES, _alert, _inhibit_rules, inhibits
from tests.support.alertmanager import AlertmanagerProcess, generated_copy
from tests.support.binaries import require_binary
from tests.support.process import wait_until
from tests.support.sink import HttpSink

ROOT_CAUSE = "DatabaseConnectionPoolExhausted"
SYMPTOMS = ("SlowDatabaseQueries", "HighDatabaseConnections")
PGB1, PGB2 = "pgb-1:9127", "pgb-2:9127"


def _pgbouncer(alertname: str, severity: str, instance: str, **labels: str) -> dict[str, str]:
    return _alert(alertname, severity, "pgbouncer", instance=instance, job="pgbouncer", team="db", **labels)


def test_the_seed_rules_exist_with_their_severities() -> None:
    severities = {(rule["alert"], rule["labels"]["severity"], rule["labels"]["service"]) for _, rule in ALERTING_RULES}
    assert {(ROOT_CAUSE, "critical", "pgbouncer"), ("SlowDatabaseQueries", "warning", "pgbouncer"),
            ("HighDatabaseConnections", "warning", "pgbouncer")} <= severities
    # DatabasePoolUsageHigh is the 80% early warning only: its former critical is the exhaustion alert now.
    assert {s for name, s, _ in severities if name == "DatabasePoolUsageHigh"} == {"warning"}


def test_exactly_one_inhibit_rule_has_the_pool_exhaustion_as_source() -> None:
    rules = [r for r in _inhibit_rules() if any(ROOT_CAUSE in m for m in r["source_matchers"])]
    assert len(rules) == 1
    assert rules[0]["source_matchers"] == [f'alertname="{ROOT_CAUSE}"']
    assert {"service", "instance"} <= set(rules[0]["equal"]) <= {"cluster", "service", "instance"}


def test_pool_exhaustion_inhibits_its_symptoms_on_the_same_pgbouncer_only() -> None:
    pool = _pgbouncer(ROOT_CAUSE, "critical", PGB1, database="app")
    for name in SYMPTOMS:
        severity = "warning"
        assert inhibits(pool, _pgbouncer(name, severity, PGB1, database="app")), name
        assert inhibits(pool, _pgbouncer(name, severity, PGB1, database="reports")), f"{name}: any pool of pgb-1"
        assert not inhibits(pool, _pgbouncer(name, severity, PGB2, database="app")), f"{name}: another PgBouncer"
        assert not inhibits(pool, {**_pgbouncer(name, severity, PGB1), "cluster": "prod-us-1"}), f"{name}: other cluster"
        assert not inhibits(pool, {**_pgbouncer(name, severity, PGB1), "service": "postgresql"}), f"{name}: other service"
    # nothing else on the same PgBouncer, nor PostgreSQL's own alerts, nor another pool exhaustion
    assert not inhibits(pool, _pgbouncer("PgbouncerDown", "critical", PGB1))
    assert not inhibits(pool, _pgbouncer("DatabasePoolUsageHigh", "warning", PGB1, name="app"))
    assert not inhibits(pool, _pgbouncer(ROOT_CAUSE, "critical", PGB1, database="reports"))
    assert not inhibits(pool, _alert("PostgresConnectionsHigh", "warning", "postgresql", instance=PGB1, job="postgres"))
    assert not inhibits(pool, _alert("HostHighCpuUsage", "warning", "node", instance="pgb-1:9100", job="node"))
    # the symptoms never inhibit the root cause
    for name in SYMPTOMS:
        assert not inhibits(_pgbouncer(name, "warning", PGB1), pool)


# --------------------------------------------------------------------------------------------------
# The real Alertmanager

WAIT_S = 60  # a passing run waits about a second per step


@pytest.fixture
def alertmanager_to_sink(tmp_path: Path):
    binary = require_binary("prometheus-alertmanager")
    token = tmp_path / "alert-receiver-token"
    token.write_text("inhibition-test-token\n")
    with contextlib.ExitStack() as cleanup:
        sink = HttpSink().start()
        cleanup.callback(sink.stop)
        config = generated_copy(tmp_path, webhook_base=sink.url, credentials_file=token, fast=True)
        process = AlertmanagerProcess(binary, config, tmp_path / "alertmanager").start()
        cleanup.callback(process.stop)
        process.wait_ready(timeout=WAIT_S)
        yield process, sink


def _postable(labels: dict[str, str], starts: dt.datetime, ends: dt.datetime) -> dict:
    return {"labels": labels, "annotations": {"summary": "inhibition e2e"}, "startsAt": starts.isoformat(),
            "endsAt": ends.isoformat()}


def _key(labels: dict[str, str]) -> tuple:
    return tuple(sorted(labels.items()))


def _delivered_firing(sink: HttpSink) -> set[tuple]:
    """Every alert the sink received as firing, in any webhook."""
    return {_key(a["labels"]) for r in sink.ok() for a in r.json()["alerts"] if a["status"] == "firing"}


@pytest.mark.binaries
@pytest.mark.e2e
def test_real_alertmanager_delivers_the_pool_alert_and_holds_back_its_symptoms(alertmanager_to_sink) -> None:
    am, sink = alertmanager_to_sink
    now = dt.datetime.now(dt.timezone.utc)
    starts, ends = now - dt.timedelta(minutes=5), now + dt.timedelta(hours=1)
    pool = _pgbouncer(ROOT_CAUSE, "critical", PGB1, database="app")
    inhibited = {
        "slow": _pgbouncer("SlowDatabaseQueries", "warning", PGB1, database="app"),
        "connections": _pgbouncer("HighDatabaseConnections", "warning", PGB1),
    }
    controls = {
        "pool-usage-same-pgbouncer": _pgbouncer("DatabasePoolUsageHigh", "warning", PGB1, name="app"),
        "slow-other-pgbouncer": _pgbouncer("SlowDatabaseQueries", "warning", PGB2, database="app"),
        "connections-other-pgbouncer": _pgbouncer("HighDatabaseConnections", "warning", PGB2),
        "slow-other-cluster": {**_pgbouncer("SlowDatabaseQueries", "warning", PGB1, database="app"),
                               "cluster": "prod-us-1"},
        "postgres-warning": _alert("PostgresConnectionsHigh", "warning", "postgresql", instance="db-1:9187",
                                   job="postgres", team="db"),
        "cpu-warning-same-host": _alert("HostHighCpuUsage", "warning", "node", instance="pgb-1:9100", job="node"),
    }

    # The root cause first, so that no symptom can be sent before Alertmanager knows it (as `for:` makes it in
    # production: the exhaustion pages after 2m, its symptoms after 10m).
    am.push(_postable(pool, starts, ends))
    wait_until(lambda: any(a["labels"] == pool for a in am.alerts()), timeout=WAIT_S, what="the pool alert listed")
    am.push(*(_postable(labels, starts, ends) for labels in [*inhibited.values(), *controls.values()]))

    expected = {_key(pool)} | {_key(labels) for labels in controls.values()}
    try:
        wait_until(lambda: expected <= _delivered_firing(sink), timeout=WAIT_S, interval=0.1,
                   what="the pool alert and every control at the sink")
    except TimeoutError as exc:
        pytest.fail(f"{exc}\ndelivered: {sorted(_delivered_firing(sink))}\n{am.log()}")
    # A marker pushed after everything else: once it is delivered, group_wait (1s in the copy) has passed for
    # every group the symptoms were pushed into, so a symptom not held back would be here by now.
    marker = _alert("HostHighMemoryUsage", "warning", "node", instance="marker:9100", job="node")
    am.push(_postable(marker, starts, ends))
    expected.add(_key(marker))
    wait_until(lambda: _key(marker) in _delivered_firing(sink), timeout=WAIT_S, interval=0.1, what="the marker")
    assert _delivered_firing(sink) == expected, "only the pool alert and the controls are delivered"

    # Alertmanager's own account: exactly the two symptoms are suppressed, by the pool alert.
    by_labels = {_key(a["labels"]): a for a in am.alerts()}
    pool_fingerprint = by_labels[_key(pool)]["fingerprint"]
    for name, labels in inhibited.items():
        status = by_labels[_key(labels)]["status"]
        assert (status["state"], status["inhibitedBy"]) == ("suppressed", [pool_fingerprint]), name
    for name, labels in [("pool", pool), ("marker", marker), *controls.items()]:
        assert by_labels[_key(labels)]["status"]["state"] == "active", name

    # The pool recovers: the symptoms were held back, not lost.
    am.push(_postable(pool, starts, dt.datetime.now(dt.timezone.utc)))
    released = expected | {_key(labels) for labels in inhibited.values()}
    try:
        wait_until(lambda: _delivered_firing(sink) == released, timeout=WAIT_S, interval=0.1,
                   what="the symptoms delivered once the pool alert resolved")
    except TimeoutError as exc:
        pytest.fail(f"{exc}\ndelivered: {sorted(_delivered_firing(sink))}\n{am.log()}")
