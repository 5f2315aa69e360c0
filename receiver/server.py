"""gunicorn, run in-process: the arbiter is this process, so SIGTERM reaches it and shuts down gracefully.

On SIGHUP (or POST /-/reload, which signals this process) the arbiter re-reads receiver.yml: a valid file is used
by the new workers gunicorn starts and forwarded to the engine child; an invalid one keeps the running config.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import signal
import socket
from typing import Callable

from gunicorn.app.base import BaseApplication
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Config, ConfigError

log = logging.getLogger("receiver.server")


class GunicornServer(BaseApplication):
    """gunicorn with settings from a dict (receiver.gunicorn_conf.settings) and an app built in each worker."""

    def __init__(self, load_app: Callable[[], object], options: dict, *, on_reload: Callable[[], None] | None = None):
        self._load_app = load_app
        self._options = options
        self._on_reload = on_reload
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if value is not None or key == "accesslog":
                self.cfg.set(key, value)

    def reload(self):
        super().reload()
        if self._on_reload is not None:
            self._on_reload()

    def load(self):
        # Runs in each worker after fork: every worker builds its own app and database pool.
        return self._load_app()


def check_can_listen(host: str, port: int) -> None:
    """Bind and listen on (host, port) the way gunicorn will, then let go: OSError when another process holds it.

    SO_REUSEADDR as gunicorn sets it, so a port left in TIME_WAIT by a quick restart is never refused."""
    family, socktype, proto, _, address = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
    with socket.socket(family, socktype, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
        probe.listen(1)


def listen_error(host: str, port: int, exc: OSError) -> str:
    """One line that says which address, why, and what to do."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot listen on {where}: the address is already in use (another alert-receiver or another "
                "program holds it). Fix: stop that process, or choose another port with --port or RECEIVER_PORT.")
    return f"cannot listen on {where}: {exc.strerror or exc}. Fix: choose another --host/--port."


def parse_proxies(allow_ips: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    """`10.0.0.5,10.1.0.0/16` → networks; `*` → None (any peer). ValueError names an entry that is neither."""
    entries = [e.strip() for e in allow_ips.split(",") if e.strip()]
    if "*" in entries:
        return None
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return networks


class TrustedProxyFix:
    """The client address and scheme a reverse proxy reports (X-Forwarded-For, X-Forwarded-Proto), believed only
    when the request comes from one of the trusted proxies; anyone else could write those headers themselves.
    One hop: the proxy appends the address it saw, and only that last entry is taken."""

    def __init__(self, app, allow_ips: str):
        self.app = app
        self.networks = parse_proxies(allow_ips)
        self.fixed = ProxyFix(app, x_for=1, x_proto=1)

    def trusts(self, peer: str) -> bool:
        if self.networks is None:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def __call__(self, environ, start_response):
        if self.trusts(environ.get("REMOTE_ADDR", "")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


class ReloadableConfig:
    """The arbiter's current receiver config: re-read on reload; a bad file keeps the last good one."""

    def __init__(self, config: Config, loader: Callable[[], Config]):
        self.current = config
        self.loader = loader
        self.last_reload_ok = True

    def reload(self) -> bool:
        try:
            self.current = self.loader()
        except ConfigError as exc:
            self.last_reload_ok = False
            log.error("reload failed; keeping the running config", extra={"error": str(exc)})
            return False
        self.last_reload_ok = True
        log.info("config reloaded", extra={"source": str(self.current.source or "defaults")})
        return True


def receiver_server(config: Config, options: dict, *, loader: Callable[[], Config] | None = None,
                    supervisor=None) -> GunicornServer:
    holder = ReloadableConfig(config, loader or (lambda: config))

    def load():
        from .app import create_app

        app = create_app(holder.current)
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, options.get("forwarded_allow_ips") or "127.0.0.1,::1")
        app.extensions["alert_receiver"].metrics.config_last_reload_successful.set(1 if holder.last_reload_ok else 0)
        return app

    def on_reload():
        holder.reload()
        if supervisor is not None:
            supervisor.signal(signal.SIGHUP)  # the engine re-reads the file itself

    if supervisor is not None:
        options = {**options, "when_ready": supervisor.shutdown_hook()}
    return GunicornServer(load, options, on_reload=on_reload)
