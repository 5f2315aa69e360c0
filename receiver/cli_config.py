"""What every `alert-receiver` command shares: receiver.yml loaded, a bad file reported as a click error.

Imported by cli.py (the command group) and by the sub-command modules it registers (cli_stats.py,
cli_analytics.py), which never import cli.py."""

from __future__ import annotations

import click


def load(config_path: str | None):
    from .config import ConfigError, load_config

    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
