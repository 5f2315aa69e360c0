"""gunicorn, run in-process: the arbiter is this process, so SIGTERM reaches it and shuts down gracefully."""

from __future__ import annotations

from typing import Callable

from gunicorn.app.base import BaseApplication

from .config import Config


class GunicornServer(BaseApplication):
    """gunicorn with settings from a dict (receiver.gunicorn_conf.settings) and an app built in each worker."""

    def __init__(self, load_app: Callable[[], object], options: dict):
        self._load_app = load_app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if value is not None or key == "accesslog":
                self.cfg.set(key, value)

    def load(self):
        # Runs in each worker after fork: every worker builds its own app and database pool.
        return self._load_app()


def receiver_server(config: Config, options: dict) -> GunicornServer:
    def load():
        from .app import create_app

        return create_app(config)

    return GunicornServer(load, options)
