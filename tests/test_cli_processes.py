"""A command a person types starts nothing that outlives it, even killed with SIGKILL.

Each command runs as `pressflow` does, in a session of its own (`start_new_session`), with a
marker of its own in its environment, and is killed with SIGKILL at several points of its work;
afterwards no process of that session may be left, nor any process carrying the marker (which
every descendant inherits, even one that started a session of its own).

Without a Prefect server configured the commands run the driver in process; with one (the
session's test server) they run the flows against it. Neither starts a server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import EVENTS

pytestmark = pytest.mark.slow

KILL_AFTER = (0.3, 1.0, 2.0, 4.0)  # import, loading records, preparing, publishing (on a loaded 2-core machine)


def survivors(sid: int, marker: bytes) -> list[tuple[int, str]]:
    """Every live process in session `sid` or with `marker` in its environment (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (stat.parent / "environ").read_bytes()
        except OSError:
            continue
        state, session = fields[0], int(fields[3])
        if state != "Z" and (session == sid or marker in environ.split(b"\0")):
            found.append((int(stat.parent.name), cmdline))
    return found


def kill_and_look(args: list[str], env: dict[str, str], after: float) -> tuple[int | None, list]:
    marker = f"KILL_TEST_MARK={uuid.uuid4().hex}"
    env = {**env, marker.split("=")[0]: marker.split("=")[1]}
    process = subprocess.Popen([sys.executable, "-m", "pressflow.cli", *args], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(after)
    finished = process.poll()
    if finished is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    time.sleep(0.5)  # anything the command started has had time to notice, or not
    left = survivors(process.pid, marker.encode())
    for pid, _ in left:  # do not leave them to the other tests either
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return finished, left


def fresh_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PRESSFLOW_MAX_DECODING_LENGTH": "8", **extra}
    if "PREFECT_API_URL" not in extra:
        env.pop("PREFECT_API_URL", None)
    return env


@pytest.mark.parametrize("after", KILL_AFTER)
def test_a_killed_run_leaves_no_process_without_a_prefect_server(tmp_path, after):
    out = tmp_path / "out"
    finished, left = kill_and_look(["run", str(EVENTS), "--auto-approve", "--out", str(out)], fresh_env(tmp_path), after)
    assert left == [], f"killed after {after} s (exit {finished}), left behind: {left}"


def test_a_killed_command_leaves_no_process_with_a_prefect_server(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    env = fresh_env(tmp_path, PREFECT_API_URL=PREFECT_API_URL.value())
    out = tmp_path / "out"
    for args in (["run", str(EVENTS), "--auto-approve", "--out", str(out)], ["publish", "--local", "--out", str(out)]):
        for after in (1.0, 3.0, 6.0):
            finished, left = kill_and_look(args, env, after)
            assert left == [], f"pressflow {args[0]} killed after {after} s (exit {finished}), left behind: {left}"
