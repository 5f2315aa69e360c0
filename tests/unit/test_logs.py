"""Structured logs: one line per record, extra fields kept, credentials in URLs hidden."""

from __future__ import annotations

import json
import logging

import pytest

from receiver.logs import JsonFormatter, LogfmtFormatter, redact


@pytest.mark.parametrize("text, expected", [
    ("postgresql+psycopg://user:s3cret@db:5432/alerts", "postgresql+psycopg://***@db:5432/alerts"),
    ("https://token@hooks.example.org/x", "https://***@hooks.example.org/x"),
    ("sqlite:///alert-receiver.db", "sqlite:///alert-receiver.db"),
    ("no url here", "no url here"),
])
def test_redact(text, expected):
    assert redact(text) == expected


def _record(**extra):
    record = logging.LogRecord("receiver.x", logging.WARNING, __file__, 1, "storage %s", ("down",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_logfmt_and_json_carry_extra_fields():
    line = LogfmtFormatter().format(_record(source="critical webhook", status=503))
    assert 'msg="storage down"' in line and 'source="critical webhook"' in line and "status=503" in line
    assert "\n" not in line
    doc = json.loads(JsonFormatter().format(_record(reason="malformed_json")))
    assert doc["level"] == "warning" and doc["reason"] == "malformed_json" and doc["msg"] == "storage down"


def test_an_extra_named_like_a_standard_field_never_replaces_it():
    import logging

    from receiver.logs import LogfmtFormatter

    record = logging.makeLogRecord({"msg": "notification dead", "levelname": "ERROR", "name": "receiver.delivery",
                                    "level": "L1", "ts": "x"})
    line = LogfmtFormatter().format(record)
    assert " level=error " in line and "extra_level=L1" in line and "extra_ts=x" in line
