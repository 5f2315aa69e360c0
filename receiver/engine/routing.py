"""Which routes an alert takes, and at which level it starts. Pure: labels and config in, decisions out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from receiver.config.model import LevelsSettings
from receiver.config.routes import ResolvedRoute
from receiver.domain import Level


def match_routes(routes: Sequence[ResolvedRoute], labels: Mapping[str, str]) -> list[ResolvedRoute]:
    """The routes an alert with `labels` follows, in order: first match wins, `continue: true` goes on to
    later routes, and the default route applies only when no other route matched (as in Alertmanager)."""
    matched: list[ResolvedRoute] = []
    default: ResolvedRoute | None = None
    for route in routes:
        if route.is_default:
            default = route
            continue
        if route.matches(labels):
            matched.append(route)
            if not route.continue_:
                break
    if not matched and default is not None:
        matched.append(default)
    return matched


@dataclass(frozen=True)
class LevelDecision:
    level: Level
    severity: str | None  # the label's value; None when the alert has no (or an empty) severity label
    known: bool  # False when a severity was given that the mapping does not know: count and log it


def level_for(levels: LevelsSettings, labels: Mapping[str, str]) -> LevelDecision:
    """The level an occurrence starts at: its severity label through `levels.severity`, else `levels.default`.

    A missing severity takes the default and counts as known (docs/design.md: "info or missing → L3"); an unmapped one
    takes the default too, with known=False.
    """
    severity = labels.get("severity") or None
    if severity is None:
        return LevelDecision(levels.default, None, True)
    level = levels.severity.get(severity)
    if level is None:
        return LevelDecision(levels.default, severity, False)
    return LevelDecision(level, severity, True)
