"""The communications officer's path on a real Prefect server, end to end.

A `prefect server` and a process worker run as subprocesses, the project is deployed with
`prefect deploy --all` from `prefect.yaml` exactly as the README tells a user to, and an event
record is handed to the `prepare` deployment as its typed parameter (what the UI form sends).
The worker runs the flow from the checkout with the tiny genuine Argos models; the drafts it
stores are then read back from the SQLite store.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import EVENTS, ROOT

pytestmark = pytest.mark.slow

# The `prefect` script of this interpreter's environment (the one pressflow is installed in),
# else the one on PATH (e.g. a `pip install --user`).
_BESIDE_PYTHON = Path(sys.executable).with_name("prefect")
PREFECT = str(_BESIDE_PYTHON) if _BESIDE_PYTHON.exists() else shutil.which("prefect") or "prefect"
EXAMPLE = EVENTS / "2021-06-04-global-health-summit.yaml"
SERVER_START_TIMEOUT = 180  # first start runs every database migration
RUN_TIMEOUT = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc), found before killing so orphans are not missed.

    The worker starts each flow run in a process group of its own, so killing the worker's
    group alone could leave a flow run behind.
    """
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


class Service:
    """A long-running subprocess in its own process group, with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name, self.log = name, log_dir / f"{name}.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(args, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        pids = descendants(self.process.pid) if self.process.poll() is None else []
        for pgid in {self.process.pid, *(_pgid(p) for p in pids)} - {None, os.getpgid(0)}:
            _signal_group(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        for pid in pids:  # whatever ignored SIGTERM
            _signal(pid, signal.SIGKILL)
        self._log_file.close()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def prefect_cli(*args: str, env: dict[str, str]) -> str:
    """Run a `prefect` command as a user would, with no terminal to prompt on."""
    result = subprocess.run([PREFECT, "--no-prompt", *args], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"prefect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def wait_healthy(server: Service, api_url: str) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        server.check_alive()
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"Prefect server not healthy after {SERVER_START_TIMEOUT}s:\n{server.output()}")


@pytest.fixture
def services(tmp_path):
    """Started services, stopped (with their logs printed, shown by pytest on failure) at the end."""
    started: list[Service] = []
    yield started
    for service in reversed(started):
        service.stop()
    for service in started:
        print(f"----- {service.name} log -----\n{service.output()[-20000:]}")


@pytest.fixture
def server(tmp_path, services) -> dict[str, str]:
    """A Prefect server of its own; returns the environment every client of it uses."""
    api_url = f"http://127.0.0.1:{free_port()}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api_url,
        "PREFECT_CLI_PROMPT": "false",
        "PREFECT_UI_ENABLED": "false",
        # Only the runs this test creates: no scheduled publish runs competing for the worker.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        # `{{ $PWD }}` in prefect.yaml is the directory `prefect deploy` runs in.
        "PWD": str(ROOT),
    }
    port = api_url.rsplit(":", 1)[1].split("/")[0]
    server = Service("server", [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", port], env, tmp_path)
    services.append(server)
    wait_healthy(server, api_url)
    return env


def test_officer_prepares_an_event_through_the_deployment(tmp_path, server, services, argos_models):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pressflow import store
    from pressflow.records import validate_record

    out = tmp_path / "out"
    prefect_cli("work-pool", "create", "pressflow", "--type", "process", env=server)
    deployed = prefect_cli("deploy", "--all", env=server)
    assert "pressflow-prepare/prepare" in deployed, deployed

    worker_env = {**server, "PRESSFLOW_OUT": str(out), "PREFECT_WORKER_QUERY_SECONDS": "1"}
    worker = Service("worker", [PREFECT, "worker", "start", "--pool", "pressflow", "--type", "process"],
                     worker_env, tmp_path)
    services.append(worker)

    record = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    record["languages"] = ["es"]
    slug = validate_record(record).slug

    with temporary_settings({PREFECT_API_URL: server["PREFECT_API_URL"]}):
        with get_client(sync_client=True) as client:
            deployments = {d.name: d for d in client.read_deployments()}
        assert set(deployments) == {"prepare", "publish", "publish-scheduled"}
        form = deployments["prepare"].parameter_openapi_schema
        assert {"title", "date", "summary", "location", "quotes"} <= set(form["definitions"]["Event"]["properties"])
        schedule = deployments["publish-scheduled"].schedules[0].schedule
        assert schedule.interval.total_seconds() == 300

        # What the UI form submits: the record as JSON, dates as strings.
        run = run_deployment("pressflow-prepare/prepare", parameters={"events": [record]},
                             timeout=RUN_TIMEOUT, poll_interval=1, as_subflow=False)
    worker.check_alive()
    assert run.state is not None and run.state.is_completed(), f"flow run ended {run.state!r}"

    with store.session_scope(f"sqlite:///{out / 'state' / 'pressflow.db'}") as session:
        drafts = [(d.lang, d.channel, d.status) for d in store.list_drafts(session, slug=slug)]
    english = sorted(c for lang, c, s in drafts if lang == "en" and s == store.APPROVED)
    spanish = sorted(c for lang, c, s in drafts if lang == "es" and s == store.PENDING)
    assert len(english) == 5 and "release" in english, drafts
    assert spanish == english, drafts
    assert {lang for lang, _, _ in drafts} == {"en", "es"}, drafts
