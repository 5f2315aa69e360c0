"""The fault tests' counts in the terminal summary. Each test records one line as a pytest user property; the
report that carries it crosses from an xdist worker to the controller, where these hooks collect and print it.

Run as `pytest -n auto`, the controller loads the root `tests/conftest.py` but not `tests/faults/conftest.py`: the
root conftest imports these hooks."""

from __future__ import annotations

COUNTS_PROPERTY = "fault_counts"
_LINES: list[str] = []


def pytest_runtest_logreport(report) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == COUNTS_PROPERTY:
            _LINES.append(f"{'PASSED' if report.passed else 'FAILED'} {value}")


def pytest_terminal_summary(terminalreporter) -> None:
    if _LINES:
        terminalreporter.write_sep("-", "fault tests: counts")
        for line in _LINES:
            terminalreporter.write_line(line)
