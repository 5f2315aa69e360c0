"""Related alerts state the real relation (issue #19): occurrences of one group 12 minutes apart that never overlapped
read "within 12 minutes before/after", overlapping ones "firing at the same time", in the API and on the alert's
dashboard page."""

from __future__ import annotations

import datetime as dt

import pytest

from receiver.statistics.read_correlations import relation

from .dataset import NOW, Dataset

M = dt.timedelta(minutes=1)
T = NOW - dt.timedelta(hours=2)


@pytest.mark.parametrize("other, want", [
    ((T + 32 * M, T + 40 * M), ("after", 720.0, "within 12 minutes after")),
    ((T - 30 * M, T - 12 * M), ("before", 720.0, "within 12 minutes before")),
    ((T + 31 * M + 20 * dt.timedelta(seconds=1), T + 40 * M), ("after", 680.0, "within 12 minutes after")),
    ((T - 5 * M, T - dt.timedelta(seconds=30)), ("before", 30.0, "within 1 minute before")),
    ((T + 20 * M + 150 * M, T + 200 * M), ("after", 9000.0, "within 3 hours after")),
    ((T + 15 * M, T + 40 * M), ("overlapping", 0.0, "firing at the same time")),
    ((T - 10 * M, T), ("overlapping", 0.0, "firing at the same time")),  # touching: the same instant
    ((T + 5 * M, T + 6 * M), ("overlapping", 0.0, "firing at the same time")),  # inside
], ids=["after-12m", "before-12m", "after-11m20s", "before-30s", "after-2h30m", "overlap", "touching", "inside"])
def test_relation_of_two_intervals(other, want):
    got = relation((T, T + 20 * M), other)
    assert (got["relation"], got["gap_seconds"], got["when"]) == want


def test_related_says_before_after_or_at_the_same_time(db, client):
    ds = Dataset()
    g = {"group_key": '{}:{alertname="X"}', "group_id": "00000000000000bb"}
    anchor = ds.alert(service="payments", starts_at=T, ends_at=T + 20 * M, **g)
    after = ds.alert(service="other", starts_at=T + 32 * M, ends_at=T + 40 * M, **g)
    before = ds.alert(service="other", starts_at=T - 30 * M, ends_at=T - 12 * M, **g)
    overlapping = ds.alert(service="other", starts_at=T + 15 * M, ends_at=T + 40 * M, **g)
    still_firing = ds.alert(service="payments", starts_at=T + 5 * M)  # no end: firing until now, so overlapping
    ds.insert(db)
    body = client.get(f"/api/v1/alerts/{anchor.id}/related").get_json()
    got = {e["alert"]["id"]: e for e in body["related"]}
    assert {i: (e["relation"], e["gap_seconds"], e["when"]) for i, e in got.items()} == {
        after.id: ("after", 720.0, "within 12 minutes after"),
        before.id: ("before", 720.0, "within 12 minutes before"),
        overlapping.id: ("overlapping", 0.0, "firing at the same time"),
        still_firing.id: ("overlapping", 0.0, "firing at the same time"),
    }
    assert got[after.id]["reason"] == "same Alertmanager group, within 12 minutes after"
    assert got[before.id]["reason"] == "same Alertmanager group, within 12 minutes before"
    assert got[overlapping.id]["reason"] == "same Alertmanager group, firing at the same time"
    assert got[still_firing.id]["reason"] == "same service 'payments', started 5m apart, firing at the same time"
    # From the other side, the relation turns round.
    back = {e["alert"]["id"]: e for e in client.get(f"/api/v1/alerts/{after.id}/related").get_json()["related"]}
    assert (back[anchor.id]["relation"], back[anchor.id]["when"]) == ("before", "within 12 minutes before")
    html = client.get(f"/alerts/{anchor.id}").get_data(as_text=True)
    assert html.count("within 12 minutes after") == 2  # the words, and the reason that ends with them
    assert "within 12 minutes before" in html and "firing at the same time" in html
    assert f'href="/alerts/{after.id}"' in html
