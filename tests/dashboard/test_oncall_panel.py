"""The Now page's on-call panel, on SQLite and PostgreSQL at the injected clock's moment (Monday 2026-11-23 09:00Z):
one row per schedule with who is on call, until when and by what (rotation or override), exactly as
GET /api/v1/oncall answers; no panel without schedules. (Names of people and schedules cannot carry markup: config
names are letters, digits, -, _ and .; the template is autoescaped all the same.)"""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry

from receiver.app import create_app

PEOPLE = {"alice": {"email": "alice@example.org"}, "bob": {}, "carol": {}}
SCHEDULES = {
    # 46 weeks after 2026-01-05: the first participant's week, from today 09:00 Berlin (08:00Z)
    "primary-db": {"timezone": "Europe/Berlin", "rotations": [
        {"participants": ["alice", "bob"], "length": "1w", "handoff": "mon 09:00", "start": "2026-01-05"}]},
    "ops.day": {"rotations": [{"participants": ["carol"], "hours": "mon-fri 09:00-17:00"}]},
    "later": {"rotations": [{"participants": ["bob"], "length": "1d", "start": "2027-01-01"}]},
}


@pytest.fixture
def app_with(make_config, clock):
    made = []

    def build(**sections):
        app = create_app(make_config(**sections), clock=clock, registry=CollectorRegistry())
        made.append(app)
        return app.test_client()

    yield build
    for app in made:
        app.extensions["alert_receiver"].writes.close()
        app.extensions["alert_receiver"].db.dispose()


def panel(html: str) -> str:
    assert html.count('id="h-oncall"') == 1
    return html.split('id="h-oncall"')[1].split("</section>")[0]


def rows(html: str) -> list[list[str]]:
    """The panel's table as text cells (tags dropped, entities left as they are)."""
    body = panel(html).split("<tbody>")[1].split("</tbody>")[0]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_the_panel_shows_who_is_on_call_per_schedule_as_the_api_does(app_with):
    client = app_with(people=PEOPLE, schedules=SCHEDULES)
    made = client.post("/api/v1/schedules/later/overrides",
                       json={"person": "carol", "start": "2026-11-23T08:00:00Z", "end": "2026-11-23T11:00:00Z"})
    assert made.status_code == 201
    html = client.get("/").get_data(as_text=True)
    assert rows(html) == [
        ["later", "carol", "2026-11-23 11:00:00 UTC (in 2h 00m)", "override"],
        ["ops.day", "carol", "2026-11-23 17:00:00 UTC (in 8h 00m)", "rotation"],
        ["primary-db", "alice", "2026-11-30 08:00:00 UTC (in 6d 23h)", "rotation"],
    ]
    api = client.get("/api/v1/oncall").get_json()["oncall"]
    assert [(o["schedule"], o["person"], o["until"], o["source"]) for o in api] == [
        ("later", "carol", "2026-11-23T11:00:00Z", "override"),
        ("ops.day", "carol", "2026-11-23T17:00:00Z", "rotation"),
        ("primary-db", "alice", "2026-11-30T08:00:00Z", "rotation")]

    # once the override is deleted, the rotation says nobody until its first shift
    assert client.delete(f"/api/v1/schedules/later/overrides/{made.get_json()['id']}").status_code == 204
    assert rows(client.get("/").get_data(as_text=True))[0] == [
        "later", "nobody on shift", "2027-01-01 00:00:00 UTC (in 38d 15h)", "–"]


def test_no_schedules_no_panel(app_with):
    html = app_with().get("/").get_data(as_text=True)
    assert "h-oncall" not in html and "On call" not in html
    assert 'id="now-list"' in html  # the rest of the page is there
