"""create_app: the one place the web side is built. Everything the views need is constructed here and passed
down through `app.extensions["alert_receiver"]`; importing this module has no side effects."""

from __future__ import annotations

import logging

from flask import Flask
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine

from .clock import Clock, SystemClock
from .config import Config, load_config
from .metrics import Metrics, check_multiprocess_ready
from .writer.client import open_writes
from .store.db import create_db_engine
from .store.write_port import Writes
from .web import (alerts_api, api_errors, correlations_api, dashboard, export_api, history_api, lifecycle_api,
                  notifications_api, oncall_api, openapi, ops, pagerduty_webhook, regex_gate, rejected_api, stats_api,
                  webhook_api)
from .web import maintenance_api
from .web import slack_interactions
from .web import telegram_webhook
from .web import twilio_sms_webhook
from .web.auth import Authenticator
from .web.params import CONVERTERS
from .web.context import Services

log = logging.getLogger("receiver.app")


def build_db(config: Config) -> Engine:
    d = config.database
    return create_db_engine(d.url, lock_timeout=d.lock_timeout, pool_size=d.pool_size,
                            sqlite_synchronous=d.sqlite_synchronous, prepared_statements=d.prepared_statements)


def create_app(config: Config | None = None, *, clock: Clock | None = None, registry: CollectorRegistry | None = None,
               db: Engine | None = None, writes: Writes | None = None) -> Flask:
    """The web app. `writes` is the write port (default: chosen for the database by open_writes); `db`, when
    given without it, is the database both are built on."""
    check_multiprocess_ready()
    config = config if config is not None else load_config()
    app = Flask("receiver", static_folder=None)  # no static files: no /static route
    app.json.sort_keys = False
    # Bodies are read and bounded by the webhook view itself (server.max_body_size); no second limit here.
    app.config["MAX_CONTENT_LENGTH"] = None
    # Before any route: ids bounded to what a row id can be, text without NUL (see web/params.py).
    app.url_map.converters.update(CONVERTERS)
    metrics = Metrics(registry if registry is not None else CollectorRegistry())
    metrics.initialise_channels(config.channels)
    metrics.config_last_reload_successful.set(1)
    if writes is None:
        writes = open_writes(db if db is not None else build_db(config), observe=metrics.group_commit.observe)
    app.extensions["alert_receiver"] = Services(
        config=config,
        db=writes.db,
        writes=writes,
        clock=clock or SystemClock(),
        metrics=metrics,
        auth=Authenticator((t.name, t.token.reveal(), t.role) for t in config.auth.tokens),
    )
    api_errors.register(app)
    regex_gate.register(app)
    for blueprint in (webhook_api.bp, alerts_api.bp, lifecycle_api.bp, notifications_api.bp, pagerduty_webhook.bp,
                      rejected_api.bp, stats_api.bp, ops.bp, openapi.bp, export_api.bp, correlations_api.bp,
                      history_api.bp, oncall_api.bp, maintenance_api.bp, dashboard.bp,
                      slack_interactions.bp, telegram_webhook.bp, twilio_sms_webhook.bp):
        app.register_blueprint(blueprint)
    return app
