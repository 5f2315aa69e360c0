"""WSGI entry point for gunicorn: `gunicorn receiver.wsgi:app` (config from RECEIVER_CONFIG and the env)."""

from .app import create_app

app = create_app()
