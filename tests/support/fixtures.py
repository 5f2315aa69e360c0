"""The genuine Alertmanager 0.25 webhook captures in ../shared/fixtures, as raw bodies and parsed documents."""

from __future__ import annotations

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "alertmanager-0.25"
TOKEN = "dev-fixture-token-7f3a9c"


def captures() -> list[dict]:
    """Every captured POST (the *.json files), sorted by name."""
    return [json.loads(p.read_text()) | {"_file": p.name} for p in sorted(FIXTURES.glob("*.json"))]


def raw_bodies() -> dict[str, bytes]:
    """name → the exact bytes Alertmanager sent, for every raw/*.body."""
    return {p.stem: p.read_bytes() for p in sorted((FIXTURES / "raw").glob("*.body"))}


def raw(name: str) -> bytes:
    return (FIXTURES / "raw" / f"{name}.body").read_bytes()


def source_of(capture: dict) -> str:
    """The /webhook/<name> the capture was posted to ('' for plain /webhook)."""
    path = capture["request"]["path"]
    parts = path.strip("/").split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == "webhook" else ""
