"""What the command line prints is safe to open and to look at (issue #15, finding 13): `stats … --format csv`
neutralises spreadsheet formulas like the API's export, and no output lets terminal escape sequences through on a
terminal (tables always, CSV when stdout is a terminal)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import pty
import subprocess
import sys

import select
import time

import pytest
from click.testing import CliRunner

from receiver.cli import main

from ..support.process import wait_until

STARTS = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)
PERIOD = ["--since", "2026-11-22T00:00:00Z", "--until", "2026-11-24T00:00:00Z"]
FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A9)", "\tbell", "\rcarriage"]
# An OSC title change, a bare ESC, an 8-bit CSI (U+009B), a BEL, a backspace, DEL: nothing a terminal should obey.
ESCAPES = "title\x1b]0;pwned\x07 clear\x1b[2J csi\x9b31m bs\x08 del\x7f"
CONTROLS = {chr(c) for c in [*range(0x00, 0x20), 0x7f, *range(0x80, 0xa0)]}


def _post(client, alertnames: list[str]) -> None:
    alerts = [{"status": "firing", "labels": {"alertname": name, "service": "svc", "severity": "critical"},
               "annotations": {}, "startsAt": STARTS.isoformat().replace("+00:00", "Z"),
               "endsAt": "0001-01-01T00:00:00Z"} for name in alertnames]
    body = {"version": "4", "status": "firing", "receiver": "r", "groupKey": "{}:{}", "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "", "truncatedAlerts": 0, "alerts": alerts}
    resp = client.post("/webhook", json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)


def _config_path(tmp_path) -> str:
    return str(sorted(tmp_path.glob("receiver-*.yml"))[0])


def _stats_top(tmp_path, fmt: str) -> str:
    result = CliRunner().invoke(main, ["stats", "top", "-c", _config_path(tmp_path), "--format", fmt, *PERIOD])
    assert result.exit_code == 0, result.output
    return result.output


def test_stats_csv_neutralises_formula_cells(client, tmp_path):
    _post(client, FORMULAS)
    rows = list(csv.DictReader(io.StringIO(_stats_top(tmp_path, "csv"), newline="")))
    assert sorted(r["alertname"] for r in rows) == sorted("'" + f for f in FORMULAS)
    assert all(not r["count"].startswith("'") for r in rows)  # numbers stay numbers


def test_stats_table_strips_control_characters(client, tmp_path):
    _post(client, [ESCAPES, "plain-name"])
    out = _stats_top(tmp_path, "table")
    assert not CONTROLS & (set(out) - {"\n"}), repr(out)
    assert "title]0;pwned clear[2J csi31m bs del" in out and "plain-name" in out


def test_stats_json_keeps_values_exact(client, tmp_path):
    _post(client, [ESCAPES])
    doc = json.loads(_stats_top(tmp_path, "json"))
    assert [t["alertname"] for t in doc["top"]] == [ESCAPES]  # escaped by JSON itself, not altered


def _on_a_terminal(args: list[str], timeout: float = 60.0) -> str:
    """Run `alert-receiver ARGS` with stdout on a pseudo-terminal; what the terminal received."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "receiver", *args], stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([leader], [], [], 0.1)[0]:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            received += chunk
    finally:
        os.close(leader)
        wait_until(lambda: proc.poll() is not None, timeout=timeout, what="the CLI to exit")
    assert proc.returncode == 0, proc.stderr.read().decode()
    return received.decode("utf-8")


@pytest.mark.parametrize("command", [["stats", "top", *PERIOD], ["stats", "top", "--format", "csv", *PERIOD],
                                     ["export"]])
def test_nothing_reaches_a_terminal_raw(client, tmp_path, command):
    _post(client, [ESCAPES])
    out = _on_a_terminal([*command[:2], "-c", _config_path(tmp_path), *command[2:]] if command[0] == "stats"
                         else [*command, "-c", _config_path(tmp_path)])
    assert not CONTROLS & (set(out) - {"\r", "\n"}), repr(out)
    assert "pwned" in out

