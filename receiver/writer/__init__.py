"""The SQLite writer: one process that commits the writes of every gunicorn worker and of the engine together
(group commit), many jobs per fsync, and answers each only after COMMIT.

- wire.py: where its socket lives, and the frames on it.
- client.py: the client each process uses, and `GroupCommitWrites`, the write port (store/write_port.py) on a
  SQLite file; `open_writes` chooses the port once at start-up.
- group_commit.py: the writer's loop (batches, savepoints, answers).
- main.py: the process (`python -m receiver.sqlite_writer`), its metrics and the command `serve` runs.
"""
