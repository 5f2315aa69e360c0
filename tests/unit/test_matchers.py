"""Alertmanager matcher syntax and semantics."""

from __future__ import annotations

import pytest

from receiver.matchers import MatchOp, Matcher, MatcherError, parse_matcher, parse_matchers

PARSES = [
    ('team="db"', ("team", MatchOp.EQ, "db")),
    ('team!="db"', ("team", MatchOp.NE, "db")),
    ('team=~"db|ops"', ("team", MatchOp.RE, "db|ops")),
    ('team!~"db.*"', ("team", MatchOp.NRE, "db.*")),
    ("severity=critical", ("severity", MatchOp.EQ, "critical")),
    ("severity!~info|debug", ("severity", MatchOp.NRE, "info|debug")),
    ('  team  =  "db"  ', ("team", MatchOp.EQ, "db")),
    ('team=""', ("team", MatchOp.EQ, "")),
    ("team=", ("team", MatchOp.EQ, "")),
    ('msg="say \\"hi\\""', ("msg", MatchOp.EQ, 'say "hi"')),
    ('path="C:\\\\tmp"', ("path", MatchOp.EQ, "C:\\tmp")),
    ('host=~"db\\.example\\.org"', ("host", MatchOp.RE, "db\\.example\\.org")),  # \. stays for the regex
    ('text="a\\nb"', ("text", MatchOp.EQ, "a\nb")),
    ('team="a,b"', ("team", MatchOp.EQ, "a,b")),
    ('name="{x}"', ("name", MatchOp.EQ, "{x}")),
    ('_private:x="1"', ("_private:x", MatchOp.EQ, "1")),
]


@pytest.mark.parametrize(("text", "expected"), PARSES, ids=[p[0].strip() for p in PARSES])
def test_parse_matcher(text, expected):
    m = parse_matcher(text)
    assert (m.name, m.op, m.value) == expected


@pytest.mark.parametrize("text", [p[0] for p in PARSES], ids=[p[0].strip() for p in PARSES])
def test_str_parses_back(text):
    m = parse_matcher(text)
    assert parse_matcher(str(m)) == m


BAD = [
    ('team=~"(db"', "invalid regex"),
    ('team=~"[a-"', "invalid regex"),
    ('team=="db"', 'bad operator "=="'),
    ('team=!"db"', 'bad operator "=!"'),
    ('team~="db"', 'bad operator "~="'),
    ('team<>"db"', 'bad operator "<>"'),
    ("team", "missing operator"),
    ('team="db', "unterminated quote"),
    ('team="db\\"', "unterminated quote"),
    ('team="db"x', "unexpected text"),
    ('team=d"b', "unexpected quote"),
    ('="db"', "does not start with a label name"),
    ('1team="db"', "does not start with a label name"),
    ("", "does not start with a label name"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD, ids=[b[0] or "empty" for b in BAD])
def test_parse_matcher_rejects(text, fragment):
    with pytest.raises(MatcherError) as info:
        parse_matcher(text)
    assert fragment in str(info.value)
    assert info.value.fix
    assert isinstance(info.value, ValueError)


LABELS = {"team": "db", "severity": "critical", "env": "prod", "empty": ""}

MATCHES = [
    ('team="db"', True),
    ('team="DB"', False),  # case-sensitive, like Alertmanager
    ('team!="db"', False),
    ('team!="ops"', True),
    ('team=~"d"', False),  # anchored: "d" does not match "db"
    ('team=~"d.*"', True),
    ('team=~"db|ops"', True),
    ('team=~"ops|db"', True),
    ('team=~"x|d"', False),  # anchoring wraps the whole alternation: ^(?:x|d)$
    ('team!~"d.*"', False),
    ('team=~"(?i)DB"', True),  # a leading flag group is legal
    ('missing=""', True),  # a missing label is the empty string
    ('missing!=""', False),
    ('missing=~".*"', True),
    ('missing=~".+"', False),
    ('missing!~".+"', True),
    ('empty=""', True),
    ('alertname!="Watchdog"', True),
]


@pytest.mark.parametrize(("text", "expected"), MATCHES, ids=[m[0] for m in MATCHES])
def test_matches(text, expected):
    assert parse_matcher(text).matches(LABELS) is expected


def test_regex_does_not_match_before_a_trailing_newline():
    # Python's $ matches before a final "\n"; Alertmanager's anchoring does not.
    assert not parse_matcher('team=~"db"').matches({"team": "db\n"})
    assert not parse_matcher('team=~"db$"').matches({"team": "db\n"})


def test_matcher_can_be_built_directly():
    m = Matcher("team", "=~", "db|ops")
    assert m.op is MatchOp.RE
    assert m.matches({"team": "ops"})
    assert m.anchored == "^(?:db|ops)$"
    assert str(m) == 'team=~"db|ops"'
    with pytest.raises(MatcherError, match="bad operator"):
        Matcher("team", "==", "db")
    with pytest.raises(MatcherError, match="invalid regex"):
        Matcher("team", "=~", "(")
    with pytest.raises(MatcherError, match="not a valid label name"):
        Matcher("my-label", "=", "x")


LISTS = [
    ('{team="db", severity=~"critical|warning"}', ['team="db"', 'severity=~"critical|warning"']),
    ('team="db",severity="critical"', ['team="db"', 'severity="critical"']),
    ("{}", []),
    ("", []),
    ('{team="db",}', ['team="db"']),
    ('{a="x,y", b=~"1|2"}', ['a="x,y"', 'b=~"1|2"']),
    ('{a="say \\"hi\\", ok"}', ['a="say \\"hi\\", ok"']),
    ("{ severity = critical , env!=dev }", ['severity="critical"', 'env!="dev"']),
]


@pytest.mark.parametrize(("text", "expected"), LISTS, ids=[item[0] or "empty" for item in LISTS])
def test_parse_matchers(text, expected):
    assert [str(m) for m in parse_matchers(text)] == expected


@pytest.mark.parametrize(("text", "fragment"), [
    ('{team="db"', "unbalanced braces"),
    ('team="db"}', "unbalanced braces"),
    ('{a="1",,b="2"}', "empty matcher"),
    ('{a="1", b=~"("}', "invalid regex"),
    ('{a="1}', "unterminated quote"),
], ids=["no-close", "no-open", "double-comma", "bad-regex", "unterminated"])
def test_parse_matchers_rejects(text, fragment):
    with pytest.raises(MatcherError, match=fragment):
        parse_matchers(text)
