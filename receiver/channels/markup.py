"""Escaping for the markup each channel speaks, so that labels, annotations and URLs from Alertmanager (anyone
who can write an alert rule or push an alert) are shown as text and never act: no Slack `<!channel>`, no fake
"Acknowledge" link, no `javascript:` href. Pure functions; render.py registers them as template filters.

- plain: every channel: control characters out (terminal escapes in logs, NULs, bidi overrides that disguise).
- Slack mrkdwn: `mrkdwn` for text, `slack_url` for the URL of a `<url|text>` link.
- Teams (Adaptive Card markdown): `teams_md` for text, `teams_url` for the URL of a `[text](url)` link.
- HTML (e-mail) is autoescaped by Jinja; `http_url` keeps an href to http(s).
"""

from __future__ import annotations

import re
import urllib.parse

# C0 controls but tab and newline, DEL, C1, and the bidi embeddings, overrides and isolates (they can make text
# read as something else, e.g. a URL backwards).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SCHEME = re.compile(r"https?://[^/?#\s]", re.I)

# Characters RFC 3986 does not allow in a URL (a browser encodes them too), and so always encoded: among them
# `|` and `>`, which end a Slack `<url|text>` link, and `"`, which ends an HTML attribute.
_NOT_IN_URL = '"<>\\^`{|}'
# In `[text](url)`, an unbalanced `)` ends the URL (and a space, encoded always).
_TEAMS_URL_UNSAFE = "()"

# Adaptive Card markdown: emphasis (* _ ~), links ([ ] ( )), code (`), autolinks (< >) and the escape itself.
# Backslash escapes are CommonMark's, which Teams follows.
_TEAMS_SPECIAL = re.compile(r"([\\*_~`\[\]()<>])")
# List markers act only at the start of a line: "- x", "+ x", "1. x" ("1) x" is escaped above).
_TEAMS_LIST = re.compile(r"^(\s*)(?:([-+])|(\d+)\.)", re.M)


def plain(text: object) -> str:
    """`text` without control characters (tab and newline stay)."""
    return "" if text is None else _CONTROL.sub("", str(text))


def http_url(url: object, unsafe: str = "") -> str:
    """`url` when it is an absolute http(s) URL, with whitespace, characters not allowed in URLs and those of
    `unsafe` percent-encoded; "" otherwise (javascript:, data:, relative, empty): the caller then drops the link."""
    url = plain(url).strip() if url else ""
    if not _SCHEME.match(url):
        return ""
    return "".join(urllib.parse.quote(c, safe="") if c.isspace() or c in _NOT_IN_URL or c in unsafe else c
                   for c in url)


def mrkdwn(text: object) -> str:
    """Slack mrkdwn text: &, < and > as entities, the only escapes Slack has (https://api.slack.com/reference/
    surfaces/formatting#escaping). `*bold*` and `_italic_` have none; they can only restyle, never link."""
    return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_url(url: object) -> str:
    """A URL for `<url|text>`: http(s) only, `|`, `<` and `>` percent-encoded (as http_url does); "" when it is
    not safe to link."""
    return http_url(url)


def teams_md(text: object) -> str:
    """Adaptive Card markdown text: every markdown metacharacter backslash-escaped, and list markers at the
    start of a line too, so that the text shows as written."""
    text = _TEAMS_SPECIAL.sub(r"\\\1", plain(text))
    return _TEAMS_LIST.sub(lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\."), text)


def teams_url(url: object) -> str:
    """A URL for `[text](url)`: http(s) only, parentheses percent-encoded too; "" when it is not safe to link."""
    return http_url(url, _TEAMS_URL_UNSAFE)


FILTERS = {"plain": plain, "http_url": http_url, "mrkdwn": mrkdwn, "slack_url": slack_url,
           "teams_md": teams_md, "teams_url": teams_url}
