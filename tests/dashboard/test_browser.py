"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright) against a real
`alert-receiver serve` (gunicorn, engine, second-scale timers) seeded through POST /webhook, with tokens configured.

One journey, in order: sign in with a write token; Now lists both alerts and refreshes itself; a click
acknowledges one, and while the other climbs L3 → L2 → L1 the acknowledged one stays put; the Alert page shows
its timeline; History filters and exports; Statistics draws its chart; Delivery retries a dead letter. Every page
shows the label `<script>alert(1)</script>` as text, no dialog ever opens, no CSP violation is reported, and a
screenshot of each page lands in test-artifacts/dashboard/. Every wait has a deadline; nothing sleeps.
"""

from __future__ import annotations

import os
import pathlib
import re

import pytest
import requests
import yaml

from ..support.binaries import require_binary
from ..support.fixtures import ROOT, recent
from ..support.process import ReceiverProcess, wait_until
from .support import SCRIPT, TOKENS, hostile_body, token_settings

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# An alert climbs a level every 8 s unacknowledged: time enough to click first, short enough for a quick test.
ESCALATION = {"tick": "1s", "L3": {"escalate_after": "8s"}, "L2": {"escalate_after": "8s"},
              "L1": {"repeat_every": "1h"}}


def playwright_api():
    try:
        from playwright import sync_api
    except ImportError:
        message = "playwright not installed: `pip install playwright` (it is in the [test] extra; never run " \
                  "`playwright install`, the tests use Debian's chromium)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return sync_api


@pytest.fixture
def receiver(tmp_path, sink):
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({
        "database": {"url": f"sqlite:///{tmp_path}/receiver.db"},
        "auth": {"tokens": token_settings()},
        "escalation": ESCALATION,
        "channels": {name: {"type": "webhook", "url": f"{sink.url}/{name}"} for name in ("l3", "l2", "l1")},
        "routes": [{"levels": {"L3": ["l3"], "L2": ["l2"], "L1": ["l1"]}}],
    }))
    process = ReceiverProcess(path, workers=2).start().wait_ready()
    yield process
    process.stop()


@pytest.fixture
def browser():
    executable = require_binary("chromium")
    api = playwright_api()
    with api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def api(receiver, path: str, role: str = "read", **params):
    r = requests.get(receiver.url + path, params=params, headers={"Authorization": f"Bearer {TOKENS[role]}"},
                     timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def post_webhook(receiver, body: bytes) -> None:
    r = requests.post(receiver.url + "/webhook", data=body, timeout=10,
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKENS['webhook']}"})
    assert r.status_code == 200, r.text


def id_of(receiver, alertname: str) -> int:
    return next(a["id"] for a in api(receiver, "/api/v1/alerts")["alerts"] if a["alertname"] == alertname)


class Journey:
    """A page plus what every page must satisfy: the hostile label visible as text, no dialog, no CSP report."""

    def __init__(self, page, expect, base: str):
        self.page, self.expect, self.base = page, expect, base
        self.dialogs: list[str] = []
        self.csp_reports: list[str] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("console", lambda m: "Content Security Policy" in m.text and self.csp_reports.append(m.text))

    def shot(self, name: str, page=None) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        target = ARTIFACTS / f"{name}.png"
        (page or self.page).screenshot(path=str(target), full_page=True)
        print(f"screenshot: {target}")

    def shows_the_hostile_label_as_text(self) -> None:
        self.expect(self.page.get_by_text(SCRIPT).first).to_be_visible()
        assert self.dialogs == [] and self.csp_reports == [], (self.dialogs, self.csp_reports)


def test_dashboard_journey_in_chromium(receiver, sink, browser):
    sync_api = playwright_api()
    expect = sync_api.expect
    expect.set_options(timeout=15_000)

    # The hostile alert first, its first message refused for good (400: dead at once), then a second alert.
    sink.answer(400)
    # A real serve on the real clock: the captures are moved to now, or Statistics' "last 7 days" would not hold them.
    post_webhook(receiver, hostile_body("info", recent("a_single_firing")))
    dead = wait_until(lambda: api(receiver, "/api/v1/notifications", status="dead")["notifications"], timeout=20,
                      what="the hostile alert's first message to die")
    post_webhook(receiver, recent("g_routing_info"))  # HighErrorRate, info → L3
    hostile, other = id_of(receiver, SCRIPT), id_of(receiver, "HighErrorRate")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    journey = Journey(context.new_page(), expect, receiver.url)
    page = journey.page

    # Sign in: the first page sends a signed-out browser to the form, and back after it.
    page.goto(receiver.url + "/")
    expect(page).to_have_url(receiver.url + "/login?next=/")
    journey.shot("login")
    page.get_by_label("Token").fill(TOKENS["write"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(receiver.url + "/")

    # Now: both alerts at L3, the hostile one's name as text.
    expect(page.locator(f'#alert-{hostile}')).to_be_visible()
    expect(page.locator(f'#alert-{other}')).to_be_visible()
    journey.shows_the_hostile_label_as_text()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    journey.shot("now")

    # Acknowledge the hostile alert with a click (and a comment); the list updates in place, no reload.
    page.evaluate("window.stillTheSamePage = true")
    page.locator(f"#comment-ack-{hostile}").fill("on it")
    page.locator(f"#alert-{hostile} button.ack").click()
    expect(page.locator(f"#alert-{hostile}")).to_have_class("alert acked")
    expect(page.locator("#status")).to_contain_text(f"Alert {hostile} acknowledged")
    acked = api(receiver, f"/api/v1/alerts/{hostile}")
    assert acked["acked_by"] == "oncall"

    # The other alert climbs to L1 meanwhile, seen through the page's own refresh; the acked one stays where it was.
    expect(page.locator(f'#alert-{other}[data-level="L1"]')).to_be_visible(timeout=45_000)
    assert page.evaluate("window.stillTheSamePage") is True
    after = api(receiver, f"/api/v1/alerts/{hostile}")
    ack_at = next(e["at"] for e in after["timeline"] if e["kind"] == "acked")
    assert after["level"] == acked["level"] and after["next_action_at"] is None
    assert [e for e in after["timeline"] if e["kind"] == "escalated" and e["at"] > ack_at] == []
    assert after["level"] != "L1", "the ack must land before the hostile alert could have reached L1"
    expect(page.locator(f"#alert-{hostile} .next")).to_contain_text("acknowledged by oncall")
    journey.shows_the_hostile_label_as_text()

    # The same page on a phone and in dark mode: nothing wider than the screen.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark",
                                storage_state=context.storage_state())
    small = phone.new_page()
    small.goto(receiver.url + "/")
    expect(small.locator(f"#alert-{hostile}")).to_be_visible()
    assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert small.evaluate("getComputedStyle(document.body).backgroundColor") != \
           page.evaluate("getComputedStyle(document.body).backgroundColor")
    journey.shot("now-phone-dark", small)
    phone.close()

    # Alert: labels, annotations, generator link, the timeline with the ack, its comment and the dead message.
    page.goto(f"{receiver.url}/alerts/{hostile}")
    journey.shows_the_hostile_label_as_text()
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text("received")
    expect(timeline).to_contain_text("firing to l3: dead")
    expect(timeline).to_contain_text("acknowledged")
    expect(timeline).to_contain_text("by oncall")
    expect(timeline).to_contain_text("on it")
    expect(page.get_by_role("link", name="generator (Prometheus)")).to_have_attribute(
        "href", api(receiver, f"/api/v1/alerts/{hostile}")["generator_url"])
    journey.shot("alert")

    # History: the list, a filter, the CSV export (the API's file, with the session's cookie).
    page.goto(receiver.url + "/history")
    journey.shows_the_hostile_label_as_text()
    page.get_by_label("Level").select_option("L1")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]level=L1(&|$)"))
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    expect(page.locator("table.list tbody")).to_contain_text("HighErrorRate")
    csv = context.request.get(receiver.url + page.get_by_role("link", name="CSV", exact=True).get_attribute("href"))
    assert csv.status == 200 and "HighErrorRate" in csv.text() and SCRIPT not in csv.text()
    page.goto(receiver.url + "/history")
    journey.shot("history")

    # Statistics: the trend chart drawn on the server, the numbers of the API.
    page.goto(receiver.url + "/stats")
    journey.shows_the_hostile_label_as_text()
    assert page.locator("svg.chart rect[class^='sev-']").count() >= 2
    expect(page.locator("#total")).to_have_text(str(api(receiver, "/api/v1/stats/summary")["total"]))
    journey.shot("stats")

    # Delivery: the dead letter, retried with a click; the provider takes it this time.
    page.goto(receiver.url + "/delivery")
    journey.shows_the_hostile_label_as_text()
    dead_id = dead[0]["id"]
    row = page.locator(f"#dead-{dead_id}")
    expect(row).to_contain_text("dead")
    journey.shot("delivery")
    # The Delivery page reloads itself after an action (dashboard.js): wait for that load, or the test's own
    # reload below can collide with it (net::ERR_ABORTED when the machine is slow).
    with page.expect_navigation():
        row.get_by_role("button", name=f"Retry notification {dead_id}").click()
    expect(page.locator("#status")).to_contain_text(f"Notification {dead_id} queued")
    wait_until(lambda: api(receiver, f"/api/v1/notifications/{dead_id}")["status"] == "sent", timeout=20,
               what="the retried notification to be sent")
    page.reload()
    expect(page.locator("#dead-count")).to_have_text("0")
    journey.shows_the_hostile_label_as_text()
    journey.shot("delivery-after-retry")
    context.close()
    assert pathlib.Path(ARTIFACTS / "now.png").stat().st_size > 0
