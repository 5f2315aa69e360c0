"""Alertmanager webhook payload (version 4): parse untrusted bytes into typed objects, or say exactly why not.

Pure: no Flask, no database. Unknown fields are ignored (newer Alertmanagers add `notification_reason`,
`routeLabels`); what the receiver relies on is checked strictly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Annotated, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from .domain import AlertStatus, fingerprint as compute_fingerprint

# Alertmanager writes `0001-01-01T00:00:00Z` for "no end" (every firing alert carries it).
_ZERO_TIME_YEAR = 1
# Label and annotation values are stored whole, but names are short by every convention.
_MAX_NAME = 1024


class PayloadError(ValueError):
    """The body can never be a valid webhook. `status` is the HTTP code to answer, `path` the bad field."""

    def __init__(self, status: int, reason: str, path: str = "", detail: str = ""):
        self.status = status
        self.reason = reason  # short machine-friendly reason: malformed_json, invalid_payload, ...
        # A path or detail may quote the input: a NUL is written as its escape, so that the dead letter (text on
        # PostgreSQL, which cannot hold NUL) can always be stored.
        self.path = path.replace("\x00", "\\u0000")
        self.detail = detail.replace("\x00", "\\u0000")
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.reason}{where}: {self.detail}" if self.detail else f"{self.reason}{where}"


def _utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.astimezone(dt.timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: a ValueError is what pydantic reports as invalid
        raise ValueError("out of range once converted to UTC") from None


# Strict: an RFC 3339 string, as Alertmanager sends; a bare number is not taken for Unix seconds.
UtcDatetime = Annotated[pydantic.AwareDatetime, pydantic.Strict(), pydantic.AfterValidator(_utc)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WireAlert(_Lenient):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: UtcDatetime
    endsAt: UtcDatetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""


class WirePayload(_Lenient):
    version: str
    receiver: str = ""
    status: Literal["firing", "resolved"] = "firing"
    alerts: list[WireAlert]
    groupKey: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    # A count: not a bool, string or float, and within a database INTEGER.
    truncatedAlerts: int = Field(default=0, ge=0, le=2**31 - 1, strict=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Alert:
    """One alert of a snapshot, normalised: UTC times, `ends_at` None for "no end", fingerprint always set."""

    fingerprint: str
    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    generator_url: str


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookPayload:
    receiver: str
    status: str
    group_key: str
    group_labels: dict[str, str]
    external_url: str
    truncated_alerts: int
    alerts: list[Alert]


_HEX = set("0123456789abcdef")


# Names are identifiers shown in logs, terminals, CSV and the dashboard: a control character (C0, DEL, C1) there is
# never meaningful and may drive a terminal. Any other UTF-8 is a valid name since Prometheus 3.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# Quoted in the message (and so in the dead letter): lone surrogates too, which PostgreSQL text cannot hold.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_QUOTED_NAME_MAX = 200


def _escaped(name: str) -> str:
    """`name` quoted for an error message, each control character written as its \\u escape."""
    shown = _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", name[:_QUOTED_NAME_MAX])
    return f'"{shown}"' + ("…" if len(name) > _QUOTED_NAME_MAX else "")


def _check_names(mapping: dict[str, str], path: str, kind: str) -> None:
    for name in mapping:
        if _CONTROL.search(name):
            raise PayloadError(422, "invalid_payload", path, f"{kind} name {_escaped(name)} contains a control "
                                                             "character (any other UTF-8 is allowed)")


def _normalise(wire: WireAlert, index: int) -> Alert:
    for name in wire.labels:
        if not name or len(name) > _MAX_NAME:
            raise PayloadError(422, "invalid_payload", f"alerts[{index}].labels", "label names must be 1 to 1024 characters")
    _check_names(wire.labels, f"alerts[{index}].labels", "label")
    _check_names(wire.annotations, f"alerts[{index}].annotations", "annotation")
    fp = wire.fingerprint.lower()
    if not fp:
        fp = compute_fingerprint(wire.labels)
    elif len(fp) > 32 or not set(fp) <= _HEX:
        raise PayloadError(422, "invalid_payload", f"alerts[{index}].fingerprint", "must be hexadecimal (Alertmanager sends 16 hex digits)")
    ends_at = wire.endsAt
    if ends_at is not None and ends_at.year <= _ZERO_TIME_YEAR:
        ends_at = None
    if wire.status == "resolved" and ends_at is None:
        # A resolved alert always carries its end; without it, the best honest value is its start.
        ends_at = wire.startsAt
    return Alert(
        fingerprint=fp,
        status=AlertStatus(wire.status),
        labels=dict(wire.labels),
        annotations=dict(wire.annotations),
        starts_at=wire.startsAt,
        ends_at=ends_at,
        generator_url=wire.generatorURL,
    )


def _first_error(exc: pydantic.ValidationError) -> tuple[str, str]:
    err = exc.errors(include_url=False)[0]
    parts: list[str] = []
    for item in err["loc"]:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    path = "".join(parts)
    msg = err["msg"]
    if err["type"] == "json_invalid":
        return "", msg
    if err["type"] == "missing":
        msg = "field required"
    return path, msg


def parse(body: bytes) -> WebhookPayload:
    """Parse a webhook body. Raises PayloadError(400) for bad JSON, (422) for JSON that is not payload v4."""
    try:
        wire = WirePayload.model_validate_json(body)
    except pydantic.ValidationError as exc:
        path, msg = _first_error(exc)
        if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False)):
            raise PayloadError(400, "malformed_json", "", msg) from None
        if not path and any(e["type"] == "model_type" for e in exc.errors(include_url=False)):
            raise PayloadError(422, "invalid_payload", "", "the body must be a JSON object") from None
        raise PayloadError(422, "invalid_payload", path, msg) from None
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise PayloadError(400, "malformed_json", "", str(exc)[:200]) from None
    if wire.version != "4":
        raise PayloadError(422, "unsupported_version", "version", f'got {wire.version!r}; this receiver speaks webhook payload version "4"')
    alerts = [_normalise(a, i) for i, a in enumerate(wire.alerts)]
    _check_names(wire.groupLabels, "groupLabels", "label")
    parsed = WebhookPayload(
        receiver=wire.receiver,
        status=wire.status,
        group_key=wire.groupKey,
        group_labels=dict(wire.groupLabels),
        external_url=wire.externalURL,
        truncated_alerts=wire.truncatedAlerts,
        alerts=alerts,
    )
    # JSON can carry NUL only as the escape \u0000 (a raw control character is invalid JSON): the byte search is
    # cheap, and only such rare bodies are rewritten.
    escaped_nul = "\\u0000" if isinstance(body, str) else b"\\u0000"
    return _without_nul(parsed) if escaped_nul in body else parsed


# PostgreSQL text cannot hold NUL. In a value it is replaced rather than refused: a refusal would drop every alert
# of the group, and Alertmanager would send the same body again forever. (A name with NUL is refused above: names
# are identifiers, where a control character is never meaningful.)
def _nul_free(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def _nul_free_map(mapping: dict[str, str]) -> dict[str, str]:
    return {_nul_free(k): _nul_free(v) for k, v in mapping.items()}


def _without_nul(parsed: WebhookPayload) -> WebhookPayload:
    # Fingerprints were computed from the labels as sent, as Alertmanager computes them.
    alerts = [dataclasses.replace(a, labels=_nul_free_map(a.labels), annotations=_nul_free_map(a.annotations),
                                  generator_url=_nul_free(a.generator_url)) for a in parsed.alerts]
    return dataclasses.replace(parsed, receiver=_nul_free(parsed.receiver), group_key=_nul_free(parsed.group_key),
                               group_labels=_nul_free_map(parsed.group_labels),
                               external_url=_nul_free(parsed.external_url), alerts=alerts)


def parse_json_text(text: str) -> WebhookPayload:
    """Convenience for tests and replays."""
    return parse(text.encode("utf-8"))


def dumps_compact(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
