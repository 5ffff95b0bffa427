"""A PostgreSQL server that stops in the middle of `pressflow publish`: the command says so in
one line, and no library's log line ("error ignored terminating <psycopg.Pipeline [BAD]>")
stands beside it. A throwaway cluster of the test's own (stopping the shared test server would
take it from every other test), stopped for real, at the moment a pipeline of statements is open."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """initdb and pg_ctl of the installed PostgreSQL, as .ci/run starts its server (as the
    postgres user when run as root)."""

    def __init__(self, root: Path):
        self.bin = Path(PG_BINS[-1])
        self.root, self.data, self.port = root, root / "data", free_port()
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(root, "postgres")
        self.pg(["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        self.start()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def pg(self, args: list[str]) -> None:
        subprocess.run([*self.as_owner, str(self.bin / args[0]), *args[1:]], check=True, capture_output=True,
                       timeout=120)

    def start(self) -> None:
        self.pg(["pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o",
                 f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}", "start"])

    def stop_command(self) -> list[str]:
        return [*self.as_owner, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]

    def stop(self) -> None:
        subprocess.run(self.stop_command(), capture_output=True, timeout=120)


@pytest.fixture
def cluster():
    if not PG_BINS:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail("no PostgreSQL binaries (.ci/run installs postgresql)", pytrace=False)
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="pressflow-pg-"))  # as .ci/run's: the postgres user can reach it
    try:
        server = Cluster(root)
        yield server
        server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# Runs `pressflow publish` with the server stopped right after psycopg opens a pipeline (the way
# it sends an executemany), so the statements in it meet a server that is gone.
STOPPING_PUBLISH = textwrap.dedent("""
    import json, subprocess, sys
    import psycopg

    stop = json.loads(sys.argv.pop(1))
    enter = psycopg.Pipeline.__enter__

    def enter_then_stop(self):
        pipeline = enter(self)
        if stop:
            subprocess.run(stop, check=True, capture_output=True)
            stop.clear()
        return pipeline

    psycopg.Pipeline.__enter__ = enter_then_stop
    from pressflow.cli import main
    sys.argv[0] = "pressflow"
    main()
""")


def test_a_server_stopped_mid_publish_is_one_line(cluster, tmp_path):
    import json

    env = {**os.environ, "PRESSFLOW_DATABASE_URL": cluster.url, "PRESSFLOW_OUT": str(tmp_path / "out")}
    records = tmp_path / "records.yaml"
    records.write_text("".join(f"- {{id: forum-{i}, title: Forum {i}, date: 2021-09-0{i}, summary: Delegates met., "
                               f"languages: []}}\n" for i in (1, 2, 3)))

    def pressflow(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pressflow.cli", *args], env=env, capture_output=True, text=True,
                              timeout=300, stdin=subprocess.DEVNULL)

    assert pressflow("run", str(records), "--auto-approve").returncode == 0  # prepared, approved, published
    records.write_text(records.read_text().replace("Delegates met.", "Delegates met again."))
    assert pressflow("prepare", str(records)).returncode == 0  # the next publish updates what it published
    assert pressflow("review", "approve", "--all", "--reviewer", "test").returncode == 0

    done = subprocess.run([sys.executable, "-c", STOPPING_PUBLISH, json.dumps(cluster.stop_command()), "publish"],
                          env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: the draft store refused the change: OperationalError: consuming input failed: server closed the "
        "connection unexpectedly (run with --debug for details)"], done.stderr

    cluster.start()
    assert "error ignored terminating" in subprocess.run(
        [sys.executable, "-c", STOPPING_PUBLISH, json.dumps(cluster.stop_command()), "--debug", "publish"],
        env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL).stderr  # --debug shows all
