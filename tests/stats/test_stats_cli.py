"""`alert-receiver stats …` prints the API's numbers: JSON when piped, CSV on request."""

from __future__ import annotations

import json

from click.testing import CliRunner

from receiver.cli import main

from .test_stats_api import SINCE, UNTIL, history, z  # noqa: F401 (history is a fixture)


def test_summary_and_top_match_the_api(history, make_config, tmp_path):  # noqa: F811
    client, _ = history
    config_path = sorted(tmp_path.glob("receiver-*.yml"))[0]
    period = ["--since", z(SINCE), "--until", z(UNTIL)]
    runner = CliRunner()
    result = runner.invoke(main, ["stats", "summary", "-c", str(config_path), *period])
    assert result.exit_code == 0, result.output
    api = client.get("/api/v1/stats/summary", query_string={"since": z(SINCE), "until": z(UNTIL)}).get_json()
    assert json.loads(result.output) == api
    result = runner.invoke(main, ["stats", "top", "-c", str(config_path), "--by", "noise", "--format", "csv", *period])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "alertname,service,count,noisy,noise_ratio,median_firing_seconds"
    api = client.get("/api/v1/stats/top", query_string={"since": z(SINCE), "until": z(UNTIL), "by": "noise"}).get_json()
    assert len(lines) - 1 == len(api["top"])
    assert runner.invoke(main, ["stats", "trends", "-c", str(config_path), "--tz", "Nowhere/Else"]).exit_code != 0
