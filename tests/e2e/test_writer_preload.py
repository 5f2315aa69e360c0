"""The writer imports the modules of the jobs it will run before it says it is ready: unpickling the first webhook's
job imported the engine's ingest modules, and the first webhook after start-up waited 0.3-0.4 s for them."""

from __future__ import annotations

import importlib
import subprocess
import sys

from receiver.cli import WRITER_JOB_MODULES
from receiver.config import Config
from receiver.writer.main import writer_argv


def test_serve_has_its_writer_preload_the_module_of_every_job_it_sends(tmp_path):
    config = Config.model_validate({"database": {"url": f"sqlite:///{tmp_path}/receiver.db"}})
    argv = writer_argv(config, preload=WRITER_JOB_MODULES)
    assert [argv[k + 1] for k, arg in enumerate(argv) if arg == "--preload"] == list(WRITER_JOB_MODULES)
    for name in WRITER_JOB_MODULES:  # each is a module that defines a job: a class with run(conn)
        module = importlib.import_module(name)
        assert any(isinstance(obj, type) and obj.__module__ == name and callable(getattr(obj, "run", None))
                   for obj in vars(module).values()), name


def test_the_writer_imports_what_it_preloads_before_it_is_ready(tmp_path):
    config = Config.model_validate({"database": {"url": f"sqlite:///{tmp_path}/receiver.db"}})
    argv = writer_argv(config, preload=("receiver.no_such_module",))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "receiver.no_such_module" in proc.stderr
    assert "writer ready" not in proc.stderr
    assert argv[0] == sys.executable
