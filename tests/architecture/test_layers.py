"""The import-linter contracts in setup.cfg ([importlinter] sections) hold: the layers of receiver/ (every module
directly under it placed, lower layers never importing higher ones), no Flask below the web layer, no SQLAlchemy in
the channels. The contracts are read from setup.cfg, never listed here, so that moving a module is one edit there.

The second test shows the check can fail: the same contracts, renamed onto a small package built in tmp_path with
one module per layer, pass on the clean copy and fail for each kind of violation put into it."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # --no-cache: no .import_linter_cache left behind, nothing shared between parallel workers; COLUMNS: a contract's
    # name on one line of the report, not wrapped at 80 columns
    return subprocess.run([str(LINT_IMPORTS), str(config), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "500"})


def test_the_import_contracts_are_kept():
    result = lint_imports(ROOT / "setup.cfg", ROOT)
    assert result.returncode == 0, f"lint-imports --config setup.cfg failed:\n{result.stdout}\n{result.stderr}"
    assert "0 broken" in result.stdout, result.stdout


# --- the check can fail ------------------------------------------------------------------------------------------

def _contracts(package: str) -> tuple[str, list[str]]:
    """setup.cfg's [importlinter] sections with the root package renamed, and the layer names of the layers
    contract (optional ones included: the fake package has them all, as it will once they exist)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "setup.cfg")
    copy = configparser.ConfigParser(interpolation=None)
    tails: list[str] = []
    for section in parser.sections():
        if not section.startswith("importlinter"):
            continue
        copy[section] = {key: re.sub(r"\breceiver\b", package, value) for key, value in parser[section].items()}
        if parser[section].get("type") == "layers":
            assert parser[section]["containers"].split() == ["receiver"], "the fake package mirrors one container"
            for line in parser[section]["layers"].split("\n"):
                tails += [tail.strip().strip("()") for tail in re.split(r"[|:]", line) if tail.strip()]
    assert tails, "setup.cfg has no layers contract"
    lines = []
    for section in copy.sections():
        lines.append(f"[{section}]")
        for key, value in copy[section].items():
            parts = [part for part in value.split("\n") if part.strip()]
            lines.append(f"{key} = {parts[0]}" if len(parts) == 1 and "\n" not in value
                         else f"{key} =" + "".join(f"\n    {part}" for part in parts))
        lines.append("")
    return "\n".join(lines), tails


def _fake_package(tmp_path: Path, violation: str | None) -> Path:
    package = "fakepkg"
    config, tails = _contracts(package)
    (tmp_path / "contracts.ini").write_text(config)
    root = tmp_path / package
    root.mkdir()
    (root / "__init__.py").write_text("")
    for tail in tails:  # every layer a package, so that a violation can go in a module inside it
        (root / tail).mkdir()
        (root / tail / "__init__.py").write_text("")
    imports = {
        None: ("engine/x.py", "import sqlalchemy\n"),
        "flask in engine": ("engine/x.py", "import flask\n"),
        "flask in store, inside a function": ("store/x.py", "def f():\n    from flask import request\n"),
        "sqlalchemy in channels": ("channels/x.py", "import sqlalchemy\n"),
        "store imports web": ("store/x.py", f"from {package}.web import x\n"),
        "channels import config when type checking": (
            "channels/x.py", f"from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from {package}.config import y\n"),
        "a module in no layer": ("unplaced.py", ""),
    }
    path, source = imports[violation]
    (root / path).write_text(source)
    if violation == "store imports web":
        (root / "web" / "x.py").write_text("")
    if violation == "channels import config when type checking":
        (root / "config" / "y.py").write_text("")
    return tmp_path


def test_the_contracts_on_a_clean_copy_pass(tmp_path):
    """The control: the renamed contracts hold on a package with every layer and only allowed imports."""
    folder = _fake_package(tmp_path, None)
    result = lint_imports(folder / "contracts.ini", folder)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def _contract_name(contract: str, package: str) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "setup.cfg")
    return re.sub(r"\breceiver\b", package, parser[f"importlinter:contract:{contract}"]["name"])


@pytest.mark.parametrize("violation, contract, reported", [
    ("flask in engine", "no-flask-below-web", "fakepkg.engine.x -> flask"),
    ("flask in store, inside a function", "no-flask-below-web", "fakepkg.store.x -> flask"),
    ("sqlalchemy in channels", "channels-no-sqlalchemy", "fakepkg.channels.x -> sqlalchemy"),
    ("store imports web", "layers", "fakepkg.store.x -> fakepkg.web.x"),
    ("channels import config when type checking", "layers", "fakepkg.channels.x -> fakepkg.config.y"),
    ("a module in no layer", "layers", "fakepkg.unplaced"),
])
def test_the_contracts_fail_on_a_violation(tmp_path, violation, contract, reported):
    folder = _fake_package(tmp_path, violation)
    result = lint_imports(folder / "contracts.ini", folder)
    assert result.returncode != 0, f"lint-imports passed despite {violation}:\n{result.stdout}\n{result.stderr}"
    name = r"\s+".join(map(re.escape, _contract_name(contract, "fakepkg").split()))
    assert re.search(name + r"\s+BROKEN", result.stdout), result.stdout
    assert reported in result.stdout, result.stdout
