"""ConfigError: every problem of a config file, each with its key path and a fix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")


def key_path(loc: Iterable[str | int]) -> str:
    """('routes', 0, 'matchers', 1) → 'routes[0].matchers[1]'; keys with dots or spaces are bracketed."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY_RE.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


@dataclass(frozen=True)
class ConfigProblem:
    key: str  # dotted key path, "" for the file as a whole
    message: str
    fix: str | None = None

    def render(self, file: str | None) -> str:
        where = ": ".join(p for p in (file or "config", self.key) if p)
        return f"{where}: {self.message}" + (f" — fix: {self.fix}" if self.fix else "")


class ConfigError(Exception):
    """A config that cannot be used. `errors` lists every problem found; `key`, `message`, `fix` are the first's.

    str() gives one line per problem: `receiver.yml: routes[0].levels.L1: undefined channel "x" — fix: ...`.
    """

    def __init__(self, errors: Sequence[ConfigProblem] | str, *, file: str | None = None,
                 key: str = "", fix: str | None = None):
        if isinstance(errors, str):
            errors = [ConfigProblem(key, errors, fix)]
        if not errors:
            raise ValueError("ConfigError needs at least one problem")
        self.errors: list[ConfigProblem] = list(errors)
        self.file = file
        super().__init__(str(self))

    @property
    def key(self) -> str:
        return self.errors[0].key

    @property
    def message(self) -> str:
        return self.errors[0].message

    @property
    def fix(self) -> str | None:
        return self.errors[0].fix

    def with_file(self, file: str | None) -> "ConfigError":
        return ConfigError(self.errors, file=file)

    def __str__(self) -> str:
        return "\n".join(p.render(self.file) for p in self.errors)
