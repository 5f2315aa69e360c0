"""What the dashboard tests share: the hostile label, webhook bodies derived from the genuine captures, tokens,
and a browser-like client helper that signs in and reads the CSRF token from the page."""

from __future__ import annotations

import json
import re

from ..support.fixtures import TOKEN, raw

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
TOKENS = {"webhook": TOKEN, "read": "dash-read-token-0123", "write": "dash-write-token-89ab"}


def token_settings() -> list[dict]:
    return [{"name": "alertmanager", "token": TOKENS["webhook"], "role": "webhook"},
            {"name": "analysts", "token": TOKENS["read"], "role": "read"},
            {"name": "oncall", "token": TOKENS["write"], "role": "write"}]


def hostile_body(severity: str = "info", base: bytes | None = None) -> bytes:
    """a_single_firing as Alertmanager sent it (or `base`, e.g. its `recent` form), but the alert named
    `<script>alert(1)</script>`, carrying it in a label and its summary too, at `severity`; the fingerprint dropped
    so that the receiver computes it."""
    doc = json.loads(base or raw("a_single_firing"))
    alert = doc["alerts"][0]
    alert["labels"].update(alertname=SCRIPT, severity=severity, note=SCRIPT)
    alert["annotations"]["summary"] = f"summary {SCRIPT}"
    alert.pop("fingerprint")
    doc["commonLabels"] = dict(alert["labels"])
    doc["groupLabels"] = {"alertname": SCRIPT, "service": alert["labels"]["service"]}
    doc["groupKey"] = '{}:{alertname="%s", service="%s"}' % (SCRIPT, alert["labels"]["service"])
    return json.dumps(doc).encode()


def csrf_of(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)


def sign_in(client, token: str, next_path: str = "/"):
    """Sign in through the form, as a browser does: GET the form (session + CSRF), POST the token."""
    page = client.get("/login").get_data(as_text=True)
    return client.post("/login", data={"csrf": csrf_of(page), "token": token, "next": next_path})
