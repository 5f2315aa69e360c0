"""Label and annotation names with control characters are refused (issue #15, finding 14): a 422 naming the field,
the name escaped in the message, the body kept as a dead letter. Any other UTF-8 name stays accepted, as
Prometheus 3 allows it."""

from __future__ import annotations

import json

import pytest

from ..conftest import table_counts

CONTROL_NAMES = {"nul": "a\x00b", "esc": "\x1b[31mred", "newline": "two\nlines", "tab": "tab\there",
                 "carriage-return": "over\rwrite", "del": "del\x7f", "c1-csi": "csi\x9b31m", "bel": "\x07"}
UTF8_NAMES = ["service.name", "żółw", "名前", "🚀", "with space", "a-b/c:d", "\u202eright-to-left", "\ufeffbom"]


def _body(labels: dict, annotations: dict | None = None, group_labels: dict | None = None) -> bytes:
    alert = {"status": "firing", "labels": {"alertname": "Names", "severity": "info", **labels},
             "annotations": annotations or {}, "startsAt": "2026-11-23T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}
    return json.dumps({"version": "4", "status": "firing", "groupKey": "{}:{}", "groupLabels": group_labels or {},
                       "alerts": [alert]}).encode()


def _is_control(c: str) -> bool:
    return ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0


def _has_control(text: str) -> bool:
    return any(_is_control(c) for c in text)


def _escaped(name: str) -> str:
    return "".join(f"\\u{ord(c):04x}" if _is_control(c) else c for c in name)


def _refused(client, db, body: bytes) -> dict:
    """Post `body`: a 422 whose text holds no control character, and nothing written but its dead letter."""
    before = table_counts(db)
    resp = client.post("/webhook", data=body, content_type="application/json")
    assert resp.status_code == 422, resp.get_data(as_text=True)
    answer = resp.get_json()
    assert not _has_control(answer["path"] + answer["detail"]), answer  # logs and dashboards show them as text
    after = table_counts(db)
    assert after.pop("rejected_webhooks") == before.pop("rejected_webhooks") + 1
    assert after == before
    return answer


@pytest.mark.parametrize("name", CONTROL_NAMES.values(), ids=CONTROL_NAMES.keys())
def test_a_label_name_with_a_control_character_is_a_422_with_a_dead_letter(client, db, name):
    answer = _refused(client, db, _body({name: "v"}))
    assert answer["path"] == "alerts[0].labels"
    assert _escaped(name) in answer["detail"], answer
    letter = client.get(f"/api/v1/webhooks/rejected/{answer['dead_letter_id']}").get_json()
    assert letter["status_code"] == 422 and _escaped(name) in letter["detail"]


@pytest.mark.parametrize("name", CONTROL_NAMES.values(), ids=CONTROL_NAMES.keys())
def test_an_annotation_name_with_a_control_character_is_a_422(client, db, name):
    answer = _refused(client, db, _body({}, annotations={"summary": "ok", name: "v"}))
    assert answer["path"] == "alerts[0].annotations"
    assert _escaped(name) in answer["detail"], answer


def test_a_group_label_name_with_a_control_character_is_a_422(client, db):
    answer = _refused(client, db, _body({}, group_labels={"\x1b]0;title\x07": "v"}))
    assert answer["path"] == "groupLabels"


def test_control_characters_in_values_stay_accepted(client):
    """Values are text an alert may legitimately carry (a multi-line description); only names are identifiers."""
    body = _body({"instance": "a\x1bb"}, annotations={"description": "line one\nline two\ttabbed"})
    assert client.post("/webhook", data=body, content_type="application/json").status_code == 200


@pytest.mark.parametrize("name", UTF8_NAMES)
def test_other_utf8_names_stay_accepted_and_stored_whole(client, name):
    resp = client.post("/webhook", data=_body({name: "v"}, annotations={name: "a"}), content_type="application/json")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    stored = client.get("/api/v1/alerts").get_json()["alerts"][0]
    assert stored["labels"][name] == "v"
    assert client.get(f"/api/v1/alerts/{stored['id']}").get_json()["annotations"][name] == "a"
