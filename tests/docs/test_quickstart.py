"""The README's quick start, verbatim (install aside), against a real `serve`: the run command in an empty folder,
then the "try it" commands in bash from the repository root. And the README's two set-up commands are the ones
the project runs: `.ci/run` calls the test command and nothing else."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest
import requests

from ..support.binaries import require_binary
from ..support.fixtures import ROOT
from ..support.postgres import free_port
from ..support.process import wait_until

pytestmark = pytest.mark.e2e
README = (ROOT / "README.md").read_text()


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def block_with(needle: str) -> str:
    found = [b for b in shell_blocks(README) if needle in b]
    assert found, f"the README has no ```sh block with {needle!r}"
    return found[0]


def run_command() -> str:
    return block_with("alert-receiver serve").strip()


def readme_test_command() -> str:
    return block_with("tests/run.sh").strip()


def test_the_readme_has_exactly_two_set_up_commands_and_ci_runs_the_second():
    quick_start = README.split("## Quick start", 1)[1]
    assert quick_start.index(run_command()) < quick_start.index(block_with("curl"))  # "try it" follows the run
    assert run_command().count("\n") == 0 and readme_test_command() == "tests/run.sh"
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert ci == [f"exec {readme_test_command()}"], ci


def test_the_run_command_and_try_it_work_verbatim(tmp_path):
    require_binary("curl")
    install, _, serve = run_command().rpartition("&& ")
    assert "pip install ." in install and serve.startswith(".venv/bin/alert-receiver serve")
    port = free_port()
    # The README's port is the default; this test takes a free one the 12-factor way, leaving the command as it is.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECEIVER_", "PROMETHEUS_MULTIPROC_DIR"))}
    env["RECEIVER_PORT"] = str(port)
    bin_dir = pathlib.Path(sys.executable).parent  # this suite's own .venv/bin (or wherever it was installed)
    argv = [str(bin_dir / "alert-receiver"), *shlex.split(serve)[1:]]
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).ok, timeout=60,
                   what="the quick start's serve to be ready")
        try_it = block_with("curl").replace("localhost:9095", f"localhost:{port}")
        shell_env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
        done = subprocess.run(["bash", "-eo", "pipefail", "-c", try_it], cwd=ROOT, env=shell_env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        answer, listing = done.stdout.split("\n", 1)
        answer = json.loads(answer)
        assert (answer["status"], answer["new"], answer.get("duplicate", 0)) == ("ok", 5, 0), answer
        alerts = json.loads(listing)["alerts"]
        assert len(alerts) == 5 and {a["alertname"] for a in alerts} == {"InstanceDown"}, alerts
        assert (tmp_path / "alert-receiver.db").exists()  # the embedded default, in the folder it was started in
        # The first terminal logs the page (the README says so), and by then every process has made its files
        wait_until(lambda: "[L1 FIRING] InstanceDown (5 alerts)" in (tmp_path / "serve.log").read_text(),
                   timeout=30, what="the page in serve's log")
        created = {p.name for p in tmp_path.iterdir() if p.name != "serve.log"}
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert server.returncode == 0, (tmp_path / "serve.log").read_text()[-3000:]
    # Started in a clone, the same files land in the repository: .gitignore must cover every one of them.
    created = sorted(created | {p.name for p in tmp_path.iterdir() if p.name != "serve.log"})
    if (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", *created],
                                 capture_output=True, text=True).stdout.split()
        assert sorted(ignored) == created, f"not in .gitignore: {set(created) - set(ignored)}"
