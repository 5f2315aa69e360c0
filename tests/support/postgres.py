"""A real PostgreSQL server for the tests: initdb into a temp dir, listen on a free loopback port, stop at exit.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user Debian's package creates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

from .binaries import require_binary


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self):
        self.initdb = require_binary("initdb")
        self.pg_ctl = require_binary("pg_ctl")
        self.root = tempfile.mkdtemp(prefix="alert-receiver-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        self.user = "receiver"
        self._run_as = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and no `postgres` user: apt-get install postgresql") from None
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]

    def _cmd(self, *args: str) -> list[str]:
        return (self._run_as or []) + list(args)

    def start(self) -> "PostgresServer":
        subprocess.run(self._cmd(self.initdb, "-D", self.data, "-A", "trust", "-U", self.user, "-E", "UTF8",
                                 "--no-sync", "--locale=C"), check=True, capture_output=True)
        self.start_again()
        return self

    def start_again(self) -> None:
        """Start the (initialised) server; also after `stop()`, for outage tests."""
        # Durability off: these are throw-away test databases (the benchmarks run durable).
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        subprocess.run(self._cmd(self.pg_ctl, "-D", self.data, "-o", opts, "-l", os.path.join(self.root, "log"),
                                 "-w", "-t", "60", "start"), check=True, capture_output=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}"')
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def database_for(self, tmp_path, prefix: str) -> str:
        """A new, empty database for one test, named after its tmp_path (unique within the session)."""
        return self.create_database(f"{prefix}_{tmp_path.name[-20:]}".replace("-", "_"))

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(self._cmd(self.pg_ctl, "-D", self.data, "-m", mode, "-w", "stop"), capture_output=True)

    def cleanup(self) -> None:
        self.stop("immediate")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                shutil.rmtree(self.root)
                return
            except OSError:
                time.sleep(0.1)
