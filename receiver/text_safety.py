"""Untrusted text (label values from any Alertmanager) made safe for where it is written: a spreadsheet cell that
would not run as a formula, and terminal output that carries no control sequence.

Shared by the API's export (receiver.statistics.read_export) and the command line (receiver.cli_stats, cli_analytics).
"""

from __future__ import annotations

# A spreadsheet evaluates a cell starting with these (=cmd|' /C calc'!A0, +1+1, -2+3, @SUM(…); tab and CR are
# skipped by some importers, which then see what follows).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# C0, DEL and C1: ESC starts every escape sequence, U+009B is an 8-bit CSI some terminals obey in UTF-8, BEL and
# backspace move or sound; none is text a reader needs.
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
_LINE_BREAKS = {ord("\t"), ord("\n"), ord("\r")}
# A table cell is one line: layout characters become a space, the rest go.
_CELL = {c: (" " if c in _LINE_BREAKS else None) for c in _CONTROLS}
# A stream of lines (CSV, JSON) keeps its line breaks and tabs, which move the cursor only in harmless ways.
_STREAM = {c: None for c in _CONTROLS if c not in _LINE_BREAKS}


def neutralise(cell: str) -> str:
    """A cell a spreadsheet would evaluate, prefixed with ' (the export does the same in SQL)."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def table_cell(text: str) -> str:
    """`text` as one line of a terminal table: no control character, tabs and line breaks as spaces."""
    return text.translate(_CELL)


def terminal_text(text: str) -> str:
    """`text` for a terminal: line breaks and tabs kept, every other control character dropped."""
    return text.translate(_STREAM)
