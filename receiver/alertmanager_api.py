"""A small client of Alertmanager's v2 API: what the reconciler and ack silences need, nothing more.

Used only by the engine's threads, never inside a database transaction or a web request. Every failure is an
AlertmanagerError naming the Alertmanager and what went wrong (never a response body longer than a line).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Mapping

import requests
from pydantic import AwareDatetime, TypeAdapter, ValidationError

_TIME = TypeAdapter(AwareDatetime)  # Alertmanager writes nanoseconds; pydantic keeps the microseconds


class AlertmanagerError(Exception):
    def __init__(self, url: str, reason: str):
        super().__init__(f"alertmanager {url}: {reason}")
        self.url = url
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class ListedAlert:
    """An alert as GET /api/v2/alerts lists it: not yet resolved in Alertmanager, whatever its state."""

    fingerprint: str
    state: str  # active | suppressed | unprocessed
    silenced_by: tuple[str, ...]
    inhibited_by: tuple[str, ...]


class AlertmanagerClient:
    def __init__(self, http: requests.Session, *, timeout: float = 10.0, user_agent: str = "alert-receiver"):
        self.http = http
        self.timeout = timeout
        self.headers = {"User-Agent": user_agent}

    def _call(self, method: str, url: str, path: str, **kwargs) -> requests.Response:
        try:
            response = self.http.request(method, url + path, timeout=self.timeout, headers=self.headers, **kwargs)
        except requests.RequestException as exc:
            raise AlertmanagerError(url, f"{method} {path}: {type(exc).__name__}") from None
        return response

    def _json(self, url: str, path: str, response: requests.Response) -> Any:
        if response.status_code != 200:
            raise AlertmanagerError(url, f"{path} answered {response.status_code}: {_line(response.text)}")
        try:
            return response.json()
        except ValueError:
            raise AlertmanagerError(url, f"{path} answered with something that is not JSON") from None

    def started_at(self, url: str) -> dt.datetime:
        """When the Alertmanager process started (`uptime` of GET /api/v2/status): it keeps no alerts across a
        restart, so a young one lists only what Prometheus has re-sent so far."""
        body = self._json(url, "/api/v2/status", self._call("GET", url, "/api/v2/status"))
        try:
            return _TIME.validate_python(body["uptime"])
        except (KeyError, TypeError, ValidationError):
            raise AlertmanagerError(url, "/api/v2/status has no valid uptime") from None

    def alerts(self, url: str) -> list[ListedAlert]:
        """Every alert Alertmanager holds that has not resolved: active, silenced, inhibited and unprocessed
        (all four filters explicit; Alertmanager drops resolved alerts from this list whatever the filters)."""
        params = {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"}
        body = self._json(url, "/api/v2/alerts", self._call("GET", url, "/api/v2/alerts", params=params))
        if not isinstance(body, list):
            raise AlertmanagerError(url, "/api/v2/alerts did not answer a list")
        listed = []
        try:
            for item in body:
                status = item.get("status") or {}
                listed.append(ListedAlert(str(item["fingerprint"]).lower(), str(status.get("state", "active")),
                                          tuple(status.get("silencedBy") or ()), tuple(status.get("inhibitedBy") or ())))
        except (KeyError, TypeError, AttributeError):
            raise AlertmanagerError(url, "/api/v2/alerts: an alert without a fingerprint") from None
        return listed

    def create_silence(self, url: str, labels: Mapping[str, str], *, starts_at: dt.datetime, ends_at: dt.datetime,
                       created_by: str, comment: str) -> str:
        """POST /api/v2/silences with one equality matcher per label; returns the silence id."""
        body = {
            "matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in sorted(labels.items())],
            "startsAt": _iso(starts_at), "endsAt": _iso(ends_at), "createdBy": created_by, "comment": comment,
        }
        answer = self._json(url, "/api/v2/silences", self._call("POST", url, "/api/v2/silences", json=body))
        silence_id = answer.get("silenceID") if isinstance(answer, dict) else None
        if not silence_id:
            raise AlertmanagerError(url, "/api/v2/silences answered without a silenceID")
        return str(silence_id)

    def expire_silence(self, url: str, silence_id: str) -> None:
        """DELETE /api/v2/silence/{id}. A silence that is gone or already expired counts as expired: Alertmanager
        answers 500 "already expired" to a second DELETE, so that answer is checked with a GET."""
        path = f"/api/v2/silence/{silence_id}"
        response = self._call("DELETE", url, path)
        if response.status_code in (200, 404):
            return
        check = self._call("GET", url, path)
        if check.status_code == 404:
            return
        if check.status_code == 200 and (_safe_json(check).get("status") or {}).get("state") == "expired":
            return
        raise AlertmanagerError(url, f"DELETE {path} answered {response.status_code}: {_line(response.text)}")


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _line(text: str) -> str:
    return " ".join(text.split())[:200]


def _safe_json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
