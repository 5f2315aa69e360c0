"""Finding the real binaries the tests drive (Debian packages), failing loudly in CI when one is missing."""

from __future__ import annotations

import os
import shutil

import pytest

# binary -> Debian package that installs it
PACKAGES = {
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "amtool": "prometheus-alertmanager",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "initdb": "postgresql",
    "pg_ctl": "postgresql",
    "postgres": "postgresql",
    "wrk": "wrk",
    "curl": "curl",
    "faketime": "faketime",
}

# Debian keeps the PostgreSQL server binaries off PATH.
_EXTRA_DIRS = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"]


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in _EXTRA_DIRS:
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def require_binary(name: str) -> str:
    """The path of `name`; in CI (CI=true) a missing binary fails the test, locally it skips with the fix."""
    path = find_binary(name)
    if path:
        return path
    package = PACKAGES.get(name, name)
    message = (
        f"{name} not found: install it with `apt-get install --no-install-recommends {package}` "
        f"(or run tests/run.sh, which installs every test dependency)"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)
