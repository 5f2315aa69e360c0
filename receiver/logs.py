"""Structured logs: one line per record, logfmt (default) or JSON, extra fields included, no secrets (callers
never pass tokens, passwords or URLs with credentials; `redact` is there for the strings that might: database
URLs, and the provider answers quoted in delivery errors)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import re
import sys
import urllib.parse
from typing import Iterable, Iterator

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_NEEDS_QUOTES = re.compile(r'[ ="\n\t]')
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)


MASK = "********"
# A run that may be base64 (standard or URL-safe alphabet): SMTP's AUTH PLAIN (\0user\0password) and AUTH LOGIN,
# HTTP Basic (user:password) and many APIs echo credentials in this form.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without credentials: each of `secrets` (under 4 characters is no secret) as written, percent-encoded,
    JSON-escaped or base64-encoded, also inside a longer base64 run; then credentials in URLs
    (postgresql://user:pass@host → postgresql://***@host). Redact before cutting: a cut secret no longer matches."""
    found = [s for s in dict.fromkeys(secrets) if s and len(s) >= 4]
    if found:
        forms = {form for secret in found for form in _forms(secret) if len(form) >= 4}
        for form in sorted(forms, key=len, reverse=True):  # the longest first: one form may hold another
            text = text.replace(form, MASK)
        raw = [secret.encode() for secret in found]
        text = _BASE64_RUN.sub(lambda m: MASK if any(r in d for d in _decodings(m.group()) for r in raw)
                               else m.group(), text)
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)


def _forms(secret: str) -> list[str]:
    data = secret.encode()
    encoded = [base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode()]
    return [secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret), secret.replace("/", "\\/"),
            *encoded, *(e.rstrip("=") for e in encoded)]


def _decodings(run: str) -> Iterator[bytes]:
    """`run` decoded from each of the 4 offsets: one of them is aligned with the encoding whatever text precedes
    it in the run (a run can start early, e.g. `20` of `Basic%20<base64>`)."""
    run = run.rstrip("=").replace("-", "+").replace("_", "/")
    for offset in range(4):
        chunk = run[offset:]
        chunk = chunk[:-1] if len(chunk) % 4 == 1 else chunk + "=" * (-len(chunk) % 4)
        try:
            yield base64.b64decode(chunk)
        except binascii.Error:
            continue


def _fields(record: logging.LogRecord) -> dict:
    out = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            # An extra never replaces ts, level, logger or msg: `level=error` must stay findable.
            out[f"extra_{key}" if key in out else key] = value
    if record.exc_info:
        out["exc"] = logging.Formatter().formatException(record.exc_info)
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str, ensure_ascii=False)


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = []
        for key, value in _fields(record).items():
            text = str(value)
            if text == "" or _NEEDS_QUOTES.search(text):
                text = json.dumps(text, ensure_ascii=False)
            parts.append(f"{key}={text}")
        return " ".join(parts)


def configure(fmt: str = "logfmt", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic narrates every migration context (also each /-/ready check): keep it to warnings.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # urllib3 logs each request's path at DEBUG, and a Slack or Teams webhook path is the secret itself.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
