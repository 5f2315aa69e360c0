"""Persistence: SQLAlchemy 2 models, engine set-up per dialect, set-based queries, Alembic migrations."""
