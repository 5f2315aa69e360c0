"""The reference pages cannot rot silently: every Flask route and every command (with its options) is documented
once, in its reference page, and nothing documented there is gone from the code. Links between pages resolve."""

from __future__ import annotations

import re

import click
import pytest
import yaml
from prometheus_client import CollectorRegistry

from receiver.app import create_app
from receiver.cli import main
from receiver.config import load_config

from ..support.fixtures import ROOT

DOCS = ROOT / "docs"
HTTP_API = DOCS / "http-api.md"
CLI = DOCS / "cli.md"
ROUTE_FORM = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`")
HEADING = re.compile(r"^(#+)\s+(.*)$")


def pages(*, contract: bool = False) -> list:
    """README and the pages under docs/; docs/design.md (the first product contract, kept as it was) on request."""
    return [ROOT / "README.md", *sorted(p for p in DOCS.glob("*.md") if contract or p.name != "design.md")]


def shape(path: str) -> str:
    """/api/v1/alerts/{alert_id} → /api/v1/alerts/{}: a page may name a parameter `{id}`."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def app_routes(tmp_path) -> set[tuple[str, str]]:
    """(method, path) of every rule of the real app, Flask's `<int:id>` written as `{id}`."""
    path = tmp_path / "receiver.yml"
    path.write_text(yaml.safe_dump({"database": {"url": f"sqlite:///{tmp_path}/r.db"}}))
    app = create_app(load_config(path, env={}), registry=CollectorRegistry())
    try:
        return {(method, shape(re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)))
                for rule in app.url_map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}}
    finally:
        app.extensions["alert_receiver"].db.dispose()


def documented_routes(text: str) -> list[tuple[str, str]]:
    """The routes a page defines: the first `METHOD /path` code spans of each table row or heading."""
    found = []
    for line in text.splitlines():
        if line.startswith("|"):
            first_cell = line.split("|")[1]
            found.extend(ROUTE_FORM.findall(first_cell))
        elif line.startswith("#"):
            found.extend(ROUTE_FORM.findall(line))
    return [(method, shape(path)) for method, path in found]


def commands(group: click.Group = main, prefix: str = "alert-receiver") -> dict[str, click.Command]:
    """'alert-receiver stats summary' → its click command, for every command and group below `main`."""
    out = {}
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        out[path] = command
        if isinstance(command, click.Group):
            out.update(commands(command, path))
    return out


def sections(text: str) -> dict[str, str]:
    """heading's command (`alert-receiver …` in backticks) → the text up to the next heading of its level or higher."""
    lines = text.splitlines()
    out = {}
    for i, line in enumerate(lines):
        heading = HEADING.match(line)
        if not heading:
            continue
        named = re.search(r"`(alert-receiver(?: [a-z][a-z-]*)*)`", heading.group(2))
        if not named:
            continue
        level, body = len(heading.group(1)), []
        for following in lines[i + 1:]:
            h = HEADING.match(following)
            if h and len(h.group(1)) <= level:
                break
            body.append(following)
        assert named.group(1) not in out, f"{named.group(1)} has two headings"
        out[named.group(1)] = "\n".join(body)
    return out


def test_every_route_is_documented_once_in_the_http_api_page_and_nothing_else_is(tmp_path):
    routes = app_routes(tmp_path)
    assert len(routes) > 40  # the whole app, not a blueprint
    where: dict[tuple[str, str], list[str]] = {}
    for page in pages():
        for route in documented_routes(page.read_text()):
            where.setdefault(route, []).append(page.name)
    missing = sorted(r for r in routes if where.get(r) != ["http-api.md"])
    assert not missing, "routes not documented exactly once, in docs/http-api.md (as a table row or heading " \
        "starting with `METHOD /path`): " + ", ".join(f"{m} {p} {where.get((m, p), [])}" for m, p in missing)
    stale = sorted(set(where) - routes)
    assert not stale, f"documented but not served: {stale}"


def test_every_command_and_option_is_documented_once_in_the_command_line_page():
    documented = {page.name: sections(page.read_text()) for page in pages()}
    reference = documented["cli.md"]
    for path, command in commands().items():
        elsewhere = [name for name, found in documented.items() if path in found and name != "cli.md"]
        assert not elsewhere, f"{path} has a heading outside docs/cli.md: {elsewhere}"
        if isinstance(command, click.Group) and not command.params:
            continue  # a bare group (`stats`) is documented by its commands' headings
        assert path in reference, f"docs/cli.md has no heading with `{path}`"
        for param in command.params:
            for option in (o for o in param.opts + param.secondary_opts if o.startswith("--")):
                assert option in reference[path], f"docs/cli.md: `{path}` does not mention {option}"
    stale = sorted(set(reference) - set(commands()) - {"alert-receiver"})
    assert not stale, f"documented but no such command: {stale}"
    for option in ("--log-format", "--log-level", "--version"):  # the options every command takes
        assert option in CLI.read_text()


@pytest.mark.parametrize("page", pages(contract=True), ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = target.split("#")[0]
        assert (page.parent / path).exists(), f"{page.name} links to {target}, which does not exist"
