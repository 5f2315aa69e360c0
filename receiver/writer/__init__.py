"""The writer process: one per replica that commits the writes of every gunicorn worker and of the engine
together (group commit), many jobs per fsync and one statement of each kind, and answers each only after COMMIT.
SQLite (one per database file) and PostgreSQL (one per `serve`).

- wire.py: where its socket lives, and the frames on it.
- client.py: the client each process uses, and `GroupCommitWrites`, the write port (store/write_port.py) on a
  SQLite file or with PostgreSQL under serve; `open_writes` chooses the port once at start-up.
- group_commit.py: the writer's loop (batches, savepoints, answers).
- main.py: the process (`python -m receiver.writer`), its metrics and the command `serve` runs.
"""
