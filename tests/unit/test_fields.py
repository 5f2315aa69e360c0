"""Duration, Secret, ${VAR} interpolation and ByteSize."""

from __future__ import annotations

import copy
import datetime as dt
import pickle

import pytest
from pydantic import BaseModel, ValidationError

from receiver.fields import (
    ByteSize,
    Duration,
    FieldError,
    InterpolationError,
    Secret,
    format_duration,
    interpolate,
    parse_byte_size,
    parse_duration,
)

td = dt.timedelta

DURATIONS = [
    ("0s", td(0)),
    ("500ms", td(milliseconds=500)),
    ("30s", td(seconds=30)),
    ("5m", td(minutes=5)),
    ("1h", td(hours=1)),
    ("1h30m", td(hours=1, minutes=30)),
    ("2d", td(days=2)),
    ("1w", td(weeks=1)),
    ("1y", td(days=365)),
    ("1d2h3m4s5ms", td(days=1, hours=2, minutes=3, seconds=4, milliseconds=5)),
    ("90m", td(minutes=90)),
    (" 15s ", td(seconds=15)),
]


@pytest.mark.parametrize(("text", "expected"), DURATIONS, ids=[d[0].strip() for d in DURATIONS])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


BAD_DURATIONS = [
    ("30", 'write "30s"'),
    ("0", 'write "0s"'),
    ("", "is not a duration"),
    ("5 minutes", "is not a duration"),
    ("1.5h", "is not a duration"),
    ("-5m", "is not a duration"),
    ("30m1h", "is not a duration"),  # units must be largest first, as in Prometheus
    ("1h1h", "is not a duration"),
    ("5M", "is not a duration"),
    ("PT5M", "is not a duration"),
    ("99999999999999y", "too large"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD_DURATIONS, ids=[d[0] or "empty" for d in BAD_DURATIONS])
def test_parse_duration_rejects(text, fragment):
    with pytest.raises(FieldError) as info:
        parse_duration(text)
    assert fragment in f"{info.value} {info.value.fix}"


FORMATS = [
    (td(0), "0s"),
    (td(milliseconds=500), "500ms"),
    (td(seconds=90), "1m30s"),
    (td(minutes=90), "1h30m"),
    (td(days=14), "2w"),
    (td(days=90), "90d"),  # not 12w6d: weeks only when exact, like Prometheus
    (td(days=365), "1y"),
    (td(days=366), "366d"),
    (td(days=1, milliseconds=1), "1d1ms"),
    (td(microseconds=1500), "1ms"),  # below a millisecond is dropped
]


@pytest.mark.parametrize(("value", "expected"), FORMATS, ids=[f[1] for f in FORMATS])
def test_format_duration(value, expected):
    assert format_duration(value) == expected


@pytest.mark.parametrize("text", ["0s", "500ms", "1h30m", "2w", "90d", "1y", "1d2h3m4s5ms", "52w"],
                         ids=lambda t: t)
def test_format_parses_back(text):
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


class _Timed(BaseModel):
    every: Duration = td(seconds=10)
    size: ByteSize = 0


@pytest.mark.parametrize(("value", "fragment"), [
    (30, 'write "30s"'),
    (1.5, 'write "1500ms"'),
    (True, "got bool"),
    (None, "got NoneType"),
    (td(seconds=-1), "negative"),
], ids=["int", "float", "bool", "none", "negative-timedelta"])
def test_duration_field_rejects(value, fragment):
    with pytest.raises(ValidationError) as info:
        _Timed(every=value)
    error = info.value.errors()[0]["ctx"]["error"]
    assert fragment in f"{error} {error.fix}"


def test_duration_field_accepts_text_and_timedelta_and_dumps_prometheus_form():
    assert _Timed(every="1h30m").every == td(minutes=90)
    assert _Timed(every=td(minutes=2)).every == td(minutes=2)
    assert _Timed(every="90m").model_dump(mode="json")["every"] == "1h30m"
    assert _Timed(every="90m").model_dump()["every"] == td(minutes=90)


# --- Secret -----------------------------------------------------------------------------------------------


class _WithSecret(BaseModel):
    token: Secret


def test_secret_hides_itself_everywhere():
    s = Secret("hunter2")
    model = _WithSecret(token="hunter2")
    shown = [str(s), repr(s), f"{s}", repr(model), str(model), model.model_dump_json(),
             str(model.model_dump()), str(model.model_dump(mode="json"))]
    assert all("hunter2" not in text for text in shown), shown
    assert "********" in str(s) and "********" in repr(s)
    assert model.token.reveal() == "hunter2"


def test_secret_compares_by_value_and_survives_copies():
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"  # never equal to a plain string: compare revealed values explicitly
    assert len({Secret("a"), Secret("a"), Secret("b")}) == 2
    assert copy.deepcopy(Secret("a")).reveal() == "a"
    assert pickle.loads(pickle.dumps(Secret("a"))).reveal() == "a"


@pytest.mark.parametrize(("value", "fragment"), [
    ("", "must not be empty"),
    (123456, "must be a string"),
    (None, "must be a string"),
], ids=["empty", "int", "none"])
def test_secret_field_rejects_without_echoing(value, fragment):
    with pytest.raises(ValidationError) as info:
        _WithSecret(token=value)
    message = str(info.value.errors()[0]["ctx"]["error"])
    assert fragment in message
    assert "123456" not in message


# --- ${VAR} -----------------------------------------------------------------------------------------------

ENV = {"HOST": "db.example.org", "PORT": "5432", "EMPTY": "", "_X1": "x"}

INTERPOLATIONS = [
    ("plain", "plain"),
    ("${HOST}", "db.example.org"),
    ("${HOST}:${PORT}", "db.example.org:5432"),
    ("pre-${_X1}-post", "pre-x-post"),
    ("${EMPTY}", ""),
    ("$${HOST}", "${HOST}"),
    ("$$${HOST}", "$${HOST}"),  # "$" then the escape "$${": only "$${" is an escape, not "$$"
    ("cost $5 and $HOST", "cost $5 and $HOST"),  # only ${...} is special
    ("a$", "a$"),
]


@pytest.mark.parametrize(("text", "expected"), INTERPOLATIONS, ids=[i[0] for i in INTERPOLATIONS])
def test_interpolate(text, expected):
    assert interpolate(text, ENV) == expected


BAD_INTERPOLATIONS = [
    ("${NOPE}", "environment variable NOPE not set"),
    ("${NOPE}/${ALSO}/${NOPE}", "environment variables NOPE, ALSO not set"),
    ("${HOST", "unterminated"),
    ("${bad-name}", "not a valid variable reference"),
    ("${}", "not a valid variable reference"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD_INTERPOLATIONS, ids=[b[0] for b in BAD_INTERPOLATIONS])
def test_interpolate_rejects(text, fragment):
    with pytest.raises(InterpolationError) as info:
        interpolate(text, ENV)
    assert fragment in str(info.value)


def test_interpolate_lists_missing_names():
    with pytest.raises(InterpolationError) as info:
        interpolate("${A}${B}${A}", {})
    assert info.value.missing == ("A", "B")


# --- ByteSize ---------------------------------------------------------------------------------------------

SIZES = [
    ("64MiB", 64 * 2**20),
    ("1MB", 10**6),
    ("512KiB", 512 * 1024),
    ("1GiB", 2**30),
    ("10 KB", 10_000),
    ("100B", 100),
    ("4096", 4096),
    (4096, 4096),
    (0, 0),
]


@pytest.mark.parametrize(("value", "expected"), SIZES, ids=[str(s[0]) for s in SIZES])
def test_parse_byte_size(value, expected):
    assert parse_byte_size(value) == expected
    assert _Timed(size=value).size == expected


@pytest.mark.parametrize("value", ["64mb", "1.5MiB", "MiB", "-1", -1, True, "64 MiBs", 1.5],
                         ids=["lowercase", "fraction", "no-number", "negative-text", "negative", "bool", "bad-unit",
                              "float"])
def test_parse_byte_size_rejects(value):
    with pytest.raises(FieldError):
        parse_byte_size(value)
