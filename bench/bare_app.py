"""The ceiling of this stack: a bare Flask app that only parses the webhook's JSON and answers 200, served by
gunicorn with exactly the settings `alert-receiver serve` uses (receiver.gunicorn_conf.settings: gthread workers,
same worker and thread count, timeouts, backlog, logging) or, with --sync, by classic sync workers (2 × CPUs + 1),
the fastest way gunicorn serves this app. bench/ingest.py measures both and compares against the faster.

    python3 bench/bare_app.py --host 127.0.0.1 --port 9199 [--workers N] [--sync]

Whatever the receiver does beyond this (auth, pydantic validation, SQL, commit) is the gap between the two.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from flask import Flask, request


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from receiver.gunicorn_conf import settings  # noqa: E402
from receiver.server import GunicornServer  # noqa: E402


def create_app() -> Flask:
    app = Flask("bare")

    @app.post("/webhook")
    @app.post("/webhook/<name>")
    def webhook(name: str = ""):
        payload = json.loads(request.get_data())
        return {"status": "ok", "alerts": len(payload.get("alerts", ()))}

    @app.get("/-/ready")
    def ready():
        return {"status": "ready"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9199)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--sync", action="store_true", help="sync workers (2 × CPUs + 1 unless --workers)")
    args = parser.parse_args()
    options = settings(args.host, args.port, workers=args.workers)
    if args.sync:
        for key in ("threads", "worker_connections"):
            options.pop(key)
        options.update(worker_class="sync", workers=args.workers or 2 * (os.cpu_count() or 1) + 1, keepalive=2)
    GunicornServer(create_app, options).run()


if __name__ == "__main__":
    main()
