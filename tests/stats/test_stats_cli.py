"""`alert-receiver stats …` prints the API's numbers: JSON when piped, CSV on request."""

from __future__ import annotations

import datetime as dt
import json

from click.testing import CliRunner

from receiver.cli import main

from .test_stats_api import SINCE, UNTIL, history, stats_source, z  # noqa: F401 (fixtures)


def test_summary_and_top_match_the_api(history, make_config, tmp_path):  # noqa: F811
    client, _ = history
    config_path = sorted(tmp_path.glob("receiver-*.yml"))[0]
    period = ["--since", z(SINCE), "--until", z(UNTIL)]
    runner = CliRunner()
    result = runner.invoke(main, ["stats", "summary", "-c", str(config_path), *period])
    assert result.exit_code == 0, result.output
    api = client.get("/api/v1/stats/summary", query_string={"since": z(SINCE), "until": z(UNTIL)}).get_json()
    assert json.loads(result.output) == api
    # The table and CSV list min, p50, p90, max and the method beside the mean (issue #19).
    result = runner.invoke(main, ["stats", "summary", "-c", str(config_path), "--format", "csv", *period])
    assert result.exit_code == 0, result.output
    for k in ("mtta_seconds", "mttr_seconds"):
        for stat in ("mean", "min", "p50", "p90", "max", "method"):
            want = api[k][stat]
            assert f"{k}.{stat},{'' if want is None else want}" in result.output.splitlines(), (k, stat)
    result = runner.invoke(main, ["stats", "top", "-c", str(config_path), "--by", "noise", "--format", "csv", *period])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "alertname,service,count,noisy,noise_ratio,median_firing_seconds"
    api = client.get("/api/v1/stats/top", query_string={"since": z(SINCE), "until": z(UNTIL), "by": "noise"}).get_json()
    assert len(lines) - 1 == len(api["top"])
    assert runner.invoke(main, ["stats", "trends", "-c", str(config_path), "--tz", "Nowhere/Else"]).exit_code != 0


def test_refresh_builds_the_aggregates_the_api_then_reads(history, stats_source, tmp_path):  # noqa: F811
    client, _ = history
    config_path = sorted(tmp_path.glob("receiver-*.yml"))[0]
    query = {"since": z(SINCE), "until": z(UNTIL)}
    before = client.get("/api/v1/stats/summary", query_string=query).get_json()
    result = CliRunner().invoke(main, ["stats", "refresh", "-c", str(config_path)])
    assert result.exit_code == 0, result.output
    # Up to the wall clock less the settle delay (the CLI runs on the real clock): the whole dataset.
    last = result.output.strip().splitlines()[-1]  # after any log lines
    watermark = dt.datetime.fromisoformat(last.split()[3].rstrip(":"))
    assert UNTIL < watermark < dt.datetime.now(dt.timezone.utc)
    after = client.get("/api/v1/stats/summary", query_string=query).get_json()
    assert after["source"] == "aggregates+alerts"
    assert after["total"] == before["total"] and after["by_status"] == before["by_status"]
