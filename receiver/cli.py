"""The `alert-receiver` command. Heavy modules are imported inside commands: `serve` must set the shared metrics
directory before prometheus_client is first imported."""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import sys
import tempfile

import click

from . import cli_analytics, cli_oncall, cli_stats, gc_policy
from .cli_config import load as _load

log = logging.getLogger("receiver.cli")
# The modules of the jobs serve's workers and engine send its writer (webhooks, the outbox, chat threads, pages).
WRITER_JOB_MODULES = ("receiver.engine.ingest_job", "receiver.store.outbox", "receiver.store.chat_threads",
                      "receiver.store.unpaged")


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-format", type=click.Choice(["logfmt", "json"]), default=lambda: os.environ.get("RECEIVER_LOG_FORMAT", "logfmt"),
              show_default="logfmt (RECEIVER_LOG_FORMAT)")
@click.option("--log-level", default=lambda: os.environ.get("RECEIVER_LOG_LEVEL", "INFO"), show_default="INFO")
@click.version_option(package_name="alert-receiver")
def main(log_format: str, log_level: str) -> None:
    """alert-receiver: Prometheus Alertmanager webhook receiver with L3 → L2 → L1 escalation."""
    from . import logs

    logs.configure(log_format, log_level)


@main.command()
@click.option("-c", "--config", "config_path", envvar="RECEIVER_CONFIG", help="receiver.yml (default: RECEIVER_CONFIG, else built-in defaults)")
@click.option("--host", envvar="RECEIVER_HOST", help="address to bind [server.host, 127.0.0.1]")
@click.option("--port", envvar="RECEIVER_PORT", type=int, help="port [server.port, 9095]")
@click.option("--workers", envvar="RECEIVER_WORKERS", type=click.IntRange(min=1), default=None,
              help="gunicorn worker processes [CPUs, at least 2]")
@click.option("--threads", envvar="RECEIVER_THREADS", type=click.IntRange(min=1), default=None,
              help="request threads per worker [8]")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="migrate the database before serving")
@click.option("--engine/--no-engine", default=True, show_default=True,
              help="run one escalation engine beside the web workers (--no-engine: run `alert-receiver worker` elsewhere)")
@click.option("--forwarded-allow-ips", envvar="FORWARDED_ALLOW_IPS", default="127.0.0.1,::1", show_default=True,
              callback=lambda ctx, param, value: _check_proxies(value),
              help="the TLS-terminating reverse proxies (IPs or CIDR networks, comma-separated; * trusts any peer) "
                   "whose X-Forwarded-For and X-Forwarded-Proto are believed; from anyone else they are ignored")
@click.pass_context
def serve(ctx: click.Context, config_path: str | None, host: str | None, port: int | None, workers: int | None,
          threads: int | None, migrate: bool, engine: bool, forwarded_allow_ips: str) -> None:
    """Run the receiver under gunicorn (threaded workers) and one engine; migrates the database first."""
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    own_metrics_dir = not metrics_dir
    if own_metrics_dir:
        metrics_dir = tempfile.mkdtemp(prefix="alert-receiver-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    owner = os.getpid()
    try:
        _serve(config_path, host, port, workers, migrate, engine, ctx.parent.params if ctx.parent else {},
               forwarded_allow_ips, threads=threads)
    finally:
        # gunicorn workers are forked inside _serve and leave by SystemExit through this very frame: only the
        # arbiter may remove the directory every process shares.
        if own_metrics_dir and os.getpid() == owner:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _check_proxies(value: str) -> str:
    from .server import parse_proxies

    try:
        parse_proxies(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; write IP addresses or networks such as 10.0.0.5,10.1.0.0/16, or *") from None
    return value


def _serve(config_path, host, port, workers, migrate, engine, global_params, forwarded_allow_ips="127.0.0.1,::1", *,
           threads: int | None = None) -> None:
    config = _load(config_path)
    host = host or config.server.host
    port = port or config.server.port
    tokens = config.auth.tokens
    if config.source is None:
        from .logs import redact

        log.warning("NO CONFIG FILE: running on built-in defaults (database %s, every level to the log channel, "
                    "no auth). Set RECEIVER_CONFIG=receiver.yml to configure.", redact(config.database.url))
    if not tokens:
        if not is_loopback(host) and config.auth.required is not False:
            raise click.ClickException(
                f"refusing to listen on {host} without tokens: anyone could post alerts and read history. "
                "Fix: add auth.tokens to receiver.yml (role webhook for Alertmanager), or set auth.required: false "
                "to run open on purpose, or bind 127.0.0.1.")
        log.warning("auth: no tokens configured, the API is open to anyone who can reach %s:%s", host, port)
    from .server import check_can_listen, listen_error

    try:  # before any migration or child: a second serve on a taken port must say so at once, not after retries
        check_can_listen(host, port)
    except OSError as exc:
        raise click.ClickException(listen_error(host, port, exc)) from None
    from .app import build_db
    from .store import migrate as migrations

    if migrate:
        db = build_db(config)
        migrations.upgrade(db)
        db.dispose()
    from .gunicorn_conf import settings
    from .server import receiver_server
    from .supervisor import Supervisor

    supervisor = Supervisor()
    from .writer.main import writer_argv
    from .writer.wire import WRITER_SOCKET_ENV

    # One writer process commits the workers' snapshots (and the engine's claims and outcomes) in groups: one
    # fsync for several webhooks on SQLite, one transaction and one statement of each kind on PostgreSQL.
    argv = writer_argv(config, log_format=global_params.get("log_format", "logfmt"),
                       log_level=global_params.get("log_level", "INFO"), preload=WRITER_JOB_MODULES)
    if argv is not None:
        if "--socket" in argv:  # PostgreSQL: this replica's socket, for the workers and the engine to find
            os.environ[WRITER_SOCKET_ENV] = argv[argv.index("--socket") + 1]
        supervisor.add("writer", argv)
    if engine:
        supervisor.add("engine", [sys.executable, "-m", "receiver",
                                  "--log-format", global_params.get("log_format", "logfmt"),
                                  "--log-level", global_params.get("log_level", "INFO"),
                                  "worker", *(["-c", config_path] if config_path else [])])
    log.info("serving", extra={"host": host, "port": port, "config": str(config.source or "defaults"),
                               "engine": engine})
    supervisor.start()
    try:
        receiver_server(config, settings(host, port, workers=workers, threads=threads, forwarded_allow_ips=forwarded_allow_ips),
                        loader=lambda: _load_config(config_path),
                        supervisor=supervisor).run()
    finally:
        supervisor.stop()


def _load_config(config_path: str | None):
    from .config import load_config

    return load_config(config_path)


@main.command()
@click.option("-c", "--config", "config_path", envvar="RECEIVER_CONFIG", help="receiver.yml")
@click.option("--metrics-port", type=int, default=None, envvar="RECEIVER_WORKER_METRICS_PORT",
              help="serve this engine's /metrics on 127.0.0.1:PORT (serve's engine shares serve's /metrics instead)")
def worker(config_path: str | None, metrics_port: int | None) -> None:
    """Run the escalation engine alone: ticks, escalations, repeats and delivery (scale-out, or beside serve)."""
    import signal
    import threading

    from .lifeline import die_with_serve

    serve_pid = die_with_serve()  # serve's engine: SIGTERM when serve dies, even by SIGKILL
    config = _load(config_path)
    from prometheus_client import CollectorRegistry, start_http_server

    from .app import build_db
    from .engine.runner import EngineRunner
    from .metrics import Metrics, check_multiprocess_ready
    from .writer.client import open_writes
    from .store import migrate as migrations
    from .wakeup import Wakeup

    check_multiprocess_ready()
    db = build_db(config)
    current = _wait_for_schema_revision(db)
    if current != migrations.head_revision():
        raise click.ClickException(f"the database schema is at {current or 'none'}, "
                                   f"not {migrations.head_revision()}: run `alert-receiver migrate` first")
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.config_last_reload_successful.set(1)
    if metrics_port:
        start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    wake = threading.Event()
    wanted = {"stop": False, "reload": False}
    stopped = Wakeup()  # wakes a stand-by (an Event's timed wait never ends under libfaketime)

    def on_signal(signum, _frame):
        wanted["reload" if signum == signal.SIGHUP else "stop"] = True
        wake.set()
        if signum != signal.SIGHUP:
            stopped.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)
    if serve_pid is not None and not _outwait_stale_engine(config, stopped):
        db.dispose()
        return
    writes = open_writes(db, observe=metrics.group_commit.observe)  # claims and outcomes ride in the writer's group commits
    runner = EngineRunner(config, writes, metrics=metrics, load_config=lambda: _load_config(config_path))
    gc_policy.settle_after_startup()  # what start-up built is never garbage: collections need not walk it
    runner.start()
    while not wanted["stop"]:
        wake.wait()
        wake.clear()
        if wanted["reload"] and not wanted["stop"]:
            wanted["reload"] = False
            runner.reload()
    log.info("engine stopping")
    runner.join(timeout=30)
    writes.close()
    db.dispose()


def _outwait_stale_engine(config, stopped) -> bool:
    """serve's engine on SQLite: take the database's engine lock, standing by while an earlier serve's engine still
    holds it (lifeline.py). False when asked to stop meanwhile. The lock is kept until this process ends."""
    from .lifeline import engine_lock_path, hold_engine_lock

    path = engine_lock_path(config.database.url)
    return path is None or hold_engine_lock(path, stopped.wait) is not None


def _wait_for_schema_revision(db):
    """The database's schema revision, once the database answers. An engine started during an outage (serve
    restarts its engine whenever it dies) waits for it like a running engine does, rather than exiting at once."""
    import time

    from .engine.runner import UNAVAILABLE_PAUSE
    from .store import migrate as migrations
    from .store.db import is_unavailable

    while True:
        try:
            return migrations.current_revision(db)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("database unavailable; the engine waits for it before starting",
                        extra={"error": type(exc).__name__})
            time.sleep(UNAVAILABLE_PAUSE)


@main.command()
@click.option("-c", "--config", "config_path", envvar="RECEIVER_CONFIG")
def migrate(config_path: str | None) -> None:
    """Bring the database schema to the latest version (Alembic)."""
    from .app import build_db
    from .logs import redact
    from .store import migrate as migrations

    config = _load(config_path)
    db = build_db(config)
    before = migrations.current_revision(db)
    migrations.upgrade(db)
    after = migrations.current_revision(db)
    click.echo(f"{redact(config.database.url)}: {before or 'empty'} → {after}")


@main.command("check-config")
@click.argument("path", required=False, envvar="RECEIVER_CONFIG")
def check_config(path: str | None) -> None:
    """Validate receiver.yml; exits 1 naming file, key and fix for every error."""
    from .config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    from .config.chat_checks import chat_warnings

    routes = config.resolved_routes()
    click.echo(f"{path or 'built-in defaults'}: OK — {len(config.channels)} channel(s), {len(routes)} route(s), "
               f"{len(config.auth.tokens)} token(s)")
    for warning in chat_warnings(config):
        click.echo(f"warning: {warning}", err=True)


@main.group()
def routes() -> None:
    """Ask the receiver's routing: who is told, and when, for a set of labels."""


@routes.command("test")
@click.option("-c", "--config", "config_path", envvar="RECEIVER_CONFIG")
@click.option("--labels", "labels_text", required=True,
              help='Alertmanager matcher syntax, equality only: \'severity="warning",team="db"\'')
@click.option("--at", "at_text", metavar="TIME", help="RFC 3339 with a zone, or Unix seconds (default: now)")
def routes_test(config_path: str | None, labels_text: str, at_text: str | None = None) -> None:
    """Print the matching route(s), the start level and the escalation timeline for LABELS."""
    from .config.sla_targets import describe as describe_sla
    from .engine.timeline import escalation_timeline
    from .fields import format_duration
    from .matchers import MatcherError, parse_matchers

    try:
        matchers = parse_matchers(labels_text)
    except MatcherError as exc:
        raise click.BadParameter(str(exc), param_hint="--labels") from None
    if any(m.op != "=" for m in matchers):
        raise click.BadParameter("labels are name=\"value\" pairs (no !=, =~, !~)", param_hint="--labels")
    labels = {m.name: m.value for m in matchers}
    config = _load(config_path)
    timeline = escalation_timeline(config, labels)
    click.echo(f"routes: {', '.join(timeline.routes)}")
    note = "" if timeline.severity_known else f" (severity {labels.get('severity')!r} is not mapped: default level)"
    click.echo(f"level: {timeline.start_level.value}{note}")
    if not timeline.notify:
        click.echo("escalate: false — never escalated or notified")
        return
    for step in timeline.steps:
        click.echo(str(step))
    if timeline.repeat_every:
        click.echo(f"then every {format_duration(timeline.repeat_every)} at L1 until acknowledged or resolved")
    first = next(r for r in config.resolved_routes() if r.name == timeline.routes[0])
    click.echo(f"sla: {describe_sla(first.sla)}")
    from .cli_mutes import mute_lines, parse_at
    from .cli_oncall import paged_lines

    at = parse_at(at_text)
    for line in paged_lines(config, labels, at):  # who is on call then, overrides from the db included
        click.echo(line)
    for line in mute_lines(config, labels, at):  # time intervals; maintenance windows in the db
        click.echo(line)


@main.group("templates")
def templates_group() -> None:
    """Check the message templates (built-in, and the overrides in templates.dir)."""


@templates_group.command("check")
@click.option("-c", "--config", "config_path", envvar="RECEIVER_CONFIG")
def templates_check(config_path: str | None) -> None:
    """Render every template for every kind and level against sample messages; exits 1 naming each problem."""
    from .render import check_templates

    config = _load(config_path)
    override_dir = config.templates.dir
    problems = check_templates(override_dir)
    where = f"templates (overrides in {override_dir})" if override_dir else "built-in templates"
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        click.echo(f"{where}: {len(problems)} problem(s)", err=True)
        sys.exit(1)
    click.echo(f"{where}: OK")


cli_stats.register(main)
cli_analytics.register(main)
cli_oncall.register(main)


if __name__ == "__main__":
    main()
