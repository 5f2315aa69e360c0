"""alertmanager/alertmanager.yml: amtool's verdict, who receives what, and the contract of docs/design.md.

- `amtool check-config` on the file as it is. The bearer token and SMTP password are files that exist
  only on the Alertmanager host; amtool 0.25 does not open them (Alertmanager reads them when it
  sends), so no generated copy is needed here (prometheus.yml needs one: promtool stats such files).
- every case of alertmanager/routes-tests.yml through `amtool config routes test --verify.receivers`,
  and every rule of prometheus/rules/ through the routing tree (its severity decides its route);
- plain Python over the YAML: windows per severity, inhibit rules, the webhook receiver, the fallback;
- the real Alertmanager (e2e): loads the file and inhibits what the inhibit rules say, and nothing more.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from tests.platform.test_prometheus_rules import ALERTING_RULES, WATCHDOG, parse_duration
from tests.support.alertmanager import AlertmanagerProcess, api, generated_copy
from tests.support.binaries import require_binary

ROOT = Path(__file__).resolve().parents[2]
ALERTMANAGER_YML = ROOT / "alertmanager" / "alertmanager.yml"
ROUTES_TESTS = ROOT / "alertmanager" / "routes-tests.yml"

CONFIG = yaml.safe_load(ALERTMANAGER_YML.read_text(encoding="utf-8"))
ROUTE_CASES = yaml.safe_load(ROUTES_TESTS.read_text(encoding="utf-8"))["cases"]

RECEIVER_PORT = 9095
FALLBACK_SERVICE = "alert-receiver"  # label of the rules that watch alert-receiver itself
GROUP_WAIT = {"critical": 0, "warning": 30, "info": 60}

# --------------------------------------------------------------------------------------------------
# Alertmanager matchers, evaluated in Python (=, !=, =~, !~; regexes are anchored like Alertmanager's)

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$')


def parse_matcher(text: str) -> tuple[str, str, str]:
    match = _MATCHER.match(text)
    assert match, f"cannot parse matcher {text!r}"
    name, op, quoted, bare = match.groups()
    value = bytes(quoted, "utf-8").decode("unicode_escape") if quoted is not None else bare
    return name, op, value


def matches(matchers: list[str], labels: dict[str, str]) -> bool:
    for text in matchers:
        name, op, value = parse_matcher(text)
        actual = labels.get(name, "")
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
        if op == "=~" and not re.fullmatch(value, actual):
            return False
        if op == "!~" and re.fullmatch(value, actual):
            return False
    return True


def route_matchers(route: dict) -> list[str]:
    assert "match" not in route and "match_re" not in route, "use `matchers:` (match/match_re are deprecated)"
    return list(route.get("matchers") or [])


def child_routes() -> list[dict]:
    return list(CONFIG["route"].get("routes") or [])


def route_for(labels: dict[str, str]) -> dict:
    """The first child route that matches (the routing tree is one level deep)."""
    for route in child_routes():
        if matches(route_matchers(route), labels):
            return route
    raise AssertionError(f"no child route matches {labels}")


def receivers_by_name() -> dict[str, dict]:
    return {receiver["name"]: receiver for receiver in CONFIG["receivers"]}


def is_alert_receiver_webhook(config: dict) -> bool:
    url = urlparse(config["url"])
    return url.port == RECEIVER_PORT and (url.path == "/webhook" or url.path.startswith("/webhook/"))


def alert_receiver_receivers() -> dict[str, dict]:
    return {
        name: receiver
        for name, receiver in receivers_by_name().items()
        if any(is_alert_receiver_webhook(w) for w in receiver.get("webhook_configs") or [])
    }


# --------------------------------------------------------------------------------------------------
# amtool


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)


def _explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def amtool_label(name: str, value: str) -> str:
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{escaped}"'


def amtool_routes(amtool: str, labels: dict[str, str], expected: list[str]) -> subprocess.CompletedProcess:
    return _run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_YML}",
            f"--verify.receivers={','.join(expected)}",
            *[amtool_label(k, v) for k, v in labels.items()],
        ]
    )


@pytest.mark.binaries
def test_amtool_check_config() -> None:
    amtool = require_binary("amtool")
    result = _run([amtool, "check-config", str(ALERTMANAGER_YML)])
    assert result.returncode == 0, _explain(result)
    assert "SUCCESS" in result.stdout, _explain(result)


@pytest.mark.binaries
@pytest.mark.parametrize("case", ROUTE_CASES, ids=[case["name"] for case in ROUTE_CASES])
def test_routes_case(case: dict) -> None:
    amtool = require_binary("amtool")
    result = amtool_routes(amtool, case["labels"], case["receivers"])
    assert result.returncode == 0, _explain(result)
    assert result.stdout.strip().splitlines()[-1] == ",".join(case["receivers"]), _explain(result)


def _expected_receivers(labels: dict[str, str]) -> list[str]:
    """The routing policy: Watchdog apart; alert-receiver's own alerts also to the fallback; else by severity."""
    if labels["alertname"] == WATCHDOG:
        return ["alert-receiver-watchdog"]
    expected = [f"alert-receiver-{labels['severity']}"]
    if labels.get("service") == FALLBACK_SERVICE:
        expected.insert(0, "platform-fallback")
    return expected


def _rule_label_sets() -> list[dict[str, str]]:
    """The static labels of every alerting rule; templated values get a sample value."""
    seen, label_sets = set(), []
    for _, rule in ALERTING_RULES:
        labels = {"alertname": rule["alert"], "cluster": "prod-eu-1"}
        for name, value in (rule.get("labels") or {}).items():
            labels[name] = "checkout" if "{{" in str(value) else str(value)
        key = tuple(sorted(labels.items()))
        if key not in seen:
            seen.add(key)
            label_sets.append(labels)
    return label_sets


RULE_LABEL_SETS = _rule_label_sets()


@pytest.mark.binaries
@pytest.mark.parametrize(
    "labels", RULE_LABEL_SETS, ids=[f"{labels['alertname']}:{labels['severity']}" for labels in RULE_LABEL_SETS]
)
def test_every_rule_reaches_its_route(labels: dict[str, str]) -> None:
    """prometheus/rules and alertmanager.yml agree: each rule lands on the route of its severity."""
    amtool = require_binary("amtool")
    expected = _expected_receivers(labels)
    result = amtool_routes(amtool, labels, expected)
    assert result.returncode == 0, _explain(result)


def test_routes_cases_cover_every_receiver_and_severity() -> None:
    used = {receiver for case in ROUTE_CASES for receiver in case["receivers"]}
    routed = {CONFIG["route"]["receiver"]} | {route["receiver"] for route in child_routes()}
    assert routed <= used, f"receivers without a routes-tests case: {routed - used}"
    severities = {case["labels"].get("severity") for case in ROUTE_CASES}
    assert {"critical", "warning", "info", "none", None} <= severities


def test_routes_cases_agree_with_the_python_reading_of_the_tree() -> None:
    """The matcher evaluator used by the checks below reads the tree as amtool does (first match wins,
    `continue: true` goes on)."""
    for case in ROUTE_CASES:
        got = []
        for route in child_routes():
            if matches(route_matchers(route), case["labels"]):
                got.append(route["receiver"])
                if not route.get("continue"):
                    break
        assert (got or [CONFIG["route"]["receiver"]]) == case["receivers"], case["name"]


# --------------------------------------------------------------------------------------------------
# The routing tree


def test_root_route_groups_one_incident_per_group() -> None:
    root = CONFIG["route"]
    assert {"alertname", "service", "cluster"} <= set(root["group_by"])
    assert "..." not in root["group_by"], "grouping by every label makes one group per alert"
    assert "instance" not in root["group_by"], "one incident across many hosts is one group"
    assert root["receiver"] in alert_receiver_receivers(), "unmatched alerts still reach alert-receiver"


@pytest.mark.parametrize("severity", sorted(GROUP_WAIT))
def test_severity_route_windows(severity: str) -> None:
    route = route_for({"alertname": "AnyAlert", "severity": severity, "service": "checkout"})
    assert route_matchers(route) == [f'severity="{severity}"']
    assert route["receiver"] in alert_receiver_receivers()
    assert parse_duration(route["group_wait"]) == GROUP_WAIT[severity]
    group_interval = parse_duration(route["group_interval"])
    repeat_interval = parse_duration(route["repeat_interval"])
    assert 60 <= group_interval <= 600, "changes and resolutions must go out within minutes"
    assert repeat_interval >= group_interval
    assert not route.get("continue")


def test_severity_windows_grow_with_lower_severity() -> None:
    routes = [route_for({"alertname": "A", "severity": s, "service": "x"}) for s in ("critical", "warning", "info")]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        values = [parse_duration(route[key]) for route in routes]
        assert values == sorted(values), f"{key} should not shrink from critical to info: {values}"


def test_watchdog_route() -> None:
    first = child_routes()[0]
    assert route_matchers(first) == ['alertname="Watchdog"'], "the Watchdog route comes first"
    assert not first.get("continue"), "the Watchdog must not reach the severity routes"
    assert first["receiver"] in alert_receiver_receivers()
    assert parse_duration(first["group_wait"]) == 0
    assert parse_duration(first["repeat_interval"]) <= 60, "alert-receiver expects the Watchdog every minute"
    assert parse_duration(first["group_interval"]) <= parse_duration(first["repeat_interval"])
    assert set(first["group_by"]) >= {"alertname"} and "service" not in first["group_by"]


def test_receiver_watching_alerts_reach_the_fallback() -> None:
    """Every rule about alert-receiver reaches a receiver that does not go through alert-receiver."""
    fallback_routes = [r for r in child_routes() if route_matchers(r) == [f'service="{FALLBACK_SERVICE}"']]
    assert len(fallback_routes) == 1
    route = fallback_routes[0]
    assert route.get("continue") is True, "the fallback is in addition to alert-receiver, not instead of it"
    fallback = receivers_by_name()[route["receiver"]]
    assert route["receiver"] not in alert_receiver_receivers()
    assert fallback.get("email_configs") or fallback.get("pagerduty_configs") or fallback.get("webhook_configs")
    for config in fallback.get("webhook_configs") or []:
        assert urlparse(config["url"]).port != RECEIVER_PORT, "a fallback webhook must not be alert-receiver"
    for config in fallback.get("email_configs") or []:
        assert config.get("send_resolved") is True

    watching = [labels for labels in RULE_LABEL_SETS if labels.get("service") == FALLBACK_SERVICE]
    assert {labels["alertname"] for labels in watching} >= {
        "AlertReceiverDown",
        "AlertReceiverWebhookErrors",
        "AlertReceiverOutboxBacklog",
        "AlertReceiverNotificationsDead",
        "AlertReceiverEngineNotTicking",
    }
    for labels in watching:
        assert matches(route_matchers(route), labels), labels["alertname"]
        assert route_for(labels) is route, f"{labels['alertname']} is caught by an earlier route"


# --------------------------------------------------------------------------------------------------
# Inhibit rules


def _inhibit_rules() -> list[dict]:
    rules = CONFIG.get("inhibit_rules") or []
    for rule in rules:
        assert not {"source_match", "source_match_re", "target_match", "target_match_re"} & set(rule), (
            "use source_matchers/target_matchers (the old keys are deprecated)"
        )
    return rules


def inhibits(source: dict[str, str], target: dict[str, str]) -> bool:
    for rule in _inhibit_rules():
        if (
            matches(rule["source_matchers"], source)
            and matches(rule["target_matchers"], target)
            and all(source.get(name, "") == target.get(name, "") for name in rule.get("equal", []))
        ):
            return True
    return False


def _alert(alertname: str, severity: str, service: str, **labels: str) -> dict[str, str]:
    return {"alertname": alertname, "severity": severity, "service": service, "cluster": "prod-eu-1", **labels}


def test_critical_inhibits_warning_and_info_with_equal_alertname_and_service() -> None:
    rule = next(r for r in _inhibit_rules() if r["source_matchers"] == ['severity="critical"'])
    assert {"alertname", "service"} <= set(rule["equal"])
    assert matches(rule["target_matchers"], {"severity": "warning"})
    assert matches(rule["target_matchers"], {"severity": "info"})
    assert not matches(rule["target_matchers"], {"severity": "critical"})

    crit = _alert("HostHighCpuUsage", "critical", "node", instance="web-1:9100", job="node")
    assert inhibits(crit, _alert("HostHighCpuUsage", "warning", "node", instance="web-1:9100", job="node"))
    assert inhibits(crit, _alert("HostHighCpuUsage", "info", "node", instance="web-1:9100", job="node"))
    # narrowed to the same alert: another host, another alert, another service, another cluster
    assert not inhibits(crit, _alert("HostHighCpuUsage", "warning", "node", instance="web-2:9100", job="node"))
    assert not inhibits(crit, _alert("HostHighMemoryUsage", "warning", "node", instance="web-1:9100", job="node"))
    assert not inhibits(_alert("HttpHighErrorRatio", "critical", "checkout"), _alert("HttpHighErrorRatio", "warning", "search"))
    assert not inhibits(
        _alert("HttpHighErrorRatio", "critical", "checkout"), {**_alert("HttpHighErrorRatio", "warning", "checkout"), "cluster": "prod-us-1"}
    )
    disk = dict(instance="db-1:9100", job="node", device="/dev/sda1")
    assert not inhibits(
        _alert("HostDiskSpaceLow", "critical", "node", mountpoint="/", **disk),
        _alert("HostDiskSpaceLow", "warning", "node", mountpoint="/data", **disk),
    )
    # aggregated alerts carry no instance: equal on both sides
    assert inhibits(_alert("HttpHighErrorRatio", "critical", "checkout", job="api"), _alert("HttpHighErrorRatio", "warning", "checkout", job="api"))
    assert inhibits(_alert("TlsCertificateExpiringSoon", "warning", "shop"), _alert("TlsCertificateExpiringSoon", "info", "shop"))
    assert not inhibits(_alert("HttpHighErrorRatio", "warning", "checkout"), _alert("HttpHighErrorRatio", "critical", "checkout"))


def test_root_causes_inhibit_their_symptoms() -> None:
    service_down = _alert("ServiceDown", "critical", "checkout", job="api")
    assert inhibits(service_down, _alert("HttpHighErrorRatio", "critical", "checkout", job="api"))
    assert inhibits(service_down, _alert("ServiceInstanceDown", "warning", "checkout", job="api", instance="checkout-1:8080"))
    assert inhibits(service_down, _alert("EndpointProbeFailed", "critical", "checkout", instance="https://shop.example.org/healthz"))
    assert not inhibits(service_down, _alert("HttpHighErrorRatio", "critical", "search", job="api"))
    assert not inhibits(service_down, _alert("ServiceDown", "critical", "checkout", job="api"))

    database_down = _alert("DatabaseDown", "critical", "postgresql", instance="db-1:9187", job="postgres", team="db")
    assert inhibits(database_down, _alert("PostgresConnectionsHigh", "critical", "postgresql", instance="db-1:9187", job="postgres"))
    assert inhibits(database_down, _alert("PostgresDeadlocksDetected", "info", "postgresql", instance="db-1:9187", job="postgres"))
    assert not inhibits(database_down, _alert("PostgresReplicationLag", "warning", "postgresql", instance="db-2:9187", job="postgres"))
    assert inhibits(
        _alert("RedisDown", "critical", "redis", instance="cache-1:9121"), _alert("RedisMemoryHigh", "warning", "redis", instance="cache-1:9121")
    )

    receiver_down = _alert("AlertReceiverDown", "critical", "alert-receiver", job="alert-receiver")
    assert inhibits(receiver_down, _alert("AlertReceiverEngineNotTicking", "critical", "alert-receiver", job="alert-receiver"))
    assert inhibits(receiver_down, _alert("AlertmanagerWebhookDeliveryFailing", "critical", "alert-receiver", job="alertmanager"))


def test_inhibit_rules_name_existing_alerts() -> None:
    """A typo in an alertname matcher would silently inhibit nothing."""
    names = {rule["alert"] for _, rule in ALERTING_RULES}
    for rule in _inhibit_rules():
        for text in rule["source_matchers"]:
            name, op, value = parse_matcher(text)
            if name == "alertname" and op in ("=", "=~"):
                alternatives = value.split("|") if op == "=~" else [value]
                unknown = [a for a in alternatives if a not in names]
                assert not unknown, f"inhibit rule source names unknown alerts {unknown}"


def test_watchdog_is_never_inhibited() -> None:
    """An inhibited Watchdog would look like a dead pipeline to alert-receiver."""
    watchdog = next(rule for _, rule in ALERTING_RULES if rule["alert"] == WATCHDOG)
    labels = {"alertname": WATCHDOG, "cluster": "prod-eu-1", **{k: str(v) for k, v in watchdog["labels"].items()}}
    for rule in _inhibit_rules():
        assert not matches(rule["target_matchers"], labels), f"the Watchdog is a target of {rule}"


# --------------------------------------------------------------------------------------------------
# The webhook receivers


def test_alert_receiver_webhooks() -> None:
    receivers = alert_receiver_receivers()
    assert {"alert-receiver", "alert-receiver-critical", "alert-receiver-warning", "alert-receiver-info", "alert-receiver-watchdog"} <= set(receivers)
    for name, receiver in receivers.items():
        for config in receiver["webhook_configs"]:
            assert config.get("send_resolved") is True, name
            assert isinstance(config.get("max_alerts"), int) and 0 < config["max_alerts"] <= 10000, (
                f"{name}: choose max_alerts deliberately (0 means unlimited)"
            )
            assert "url_file" not in config
            http = config.get("http_config") or {}
            auth = http.get("authorization") or {}
            assert str(auth.get("type", "Bearer")).lower() == "bearer", name
            assert auth.get("credentials_file", "").startswith("/"), f"{name}: bearer token from a file"
            assert "credentials" not in auth and "bearer_token" not in http, f"{name}: no inline secrets"
            assert "basic_auth" not in http


def test_no_inline_secrets() -> None:
    text = ALERTMANAGER_YML.read_text(encoding="utf-8")
    for key in ("smtp_auth_password:", "auth_password:", "routing_key:", "service_key:", "api_key:", "credentials:"):
        assert not re.search(rf"^\s*{key}", text, re.MULTILINE), f"{key} inline; use the *_file variant"


# --------------------------------------------------------------------------------------------------
# The real Alertmanager (e2e): it loads the file and inhibits exactly what the rules above say


@pytest.fixture
def alertmanager(tmp_path: Path):
    """The real binary on a loopback port, on a copy of alertmanager.yml whose deliveries go to a closed port."""
    binary = require_binary("prometheus-alertmanager")
    process = AlertmanagerProcess(binary, generated_copy(tmp_path), tmp_path).start()
    try:
        process.wait_ready(timeout=20)
        yield process.url
    finally:
        process.stop()


@pytest.mark.binaries
@pytest.mark.e2e
def test_real_alertmanager_inhibits_as_configured(alertmanager: str) -> None:
    now = datetime.now(timezone.utc)
    ends = (now + timedelta(hours=1)).isoformat()

    def alert(**labels: str) -> dict:
        return {"labels": {"cluster": "prod-eu-1", **labels}, "annotations": {"summary": "e2e"}, "endsAt": ends}

    pushed = {
        "cpu-critical": alert(alertname="HostHighCpuUsage", severity="critical", service="node", instance="web-1:9100", job="node"),
        "cpu-warning-same-host": alert(alertname="HostHighCpuUsage", severity="warning", service="node", instance="web-1:9100", job="node"),
        "cpu-warning-other-host": alert(alertname="HostHighCpuUsage", severity="warning", service="node", instance="web-2:9100", job="node"),
        "service-down": alert(alertname="ServiceDown", severity="critical", service="checkout", job="api"),
        "checkout-errors": alert(alertname="HttpHighErrorRatio", severity="critical", service="checkout", job="api"),
        "search-errors": alert(alertname="HttpHighErrorRatio", severity="warning", service="search", job="api"),
        "database-down": alert(alertname="DatabaseDown", severity="critical", service="postgresql", instance="db-1:9187", job="postgres"),
        "db1-connections": alert(alertname="PostgresConnectionsHigh", severity="warning", service="postgresql", instance="db-1:9187", job="postgres"),
        "db2-connections": alert(alertname="PostgresConnectionsHigh", severity="warning", service="postgresql", instance="db-2:9187", job="postgres"),
        "receiver-down": alert(alertname="AlertReceiverDown", severity="critical", service="alert-receiver", job="alert-receiver"),
        "receiver-engine": alert(alertname="AlertReceiverEngineNotTicking", severity="critical", service="alert-receiver", job="alert-receiver"),
        "watchdog": alert(alertname="Watchdog", severity="none", service="alerting-pipeline"),
        # a ServiceDown with the Watchdog's service label must still not inhibit it
        "pipeline-down": alert(alertname="ServiceDown", severity="critical", service="alerting-pipeline", job="x"),
    }
    expected_suppressed = {"cpu-warning-same-host", "checkout-errors", "db1-connections", "receiver-engine"}

    api("POST", f"{alertmanager}/api/v2/alerts", list(pushed.values()))

    def states() -> dict[str, str]:
        by_labels = {json.dumps(a["labels"], sort_keys=True): key for key, a in pushed.items()}
        got = {}
        for item in api("GET", f"{alertmanager}/api/v2/alerts"):
            key = by_labels.get(json.dumps(item["labels"], sort_keys=True))
            if key:
                got[key] = item["status"]["state"]
        return got

    deadline = time.monotonic() + 15
    while True:
        got = states()
        suppressed = {key for key, state in got.items() if state == "suppressed"}
        if len(got) == len(pushed) and suppressed == expected_suppressed:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"suppressed {sorted(suppressed)}, expected {sorted(expected_suppressed)}; states {got}")
        time.sleep(0.2)

    # and the routes the real binary computes for them (the v2 API lists the receivers of each alert)
    receivers = {
        json.dumps(item["labels"], sort_keys=True): sorted(r["name"] for r in item["receivers"])
        for item in api("GET", f"{alertmanager}/api/v2/alerts")
    }
    assert receivers[json.dumps(pushed["watchdog"]["labels"], sort_keys=True)] == ["alert-receiver-watchdog"]
    assert receivers[json.dumps(pushed["receiver-down"]["labels"], sort_keys=True)] == ["alert-receiver-critical", "platform-fallback"]
    assert receivers[json.dumps(pushed["search-errors"]["labels"], sort_keys=True)] == ["alert-receiver-warning"]
