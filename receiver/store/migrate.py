"""Schema migrations with Alembic, driven from code: `alert-receiver migrate`, `serve` on start, the tests."""

from __future__ import annotations

import pathlib

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from .db import write_transaction

_SCRIPT_LOCATION = str(pathlib.Path(__file__).parent / "migrations")


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", _SCRIPT_LOCATION)
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to `revision` in one write transaction (SQLite: under BEGIN IMMEDIATE, so two starters serialise)."""
    cfg = _alembic_config()
    with write_transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Back to `revision`, in one write transaction (for a release rolled back, and the migration tests)."""
    cfg = _alembic_config()
    with write_transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def autogenerate(engine: Engine, message: str) -> None:
    """For developers: write a new revision from the difference between the models and the database."""
    cfg = _alembic_config()
    with write_transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)
