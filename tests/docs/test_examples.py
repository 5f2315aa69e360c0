"""The example configurations work as shipped: examples/receiver.yml with no environment at all (and a real serve
starts on it and pages its log channel), examples/receiver-production.yml with the environment file beside it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests

from ..support.fixtures import ROOT, recent
from ..support.process import ReceiverProcess, wait_until

EXAMPLES = ROOT / "examples"
BARE_ENV = {"PATH": "/usr/bin:/bin"}  # nothing from the developer's shell: a fresh clone's first run


def check_config(path, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "receiver", "check-config", str(path)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def env_file() -> dict[str, str]:
    pairs = {}
    for line in (EXAMPLES / "receiver.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, value = line.split("=", 1)
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name) and " " not in value and '"' not in value, line
            pairs[name] = value
    return pairs


def test_the_starter_config_is_accepted_with_no_environment():
    done = check_config(EXAMPLES / "receiver.yml", BARE_ENV)
    assert done.returncode == 0, done.stderr
    assert "${" not in (EXAMPLES / "receiver.yml").read_text()


def test_the_production_config_is_accepted_with_its_env_file_and_names_what_is_missing_without():
    wanted = set(re.findall(r"\$\{([A-Z0-9_]+)\}", (EXAMPLES / "receiver-production.yml").read_text()))
    given = env_file()
    assert wanted == set(given), f"used but not in receiver.env: {wanted - set(given)}; unused: {set(given) - wanted}"
    done = check_config(EXAMPLES / "receiver-production.yml", {**BARE_ENV, **given})
    assert done.returncode == 0, done.stderr
    without = check_config(EXAMPLES / "receiver-production.yml", BARE_ENV)
    assert without.returncode == 1 and "RECEIVER_WEBHOOK_TOKEN" in without.stderr, without.stderr


@pytest.mark.e2e
def test_a_real_serve_starts_on_the_starter_config_and_logs_the_page(tmp_path):
    receiver = ReceiverProcess(EXAMPLES / "receiver.yml", workers=2, cwd=str(tmp_path),
                               log_path=str(tmp_path / "serve.log")).start().wait_ready()
    try:
        r = requests.post(receiver.url + "/webhook", data=recent("g_routing_critical"), timeout=10,
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        assert (tmp_path / "alert-receiver.db").exists()
        # critical → L1 → the log-pager channel: the page appears in serve's own log
        wait_until(lambda: "log-pager" in receiver.log(), timeout=30, what="the L1 page in the log")
    finally:
        assert receiver.stop() == 0
