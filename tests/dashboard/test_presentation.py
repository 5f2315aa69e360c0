"""The dashboard's pure parts as case tables: durations, next steps, which URLs become links, and the SVG chart."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from receiver.web import dashboard_view as view
from receiver.web import svg_chart

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)


def at(seconds: float) -> str:
    return (NOW + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("seconds,text", [
    (None, "–"), (0, "0s"), (45, "45s"), (61, "1m 01s"), (3599, "59m 59s"), (3660, "1h 01m"), (90061, "1d 1h"),
    (-75, "-1m 15s"),
], ids=["none", "zero", "seconds", "minute", "under-hour", "hours", "days", "overdue"])
def test_duration(seconds, text):
    assert view.duration(seconds) == text


@pytest.mark.parametrize("alert,text,stopped", [
    ({"level": "L3", "next_action_at": at(300)}, "escalates to L2 in 5m 00s", False),
    ({"level": "L2", "next_action_at": at(-3)}, "escalates to L1 now", False),
    ({"level": "L1", "next_action_at": at(900)}, "repeats in 15m 00s", False),
    ({"level": "L2", "next_action_at": None, "acked_at": at(-60), "acked_by": "ann"}, "acknowledged by ann", True),
    ({"level": "L2", "next_action_at": at(1800), "acked_at": at(-60), "acked_by": "ann",
      "ack_expires_at": at(1800)}, "acknowledged by ann; the ack expires in 30m 00s", True),
    ({"level": "L3", "next_action_at": None, "escalate": False}, "never escalated (escalate: false)", True),
    ({"level": "L3", "next_action_at": None}, "nothing scheduled", False),
], ids=["l3-timer", "l2-due", "l1-repeat", "acked", "acked-with-expiry", "watchdog", "no-timer"])
def test_next_step(alert, text, stopped):
    step = view.next_step(alert, NOW)
    assert (step.text, step.stopped) == (text, stopped)


def test_now_rows_put_what_pages_soonest_first_and_acked_last():
    alerts = [
        {"id": 1, "level": "L3", "next_action_at": at(600), "level_entered_at": at(-10), "labels": {}},
        {"id": 2, "level": "L3", "next_action_at": None, "acked_at": at(-5), "level_entered_at": at(-20),
         "labels": {}},
        {"id": 3, "level": "L3", "next_action_at": at(60), "level_entered_at": at(-240),
         "labels": {"alertname": "X", "service": "s", "instance": "h:1", "severity": "info"}},
    ]
    rows = view.now_rows(alerts, NOW)
    assert [r.alert["id"] for r in rows] == [3, 1, 2]
    assert rows[0].at_level_seconds == 240 and rows[0].extra_labels == [("instance", "h:1")]


@pytest.mark.parametrize("url,link", [
    ("http://prometheus:9090/graph?g0.expr=up", "http://prometheus:9090/graph?g0.expr=up"),
    ("https://runbooks.example.com/x", "https://runbooks.example.com/x"),
    ("javascript:alert(1)", None), ("JaVaScRiPt:alert(1)", None), ("data:text/html,<b>", None),
    ("//evil.example/x", None), ("/relative", None), ("", None), (None, None), ("http://[::1", None),
], ids=["http", "https", "javascript", "javascript-case", "data", "scheme-relative", "relative", "empty", "none",
        "malformed"])
def test_only_http_urls_become_links(url, link):
    assert view.link_url(url) == link


@pytest.mark.parametrize("value,ceiling", [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (250, 500), (1000, 1000)])
def test_nice_ceiling(value, ceiling):
    assert svg_chart.nice_ceiling(value) == ceiling


def test_chart_stacks_each_bucket_and_escapes_series_names():
    buckets = [NOW + dt.timedelta(days=i) for i in range(3)]
    series = {"warning": [1, 0, 2], "critical": [0, 3, 1], "<b>odd</b>": [1, 0, 0]}
    svg = str(svg_chart.stacked_bars(buckets, series, interval="day", title="T <&>", chart_id="c"))
    tips = re.findall(r"<title>([^<]*)</title>", svg)
    assert '<title id="c-title">T &lt;&amp;&gt;</title>' in svg
    assert sorted(tips) == sorted(["23 Nov · warning: 1", "23 Nov · &lt;b&gt;odd&lt;/b&gt;: 1",
                                       "24 Nov · critical: 3", "25 Nov · warning: 2", "25 Nov · critical: 1"])
    assert "<b>" not in svg and "style=" not in svg and "<script" not in svg
    # Known severities keep their colours (CSS classes); others get a palette slot, never their own name.
    assert 'class="sev-critical"' in svg and 'class="sev-warning"' in svg and 'class="series-0"' in svg
    # The critical segment of day 2 (3 of an axis of 5) is three fifths of the plot height.
    heights = [float(h) for h in re.findall(r'class="sev-critical" x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"',
                                            svg)]
    assert max(heights) == pytest.approx((260 - 34 - 30) * 3 / 5, abs=0.1)
    assert "8 alerts in 3 day buckets; the busiest is 24 Nov with 3" in svg


def test_an_empty_chart_still_draws_its_axes():
    svg = str(svg_chart.stacked_bars([NOW], {}, interval="hour", title="none", chart_id="e"))
    assert "0 alerts in 1 hour buckets" in svg and svg.count("<line") == 3 and "<rect" not in svg
