"""prometheus/: the rule files, their promtool unit tests, and prometheus.yml.

Two kinds of checks:
- the real promtool (Prometheus 2.42): `check config`, `check rules`, `test rules`; a missing binary
  fails the test in CI (CI=true) and skips it locally (tests/support/binaries.py);
- plain Python over the YAML: the conventions every alerting rule must follow (labels, annotations,
  `for:`), and that every rule has a firing and a non-firing promtool test case.

The Watchdog is the one documented exception: severity "none" (never a severity route or a severity
inhibit rule, never escalated by alert-receiver), no `for:`, and no non-firing case (it always fires).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from tests.support.binaries import require_binary

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
TESTS_DIR = PROMETHEUS_DIR / "tests"
PROMETHEUS_YML = PROMETHEUS_DIR / "prometheus.yml"

SEVERITIES = {"critical", "warning", "info"}
WATCHDOG = "Watchdog"
REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url")

# `for:` bounds in seconds: critical pages quickly but never on a single evaluation; warning and info
# wait longer so that they do not flap.
CRITICAL_FOR = (120, 300)
WARNING_MIN_FOR = 300
INFO_MIN_FOR = 60

_DURATION_PART = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str | int | None) -> float:
    """Seconds in a Prometheus/Alertmanager duration such as `1h30m`, `90s`, `0s`."""
    if text is None:
        return 0.0
    text = str(text).strip()
    if text == "0":
        return 0.0
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _DURATION_SECONDS[u] for n, u in parts)


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def promtool_test_files() -> list[Path]:
    return sorted(TESTS_DIR.glob("*.yml"))


def load_alerting_rules() -> list[tuple[Path, dict]]:
    """Every alerting rule in prometheus/rules/*.yml with the file it comes from."""
    rules = []
    for path in rule_files():
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in document["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rules.append((path, rule))
    return rules


ALERTING_RULES = load_alerting_rules()


def _rule_id(item: tuple[Path, dict]) -> str:
    path, rule = item
    return f"{path.stem}:{rule['alert']}:{rule.get('labels', {}).get('severity')}"


# --------------------------------------------------------------------------------------------------
# The real promtool


def _run(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def _explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


_SECRET_FILE_KEYS = re.compile(
    r"^(?P<indent>\s*)(?P<key>credentials_file|bearer_token_file|password_file|ca_file|cert_file|key_file)"
    r"\s*:\s*(?P<path>\S+)\s*$",
    re.MULTILINE,
)


def materialise_secret_files(config_text: str, secrets_dir: Path) -> str:
    """The config with every secret/TLS file reference pointed at an existing placeholder file.

    `promtool check config` stats every *_file it finds (and fails on a missing one), while the real
    files live only on the Prometheus host. The copy differs from the original in those paths only.
    """
    secrets_dir.mkdir(parents=True, exist_ok=True)

    def replace(match: re.Match) -> str:
        placeholder = secrets_dir / Path(match["path"].strip("'\"")).name
        placeholder.write_text("placeholder\n", encoding="utf-8")
        return f"{match['indent']}{match['key']}: {placeholder}"

    return _SECRET_FILE_KEYS.sub(replace, config_text)


@pytest.mark.binaries
def test_promtool_check_config(tmp_path: Path) -> None:
    """prometheus.yml and every rule file it loads (rule_files is relative to the config's directory)."""
    promtool = require_binary("promtool")
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, copy)
    config = copy / "prometheus.yml"
    config.write_text(
        materialise_secret_files(PROMETHEUS_YML.read_text(encoding="utf-8"), tmp_path / "secrets"),
        encoding="utf-8",
    )
    result = _run([promtool, "check", "config", str(config)])
    assert result.returncode == 0, _explain(result)
    assert f"SUCCESS: {len(rule_files())} rule files found" in result.stdout, _explain(result)


@pytest.mark.binaries
def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool")
    result = _run([promtool, "check", "rules", "--lint=all", "--lint-fatal", *map(str, rule_files())])
    assert result.returncode == 0, _explain(result)
    found = sum(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", result.stdout))
    assert found == sum(
        len(group["rules"])
        for path in rule_files()
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    ), _explain(result)


@pytest.mark.binaries
def test_promtool_test_rules() -> None:
    promtool = require_binary("promtool")
    result = _run([promtool, "test", "rules", *[str(p.relative_to(ROOT)) for p in promtool_test_files()]])
    assert result.returncode == 0, _explain(result)
    assert "FAILED" not in result.stdout + result.stderr, _explain(result)


# --------------------------------------------------------------------------------------------------
# Conventions of every alerting rule (plain Python)


def test_there_are_rules_and_one_test_file_per_rule_file() -> None:
    assert ALERTING_RULES, "no alerting rules found in prometheus/rules/"
    rules = {p.name for p in rule_files()}
    tests = {p.name for p in promtool_test_files()}
    assert rules == tests, f"rules without a test file: {rules - tests}; test files without rules: {tests - rules}"
    for path in promtool_test_files():
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert document["rule_files"] == [f"../rules/{path.name}"], f"{path.name} must test ../rules/{path.name}"


def test_alert_names_and_severities_are_unique() -> None:
    seen: dict[tuple[str, str], str] = {}
    for path, rule in ALERTING_RULES:
        key = (rule["alert"], rule.get("labels", {}).get("severity"))
        assert key not in seen, f"{key} defined twice ({seen[key]}, {path.name})"
        seen[key] = path.name


@pytest.mark.parametrize("item", ALERTING_RULES, ids=_rule_id)
def test_rule_labels(item: tuple[Path, dict]) -> None:
    path, rule = item
    labels = rule.get("labels") or {}
    name = rule["alert"]
    severity = labels.get("severity")
    if name == WATCHDOG:
        assert severity == "none", "the Watchdog has severity none (see rules/meta.yml)"
    else:
        assert severity in SEVERITIES, f"{name} in {path.name}: severity {severity!r} not in {sorted(SEVERITIES)}"
    service = labels.get("service")
    assert isinstance(service, str) and service.strip(), f"{name} in {path.name} has no service label"


@pytest.mark.parametrize("item", ALERTING_RULES, ids=_rule_id)
def test_rule_annotations(item: tuple[Path, dict]) -> None:
    path, rule = item
    annotations = rule.get("annotations") or {}
    for key in REQUIRED_ANNOTATIONS:
        value = annotations.get(key)
        assert isinstance(value, str) and value.strip(), f"{rule['alert']} in {path.name} lacks annotation {key}"
    runbook = annotations["runbook_url"]
    assert runbook.startswith("https://"), f"{rule['alert']}: runbook_url must be an https URL"
    assert runbook.rstrip("/").endswith(rule["alert"]), f"{rule['alert']}: runbook_url should end in the alert name"


@pytest.mark.parametrize("item", ALERTING_RULES, ids=_rule_id)
def test_rule_for_duration(item: tuple[Path, dict]) -> None:
    _, rule = item
    name, severity = rule["alert"], rule["labels"]["severity"]
    duration = parse_duration(rule.get("for"))
    if name == WATCHDOG:
        assert duration == 0 and rule["expr"].strip() == "vector(1)", "the Watchdog fires always and at once"
        return
    if severity == "critical":
        low, high = CRITICAL_FOR
        assert low <= duration <= high, f"{name} critical: for {rule.get('for')} outside 2m..5m"
    elif severity == "warning":
        assert duration >= WARNING_MIN_FOR, f"{name} warning: for {rule.get('for')} shorter than 5m"
    else:
        assert duration >= INFO_MIN_FOR, f"{name} info: for {rule.get('for')} shorter than 1m"


def test_warning_waits_at_least_as_long_as_critical() -> None:
    by_name: dict[str, dict[str, float]] = defaultdict(dict)
    for _, rule in ALERTING_RULES:
        by_name[rule["alert"]][rule["labels"]["severity"]] = parse_duration(rule.get("for"))
    for name, fors in by_name.items():
        if "warning" in fors and "critical" in fors:
            assert fors["warning"] >= fors["critical"], f"{name}: warning for < critical for"


# --------------------------------------------------------------------------------------------------
# Every rule is tested: a firing case per severity, a non-firing case per alert name


def _test_cases() -> dict[str, list[tuple[str, dict]]]:
    """alert_rule_test cases per test file name."""
    cases: dict[str, list[tuple[str, dict]]] = {}
    for path in promtool_test_files():
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        cases[path.name] = [
            (group.get("name", "?"), case)
            for group in document.get("tests", [])
            for case in group.get("alert_rule_test", []) or []
        ]
    return cases


TEST_CASES = _test_cases()


@pytest.mark.parametrize("item", ALERTING_RULES, ids=_rule_id)
def test_rule_has_a_firing_case(item: tuple[Path, dict]) -> None:
    """A case in the rule file's own test file expects this rule's alert (alertname and severity)."""
    path, rule = item
    name, severity = rule["alert"], rule["labels"]["severity"]
    firing = [
        alert
        for _, case in TEST_CASES[path.name]
        if case.get("alertname") == name
        for alert in case.get("exp_alerts") or []
        if (alert.get("exp_labels") or {}).get("severity") == severity
    ]
    assert firing, f"tests/{path.name} has no case where {name} fires with severity {severity}"
    for alert in firing:
        assert (alert.get("exp_labels") or {}).get("service"), f"{name}: assert the service label in exp_labels"
        annotations = alert.get("exp_annotations") or {}
        missing = [key for key in REQUIRED_ANNOTATIONS if key not in annotations]
        assert not missing, f"{name}: a firing case does not assert annotations {missing}"


@pytest.mark.parametrize(
    "name,path",
    sorted({(rule["alert"], path) for path, rule in ALERTING_RULES if rule["alert"] != WATCHDOG}),
    ids=lambda value: value if isinstance(value, str) else value.stem,
)
def test_rule_has_a_non_firing_case(name: str, path: Path) -> None:
    """`exp_alerts: []` at some eval_time (before `for:` has passed, or just below the threshold)."""
    quiet = [
        case
        for _, case in TEST_CASES[path.name]
        if case.get("alertname") == name and "exp_alerts" in case and case["exp_alerts"] == []
    ]
    assert quiet, f"tests/{path.name} has no case with `exp_alerts: []` for {name}"


def test_watchdog_is_tested_as_always_firing() -> None:
    cases = [case for cases in TEST_CASES.values() for _, case in cases if case.get("alertname") == WATCHDOG]
    assert cases and all(case.get("exp_alerts") for case in cases), "the Watchdog must fire in every case"


def test_test_cases_name_existing_rules() -> None:
    """A renamed rule must not leave a test that silently checks nothing (promtool accepts unknown names)."""
    names = {rule["alert"] for _, rule in ALERTING_RULES}
    for file_name, cases in TEST_CASES.items():
        for group, case in cases:
            assert case.get("alertname") in names, f"{file_name} [{group}]: unknown alertname {case.get('alertname')!r}"


# --------------------------------------------------------------------------------------------------
# prometheus.yml (plain Python)


def test_prometheus_yml_wiring() -> None:
    config = yaml.safe_load(PROMETHEUS_YML.read_text(encoding="utf-8"))
    assert "rules/*.yml" in config["rule_files"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    receiver = jobs.get("alert-receiver")
    assert receiver, "prometheus.yml must scrape alert-receiver as job alert-receiver (the rules select on it)"
    assert receiver.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for group in receiver["static_configs"] for t in group["targets"]]
    assert targets and all(t.endswith(":9095") for t in targets), "alert-receiver serves /metrics on port 9095"
    assert jobs.get("alertmanager"), "AlertmanagerWebhookDeliveryFailing needs Alertmanager's own metrics"
    alertmanagers = config["alerting"]["alertmanagers"]
    assert alertmanagers and all(am.get("static_configs") or am.get("dns_sd_configs") for am in alertmanagers)
    for job in config["scrape_configs"]:
        for group in job.get("static_configs", []):
            assert (group.get("labels") or {}).get("service"), f"job {job['job_name']}: targets need a service label"


def test_secret_file_paths_are_materialised(tmp_path: Path) -> None:
    text = "scrape_configs:\n  - job_name: x\n    authorization:\n      credentials_file: /etc/prometheus/secrets/token\n"
    copy = materialise_secret_files(text, tmp_path)
    path = Path(yaml.safe_load(copy)["scrape_configs"][0]["authorization"]["credentials_file"])
    assert path.parent == tmp_path and path.exists()
