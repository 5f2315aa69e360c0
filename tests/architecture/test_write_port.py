"""Every write goes through the write port (store/write_port.py): nothing outside the port, its SQLite writer and the
schema migrations opens a write transaction of its own; the web layer names nothing of the SQLite writer; module
names are unique; and the webhook's set-based write stays in small functions."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "receiver"
# Where a write transaction may be opened: the port and the transaction itself, the writer process's loop, and
# Alembic's schema upgrade (before any port exists).
MAY_OPEN_WRITE_TRANSACTIONS = {"store/db.py", "store/write_port.py", "writer/group_commit.py", "store/migrate.py"}


def modules() -> dict[str, ast.Module]:
    return {path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
            for path in sorted(PACKAGE.rglob("*.py")) if "migrations" not in path.parts}


def names_used(tree: ast.Module) -> set[str]:
    found = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    found |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    found |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    return found


def test_only_the_port_opens_write_transactions():
    trees = modules()
    assert len(trees) > 50
    opening = {name for name, tree in trees.items() if "write_transaction" in names_used(tree)}
    assert opening - MAY_OPEN_WRITE_TRANSACTIONS == set(), "write through Writes.submit or Writes.transaction"
    assert "store/write_port.py" in opening  # the check sees the one that must


def test_the_web_names_nothing_of_the_writer_process():
    for name, tree in modules().items():
        if not name.startswith("web/"):
            continue
        imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any(module.split(".")[0] == "writer" or "receiver.writer" in module or "group_commit" in module
                       for module in imported), name
        assert not names_used(tree) & {"NOT_RUNNING", "GroupCommitClient", "GroupCommitWrites", "open_writes"}, name


def test_no_two_modules_share_a_name():
    names = Counter(path.name for path in PACKAGE.rglob("*.py")
                    if "migrations" not in path.parts and path.name not in ("__init__.py", "__main__.py"))
    assert [name for name, n in names.items() if n > 1] == []


def test_the_webhooks_set_based_write_is_in_small_functions():
    tree = ast.parse((PACKAGE / "engine" / "ingest.py").read_text(encoding="utf-8"))
    sizes = {node.name: node.end_lineno - node.lineno + 1 for node in ast.walk(tree)
             if isinstance(node, ast.FunctionDef)}
    assert "_apply" in sizes and "apply_snapshots" in sizes
    assert {name: n for name, n in sizes.items() if n >= 50} == {}
