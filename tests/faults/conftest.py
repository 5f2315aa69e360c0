"""Fixtures of the fault tests, and the one-line count summary each of them records (printed at the end of the run
by the hooks in tests/faults/report.py, which the root conftest loads so that they run in the xdist controller)."""

from __future__ import annotations

import pytest

from ..support.postgres import PostgresServer
from .report import COUNTS_PROPERTY


@pytest.fixture
def record_counts(request, record_property):
    """record_counts(**counts): print the test's counts and keep them for the end-of-run summary."""

    def record(**counts) -> str:
        line = f"{request.node.name}: " + ", ".join(f"{k}={v}" for k, v in counts.items())
        print(f"\n[fault counts] {line}")
        record_property(COUNTS_PROPERTY, line)
        return line

    return record


@pytest.fixture
def private_pg():
    """A PostgreSQL server of this test alone: stopping it breaks no other test running beside it under xdist."""
    server = PostgresServer().start()
    yield server
    server.cleanup()
