"""Alertmanager label matchers: `name="value"`, `name!="v"`, `name=~"re"`, `name!~"re"`, and `{a="b", c=~"d"}` lists.

Semantics follow Alertmanager: regexes are fully anchored (`^(?:re)$`), and a missing label matches as "".
Regexes are RE2, as Alertmanager's Go regexp: linear in time whatever the pattern, so a matcher from a request or
a config can never backtrack for minutes (`(.+.+)+!` took 92 s in Python's `re`). A pattern RE2 rejects
(backreferences, lookaround) is a MatcherError naming it.
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import re2

__all__ = ["MatchOp", "Matcher", "MatcherError", "compile_re2", "parse_matcher", "parse_matchers"]

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a rejected pattern is our error to report, not a line on stderr
_RE2_OPTIONS.never_capture = True  # matchers only ask "does it match": without groups RE2 runs its faster engines


@functools.lru_cache(maxsize=512)
def compile_re2(pattern: str) -> Any:
    """The RE2 program of `pattern`; re2.error when RE2 rejects it. Cached: SQLite's REGEXP asks once per row."""
    return re2.compile(pattern, options=_RE2_OPTIONS)


class MatcherError(ValueError):
    """A matcher that cannot be parsed; `fix` says what to write instead."""

    def __init__(self, message: str, fix: str | None = None):
        super().__init__(message)
        self.fix = fix


class MatchOp(str, enum.Enum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"

    def __str__(self) -> str:
        return self.value


_OPS_HINT = 'use one of = != =~ !~, e.g. team="db" or severity=~"critical|warning"'
# Prometheus label names; the colon is accepted because Alertmanager's classic parser accepts it.
_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@dataclass(frozen=True)
class Matcher:
    """One label matcher; `Matcher("team", "=~", "db|ops").matches({"team": "db"})` is True."""

    name: str
    op: MatchOp
    value: str
    _regex: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name or ""):
            raise MatcherError(f'"{self.name}" is not a valid label name',
                               fix="label names are letters, digits and _, not starting with a digit")
        try:
            op = MatchOp(self.op)
        except ValueError:
            raise MatcherError(f'bad operator "{self.op}"', fix=_OPS_HINT) from None
        object.__setattr__(self, "op", op)
        if op in (MatchOp.RE, MatchOp.NRE):
            try:
                regex = compile_re2(self.value)  # fullmatch == Alertmanager's ^(?:re)$
            except re2.error as exc:
                reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else exc
                raise MatcherError(f'invalid regex "{self.value}" in {self}: {reason}',
                                   fix="write a regular expression in RE2 syntax, as Alertmanager uses (no "
                                       "backreferences or lookaround)") from None
            object.__setattr__(self, "_regex", regex)

    @property
    def anchored(self) -> str:
        """The regex as Alertmanager anchors it (for display and for translating to SQL)."""
        return f"^(?:{self.value})$"

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op is MatchOp.EQ:
            return actual == self.value
        if self.op is MatchOp.NE:
            return actual != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(actual) is not None
        return found if self.op is MatchOp.RE else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op.value}"{escaped}"'


def _unquote(raw: str, text: str) -> str:
    """The inside of a double-quoted value with \\" \\\\ \\n unescaped; other escapes (\\. in regexes) kept."""
    out: list[str] = []
    i = 1
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
            continue
        if ch == '"':
            if raw[i + 1:].strip():
                raise MatcherError(f'unexpected text {raw[i + 1:].strip()!r} after the closing quote in {text!r}',
                                   fix='quote the whole value, escaping inner quotes as \\"')
            return "".join(out)
        out.append(ch)
        i += 1
    raise MatcherError(f"unterminated quote in {text!r}", fix='close the value with "')


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher: `name="value"`, `name!="v"`, `name=~"re"`, `name!~"re"`, or unquoted `name=value`."""
    if not isinstance(text, str):
        raise MatcherError(f"a matcher must be a string, got {type(text).__name__}", fix='write e.g. \'team="db"\'')
    stripped = text.strip()
    name_match = _NAME_RE.match(stripped)
    if not name_match:
        raise MatcherError(f"{text!r} does not start with a label name", fix='write e.g. team="db"')
    name = name_match.group(0)
    rest = stripped[name_match.end():].lstrip()
    op = next((o for o in ("=~", "!~", "!=", "=") if rest.startswith(o)), None)
    if op is None:
        shown = re.match(r"[^\w\"\s]*", rest).group(0) or rest[:1]  # type: ignore[union-attr]
        raise MatcherError(f'bad operator "{shown}" after label name "{name}" in {text!r}' if shown
                           else f'missing operator after label name "{name}" in {text!r}', fix=_OPS_HINT)
    raw = rest[len(op):].strip()
    if raw[:1] in ("=", "!", "~"):
        raise MatcherError(f'bad operator "{op + raw[0]}" in {text!r}', fix=_OPS_HINT)
    if raw.startswith('"'):
        value = _unquote(raw, text)
    else:
        if '"' in raw:
            raise MatcherError(f"unexpected quote in unquoted value in {text!r}", fix="quote the whole value")
        value = raw
    return Matcher(name, MatchOp(op), value)


def _split(body: str) -> list[str]:
    """Split on commas outside double quotes."""
    parts, current, in_quote, i = [], [], False, 0
    while i < len(body):
        ch = body[i]
        if in_quote and ch == "\\" and i + 1 < len(body):
            current.append(body[i:i + 2])
            i += 2
            continue
        if ch == '"':
            in_quote = not in_quote
        if ch == "," and not in_quote:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def parse_matchers(text: str) -> list[Matcher]:
    """Parse a comma-separated list, optionally in braces as amtool accepts: `{a="b", c=~"d"}`."""
    if not isinstance(text, str):
        raise MatcherError(f"matchers must be a string, got {type(text).__name__}", fix='write e.g. \'team="db"\'')
    body = text.strip()
    if body.startswith("{") or body.endswith("}"):
        if not (body.startswith("{") and body.endswith("}")):
            raise MatcherError(f"unbalanced braces in {text!r}", fix='write {a="b", c="d"} or leave out both braces')
        body = body[1:-1].strip()
    if not body:
        return []
    parts = _split(body)
    if len(parts) > 1 and not parts[-1].strip():
        parts.pop()  # a trailing comma is fine, as in Alertmanager
    matchers = []
    for part in parts:
        if not part.strip():
            raise MatcherError(f"empty matcher in {text!r}", fix="remove the extra comma")
        matchers.append(parse_matcher(part))
    return matchers
