"""The ceiling of this stack: a bare Flask app that only parses the webhook's JSON and answers 200, served by
gunicorn with exactly the settings `alert-receiver serve` uses (receiver.gunicorn_conf.settings: sync workers,
same worker count, timeouts, backlog, logging).

    python3 bench/bare_app.py --host 127.0.0.1 --port 9199 [--workers N]

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
    args = parser.parse_args()
    GunicornServer(create_app, settings(args.host, args.port, workers=args.workers)).run()


if __name__ == "__main__":
    main()
