"""Hostile input: whatever bytes arrive, the parser and the webhook answer 2xx or 4xx, never 5xx, and a refused body
writes nothing but its dead letter. Then the named extremes: 1 MiB values, 10,000 alerts, 100k nested brackets,
invalid UTF-8, SQL-looking filters, and template names that try to leave the template directories."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jinja2
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from receiver import payload
from receiver.app import create_app
from receiver.config import ConfigError, load_config
from receiver.render import Renderer, check_templates
from receiver.store.models import Alert

from ..conftest import table_counts
from ..support.fixtures import raw
from .conftest import HYPOTHESIS

JSON = "application/json"

# --- strategies: any bytes, any JSON, and JSON shaped like a payload v4 with hostile values ---------------

NASTY_TEXT = ["", "\x00", "a\x00b", "\ud800", "x\udfffy", "' OR 1=1 --", "\"; DROP TABLE alerts; --", "%", "_",
              "\\", "\u202e", "🚀", "\ufeff", "a" * 300, "{{ 7*7 }}", "<script>", "../../etc/passwd"]
texts = st.one_of(st.text(max_size=16), st.sampled_from(NASTY_TEXT))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts,
                    st.integers(min_value=2**63 - 2, max_value=2**70))
any_json = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(texts, inner, max_size=4)), max_leaves=20)
offsets = st.integers(min_value=-1439, max_value=1439).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
times = st.one_of(
    st.sampled_from(["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "0001-01-01T00:30:00+14:00",
                     "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59.999999999Z",
                     "2026-11-23T08:09:20.177123456Z", "1970-01-01T00:00:00Z", "2026-11-23T08:00:00",
                     "2026-02-30T00:00:00Z", "yesterday", ""]),
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=offsets)
    .map(lambda d: d.isoformat()),
    st.integers(), st.none())
string_maps = st.one_of(st.dictionaries(texts, texts, max_size=5), st.dictionaries(texts, scalars, max_size=3), scalars)
alerts = st.fixed_dictionaries(
    {"status": st.sampled_from(["firing", "resolved", "pending", 1]),
     "labels": st.one_of(st.dictionaries(texts, texts, min_size=1, max_size=5), string_maps),
     "startsAt": times},
    optional={"endsAt": times, "annotations": string_maps, "generatorURL": texts,
              "fingerprint": st.one_of(texts, st.text("0123456789abcdefABCDEF", max_size=40), st.integers())})
payloads = st.fixed_dictionaries(
    {"version": st.sampled_from(["4", "4", "4", "3", 4, None]), "alerts": st.lists(alerts, max_size=4)},
    optional={"status": st.sampled_from(["firing", "resolved", "other"]), "receiver": texts, "groupKey": texts,
              "groupLabels": string_maps, "commonLabels": string_maps, "commonAnnotations": string_maps,
              "externalURL": texts, "truncatedAlerts": st.one_of(st.integers(), texts)})
bodies = st.one_of(st.binary(max_size=512), any_json.map(lambda o: json.dumps(o).encode()),
                   payloads.map(lambda o: json.dumps(o).encode()),
                   payloads.map(lambda o: json.dumps(o, ensure_ascii=False).encode("utf-8", "surrogatepass")))


def post(client, body: bytes, *, content_type: str = JSON, path: str = "/webhook"):
    return client.post(path, data=body, content_type=content_type)


def check_answer(client, db, body: bytes, *, content_type: str = JSON) -> int:
    """Post `body`: the answer is 2xx or a 4xx JSON error; a 4xx leaves every table as it was but the
    dead-letter table, which gains exactly one row."""
    before = table_counts(db)
    resp = post(client, body, content_type=content_type)
    assert resp.status_code < 500, (resp.status_code, resp.get_data(as_text=True)[:500], body[:300])
    if resp.status_code >= 400:
        assert resp.get_json()["error"], resp.get_data(as_text=True)
        after = table_counts(db)
        assert after["rejected_webhooks"] == before["rejected_webhooks"] + 1, resp.get_json()
        assert {k: v for k, v in after.items() if k != "rejected_webhooks"} == \
               {k: v for k, v in before.items() if k != "rejected_webhooks"}
    else:
        assert resp.status_code == 200
    return resp.status_code


# --- the parser, pure -------------------------------------------------------------------------------------


def parse_outcome(body: bytes) -> int:
    try:
        payload.parse(body)
    except payload.PayloadError as exc:
        assert exc.status in (400, 422) and exc.reason and exc.message
        return exc.status
    return 200


@HYPOTHESIS
@given(st.binary(max_size=2048))
def test_parser_any_bytes(body):
    assert parse_outcome(body) in (200, 400, 422)


@HYPOTHESIS
@given(any_json)
def test_parser_any_json(document):
    assert parse_outcome(json.dumps(document).encode()) in (200, 400, 422)


@HYPOTHESIS
@given(payloads)
def test_parser_payload_shaped_json(document):
    assert parse_outcome(json.dumps(document).encode()) in (200, 400, 422)


# --- the endpoint, on both databases ----------------------------------------------------------------------


@HYPOTHESIS
@given(body=bodies, content_type=st.sampled_from([JSON, JSON, JSON, "application/json; charset=latin-1",
                                                  "text/plain", "application/x-www-form-urlencoded", ""]))
def test_webhook_any_body(client, db, body, content_type):
    client.application.config["PROPAGATE_EXCEPTIONS"] = True  # a 500 shows its traceback, not just its status
    check_answer(client, db, body, content_type=content_type)


# --- the named extremes -----------------------------------------------------------------------------------


def one_alert(labels: dict, annotations: dict | None = None, **fields) -> bytes:
    alert = {"status": "firing", "labels": labels, "annotations": annotations or {},
             "startsAt": "2026-11-23T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z", **fields}
    return json.dumps({"version": "4", "status": "firing", "groupKey": "{}:{}", "alerts": [alert]}).encode()


def test_one_mib_label_and_annotation_values_are_stored_whole(client, db):
    mib = 2**20
    big = {name: name[0] * mib for name in ("alertname", "service", "severity", "instance", "job", "team")}
    body = one_alert(big, {"summary": "s" * mib, "description": "d" * mib})
    assert check_answer(client, db, body) == 200
    alert_id = client.get("/api/v1/alerts", headers={}).get_json()["alerts"][0]["id"]
    stored = client.get(f"/api/v1/alerts/{alert_id}").get_json()
    assert stored["labels"] == big
    assert len(stored["annotations"]["summary"]) == mib
    # And the same alert again (the repeat Alertmanager sends) is found and changes nothing.
    before = table_counts(db)
    assert post(client, body).status_code == 200
    assert table_counts(db) == before


def test_ten_thousand_alerts_in_one_body(client, db):
    alerts = [{"status": "firing", "labels": {"alertname": "Storm", "instance": f"host-{i}", "severity": "info"},
               "annotations": {"summary": f"storm {i}"}, "startsAt": "2026-11-23T08:00:00Z",
               "endsAt": "0001-01-01T00:00:00Z"} for i in range(10_000)]
    body = json.dumps({"version": "4", "status": "firing", "groupKey": '{}:{alertname="Storm"}',
                       "alerts": alerts}).encode()
    resp = post(client, body)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["new"] == 10_000
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Alert)).scalar_one() == 10_000


@pytest.mark.parametrize("body", [
    pytest.param(b"[" * 100_000, id="100k-brackets"),
    pytest.param(b'{"a":' * 100_000, id="100k-objects"),
    pytest.param(b'{"version": "4", "alerts": [{"status": "firing", "labels": {"a": ' + b"[" * 100_000 + b"]" * 100_000
                 + b'}, "startsAt": "2026-11-23T08:00:00Z"}]}', id="deep-inside-a-label"),
    pytest.param(b'{"version": "4", "alerts": [], "receiver": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
                 id="deep-but-balanced"),
])
def test_deeply_nested_json_is_refused_not_crashed(client, db, body):
    assert check_answer(client, db, body) in (400, 422)


@pytest.mark.parametrize("body", [
    pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
    pytest.param(one_alert({"alertname": "X"}).replace(b'"X"', b'"\xc3\x28"'), id="invalid-continuation"),
    pytest.param(one_alert({"alertname": "X"}).replace(b'"X"', b'"\xed\xa0\x80"'), id="encoded-surrogate"),
    pytest.param(one_alert({"alertname": "X"}).replace(b'"X"', b'"\xc0\xaf"'), id="overlong-slash"),
    pytest.param(one_alert({"alertname": "X"}).replace(b'"X"', b'"\xf8\x88\x80\x80\x80"'), id="five-byte-form"),
    pytest.param(b"\xef\xbb\xbf" + one_alert({"alertname": "X"}), id="utf8-bom"),
    pytest.param(one_alert({"alertname": "X"}).decode().encode("utf-16"), id="utf-16"),
])
def test_invalid_utf8_is_a_400_with_a_dead_letter(client, db, body):
    assert check_answer(client, db, body) in (400, 422)


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb", "\x00", "nul\x00inside", "\ufffe", "\U0010ffff"],
                         ids=["lone-high-surrogate", "lone-low-surrogate", "nul", "nul-inside", "non-character",
                              "last-code-point"])
@pytest.mark.parametrize("where", ["label-value", "label-name", "annotation", "group-key", "fingerprint"])
def test_json_escapes_the_database_cannot_hold_are_refused_or_stored(client, db, value, where):
    """JSON may escape a lone surrogate or NUL; PostgreSQL text holds neither. A NUL is stored as U+FFFD (refusing
    it would drop the whole group, forever); a surrogate may be refused with a 422 naming the field. Never a 500,
    never a partial write, and the same answer on both databases."""
    labels, annotations, extra = {"alertname": "Esc", "severity": "info"}, {}, {}
    if where == "label-value":
        labels["instance"] = value
    elif where == "label-name":
        labels[value or "x"] = "v"
    elif where == "annotation":
        annotations["summary"] = value
    elif where == "fingerprint":
        extra["fingerprint"] = value
    body = json.loads(one_alert(labels, annotations, **extra))
    if where == "group-key":
        body["groupKey"] = value
    status = check_answer(client, db, json.dumps(body).encode())
    if status == 200 and where == "label-value":
        stored = client.get("/api/v1/alerts").get_json()["alerts"][0]
        assert stored["labels"]["instance"] == value.replace("\x00", "\ufffd")
    if "\x00" in value and where not in ("fingerprint", "label-name"):
        assert status == 200  # a fingerprint is hex digits, a label name has no control character: else a 422


SQLISH = ["' OR '1'='1", "1; DROP TABLE alerts; --", "\" OR \"\"=\"", "%", "_", "%' --", "\\", "' UNION SELECT 1 --",
          "1 OR 1=1", "$1", ":param", "\x00", "\u202e", "a" * 5000]
ALERT_FILTERS = ["status", "level", "severity", "service", "alertname", "fingerprint", "group_id", "since",
                 "until", "acked", "match", "cursor", "order", "limit"]
STATS_FILTERS = ["since", "until", "service", "severity", "level", "alertname", "match", "status", "acked"]
OTHER_READS = {"/api/v1/stats/summary": STATS_FILTERS,
               "/api/v1/stats/top": STATS_FILTERS + ["by", "limit", "flap_window", "flap_min"],
               "/api/v1/stats/trends": STATS_FILTERS + ["interval", "group_by", "tz"],
               "/api/v1/stats/services/web/health": ["since", "until"],
               "/api/v1/reports/daily": ["date", "tz", "limit"],
               "/api/v1/alerts/export": ALERT_FILTERS[:11] + ["format"],
               "/api/v1/alerts/1/related": ["window", "limit"],
               "/api/v1/notifications": ["status", "channel", "kind", "alert_id", "since", "until", "limit", "cursor"],
               "/api/v1/webhooks/rejected": ["limit", "cursor"]}


def test_sql_looking_strings_in_every_filter_are_data_not_sql(client, db):
    assert post(client, raw("b_group_5_firing")).status_code == 200
    before = table_counts(db)
    endpoints = {"/api/v1/alerts": ALERT_FILTERS, **OTHER_READS}
    for path, names in endpoints.items():
        for name in names:
            for value in SQLISH:
                resp = client.get(path, query_string={name: value})
                body = resp.get_data()
                resp.close()
                assert resp.status_code in (200, 400), (path, name, value, resp.status_code, body[:300])
                if resp.status_code == 200 and path == "/api/v1/alerts" and name not in ("order", "limit"):
                    # An injected value matches nothing (no wildcard, no OR): the five stored alerts stay unseen.
                    assert resp.get_json()["alerts"] == [], (name, value)
    assert table_counts(db) == before  # and the tables are all still there, unchanged
    # Label matchers are regexes and text, never SQL: a quote in a matcher value matches nothing.
    for matcher in ['alertname="\' OR 1=1 --"', "alertname=~\".*' OR 1=1 --\"", 'alertname!~".*"']:
        resp = client.get("/api/v1/alerts", query_string={"match": matcher})
        assert resp.status_code == 200 and resp.get_json()["alerts"] == [], matcher


# --- template names ---------------------------------------------------------------------------------------


def test_a_channel_template_setting_with_a_path_is_refused_by_config_validation(tmp_path):
    # Channels take no template names: a template path in a channel is an unknown key, named with its fix.
    path = tmp_path / "receiver.yml"
    path.write_text("channels:\n  chat: {type: slack, webhook_url: 'https://hooks.slack.com/services/T/B/X', "
                    "template: ../../etc/passwd}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert "channels.chat" in str(caught.value) and "template" in str(caught.value)


@pytest.mark.parametrize("name", ["../../etc/passwd", "slack/../../../../etc/passwd", "/etc/passwd",
                                  "..\\..\\etc\\passwd", "slack/./../../secret.j2"])
def test_the_loader_never_leaves_its_directories(tmp_path, name, caplog):
    overrides = tmp_path / "templates"
    (overrides / "slack").mkdir(parents=True)
    (tmp_path / "secret.j2").write_text("TOP SECRET")
    renderer = Renderer(overrides)
    with pytest.raises(jinja2.TemplateNotFound):
        renderer.env.get_template(name)
    assert "TOP SECRET" not in renderer.render(name) and "root:" not in renderer.render(name)


def test_an_override_cannot_include_a_file_outside_its_directory(tmp_path):
    overrides = tmp_path / "templates"
    (overrides / "slack").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    (overrides / "slack" / "text.j2").write_text('{% include "../../secret.txt" %}{% include "/etc/passwd" %}')
    problems = check_templates(overrides)
    assert any("slack/text.j2" in p and "TemplateNotFound" in p for p in problems), problems
    assert "TOP SECRET" not in Renderer(overrides).render("slack/text.j2")


@pytest.mark.parametrize("path", ["/webhook/a%00b", "/api/v1/stats/services/we%00b/health",
                                  "/api/v1/stats/services/..%2F..%2Fetc%2Fpasswd/health", "/a/x%00y",
                                  "/api/v1/alerts/9223372036854775808", "/api/v1/alerts/-1", "/api/v1/alerts/0"])
def test_hostile_path_parameters_are_4xx(client, db, path):
    method = "POST" if path.startswith("/webhook") else "GET"
    before = table_counts(db)
    resp = client.open(path, method=method, data=raw("a_single_firing") if method == "POST" else None,
                       content_type=JSON)
    assert resp.status_code < 500, (path, resp.status_code, resp.get_data(as_text=True)[:300])
    if method == "GET":
        assert table_counts(db) == before


def test_a_refusal_that_quotes_a_nul_still_keeps_its_dead_letter(client, db):
    # The error's path names the label `\u0000`; PostgreSQL text cannot hold NUL, so the path shows its escape.
    body = json.dumps({"version": "4", "alerts": [{"status": "firing", "labels": {"\x00": 5},
                                                   "startsAt": "2026-11-23T08:00:00Z"}]}).encode()
    assert check_answer(client, db, body) == 422
    assert post(client, body).get_json()["path"] == "alerts[0].labels.\\u0000"


def test_a_late_start_from_a_closed_period_does_not_move_the_open_one(client, db):
    """Found by schemathesis: the open occurrence took the earliest startsAt even when that start belonged to a
    closed occurrence of the same fingerprint, and (fingerprint, starts_at) is unique: a 500."""
    def snapshot(status: str, starts: str, ends: str | None = None):
        alert = {"status": status, "labels": {"alertname": "Flap"}, "startsAt": starts,
                 **({"endsAt": ends} if ends else {})}
        return json.dumps({"version": "4", "alerts": [alert]}).encode()

    for body in (snapshot("firing", "2026-11-20T00:00:00Z"),
                 snapshot("resolved", "2026-11-20T00:00:00Z", "2026-11-20T06:00:00Z"),
                 snapshot("firing", "2026-11-21T00:00:00Z")):
        assert post(client, body).status_code == 200
    before = table_counts(db)
    late = post(client, snapshot("firing", "2026-11-20T00:00:00Z"))
    assert late.status_code == 200 and late.get_json().get("duplicate") == 1, late.get_json()
    assert table_counts(db) == before
    starts = sorted(a["starts_at"] for a in client.get("/api/v1/alerts").get_json()["alerts"])
    assert starts == ["2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"]


@pytest.mark.parametrize("count, status", [(2**31 - 1, 200), (2**31, 422), (2**64, 422), (True, 422), ("5", 422)])
def test_truncated_alerts_is_a_count_the_database_holds(client, db, count, status):
    body = json.dumps({"version": "4", "alerts": [], "truncatedAlerts": count}).encode()
    assert check_answer(client, db, body) == status
