"""gunicorn, run in-process: the arbiter is this process, so SIGTERM reaches it and shuts down gracefully."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from .config import Config


class ReceiverServer(BaseApplication):
    def __init__(self, config: Config, options: dict):
        self._config = config
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if value is not None or key == "accesslog":
                self.cfg.set(key, value)

    def load(self):
        # Runs in each worker after fork: every worker builds its own app and database pool.
        from .app import create_app

        return create_app(self._config)
