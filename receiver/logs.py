"""Structured logs: one line per record, logfmt (default) or JSON, extra fields included, no secrets (callers
never pass tokens, passwords or URLs with credentials; `redact` is there for the few strings that might)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_NEEDS_QUOTES = re.compile(r'[ ="\n\t]')
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)


def redact(text: str) -> str:
    """Hide credentials embedded in URLs (postgresql://user:pass@host → postgresql://***@host)."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)


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
