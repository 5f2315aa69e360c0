"""No module under receiver/ is over MAX_LINES lines (the Alembic migrations aside: one revision is one file, however
long): a module past that does more than one thing, and is split along its seams rather than let grow."""

from __future__ import annotations

from pathlib import Path

MAX_LINES = 450
PACKAGE = Path(__file__).resolve().parents[2] / "receiver"
EXEMPT = PACKAGE / "store" / "migrations"


def test_no_module_is_over_the_line_limit():
    sizes = {path.relative_to(PACKAGE.parent).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
             for path in sorted(PACKAGE.rglob("*.py")) if not path.is_relative_to(EXEMPT)}
    assert len(sizes) > 50, sizes  # the package was found
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert not too_long, f"over {MAX_LINES} lines: " + ", ".join(f"{name} ({lines})" for name, lines in too_long.items())
