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

import feedparser
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


def without_pressflow_env(env: dict[str, str]) -> dict[str, str]:
    """A worker's environment with nothing of pressflow's: deployments' job variables bring it."""
    return {k: v for k, v in env.items() if not k.startswith("PRESSFLOW_") and k != "ARGOS_PACKAGES_DIR"}


SHIPPED_JOB_ENV = ('          PRESSFLOW_OUT: "{{ $PWD }}/outputs"\n'
                   '          ARGOS_PACKAGES_DIR: "{{ $HOME }}/.local/share/argos-translate/packages"\n')


def with_job_env(project: str, *, out: Path, models: Path) -> str:
    """prefect.yaml's text with its work pool's flow-run environment pointed at test folders."""
    assert SHIPPED_JOB_ENV in project
    return project.replace(SHIPPED_JOB_ENV, f'          PRESSFLOW_OUT: "{out}"\n          ARGOS_PACKAGES_DIR: "{models}"\n')


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
    """A Prefect server of its own, its scheduler off; returns the environment every client of it uses."""
    return start_server(tmp_path, services, scheduler=False)


def start_server(tmp_path: Path, services: list[Service], scheduler: bool) -> dict[str, str]:
    api_url = f"http://127.0.0.1:{free_port()}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api_url,
        "PREFECT_CLI_PROMPT": "false",
        "PREFECT_UI_ENABLED": "false",
        # Off unless a test is about schedules: no scheduled publish runs competing for the worker.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": str(scheduler).lower(),
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

    from pressflow.core import db
    from pressflow.drafts import store
    from pressflow.records import validate_record

    out = tmp_path / "out"
    prefect_cli("work-pool", "create", "pressflow", "--type", "process", env=server)
    deployed = prefect_cli("deploy", "--all", env=server)
    assert "pressflow-prepare/prepare" in deployed, deployed

    # Nothing pressflow needs is in the worker's own environment: the flow run gets its output
    # folder and the models' folder from the deployment's job variables alone.
    worker_env = {**without_pressflow_env(server), "PREFECT_WORKER_QUERY_SECONDS": "1"}
    worker = Service("worker", [PREFECT, "worker", "start", "--pool", "pressflow", "--type", "process"],
                     worker_env, tmp_path)
    services.append(worker)

    record = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    record["languages"] = ["es"]
    slug = validate_record(record).slug

    with temporary_settings({PREFECT_API_URL: server["PREFECT_API_URL"]}):
        with get_client(sync_client=True) as client:
            deployments = {d.name: d for d in client.read_deployments()}
        assert set(deployments) == {"prepare", "publish", "publish-scheduled", "deliver", "deliver-scheduled"}
        form = deployments["prepare"].parameter_openapi_schema
        assert {"title", "date", "summary", "location", "quotes"} <= set(form["definitions"]["Event"]["properties"])
        schedule = deployments["publish-scheduled"].schedules[0].schedule
        assert schedule.interval.total_seconds() == 3600  # a safety net: approvals trigger `publish`
        # prefect.yaml's work pool definition gives every deployment the flow runs' environment.
        for deployment in deployments.values():
            assert deployment.job_variables == {"env": {
                "PRESSFLOW_OUT": f"{ROOT}/outputs",
                "ARGOS_PACKAGES_DIR": f"{Path.home()}/.local/share/argos-translate/packages",
                "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}}

        # What the UI form submits: the record as JSON, dates as strings.
        # This run's output and models go to the test's folders, as a user points one run elsewhere.
        run = run_deployment("pressflow-prepare/prepare", parameters={"events": [record]},
                             job_variables={"env": {"PRESSFLOW_OUT": str(out),
                                                    "ARGOS_PACKAGES_DIR": os.environ["ARGOS_PACKAGES_DIR"]}},
                             timeout=RUN_TIMEOUT, poll_interval=1, as_subflow=False)
    worker.check_alive()
    assert run.state is not None and run.state.is_completed(), f"flow run ended {run.state!r}"

    with db.session_scope(f"sqlite:///{out / 'state' / 'pressflow.db'}") as session:
        drafts = [(d.lang, d.channel, d.status) for d in store.list_drafts(session, slug=slug)]
    english = sorted(c for lang, c, s in drafts if lang == "en" and s == store.PENDING)  # reviewed too
    spanish = sorted(c for lang, c, s in drafts if lang == "es" and s == store.PENDING)
    assert len(english) == 5 and "release" in english, drafts
    assert spanish == english, drafts
    assert {lang for lang, _, _ in drafts} == {"en", "es"}, drafts


def mentions(out: Path, slug: str) -> list[str]:
    """Every published file that names the release: its pages, outbound files, feed entries, sitemap."""
    found = [str(p.relative_to(out)) for p in out.rglob(f"*{slug}*") if "state" not in p.parts]
    for path in [*out.glob("feeds/*/*.xml"), out / "sitemap.xml", *out.glob("site/*/index.html")]:
        if path.exists() and slug in path.read_text(encoding="utf-8"):
            found.append(str(path.relative_to(out)))
    return found


def test_the_scheduled_deployment_lifts_an_embargo_on_time(tmp_path, services):
    """`publish-scheduled`, run by the server's scheduler and a worker, publishes a release soon
    after its publish_at passes, and nothing about it before.

    The deployment is the one in prefect.yaml with its interval shortened from 3600 s to 10 s, so
    the test waits seconds rather than minutes; everything else (entrypoint, pull step, pool,
    concurrency limit) is the file as shipped.
    """
    import datetime as dt

    from pressflow.prepare import pipeline

    from pressflow.drafts import service
    from pressflow.core.config import Settings
    from pressflow.records import load_records

    interval = 10
    shipped = (ROOT / "prefect.yaml").read_text(encoding="utf-8")
    assert "      - interval: 3600\n" in shipped
    project_file = tmp_path / "prefect.yaml"
    out = tmp_path / "out"
    project_file.write_text(with_job_env(shipped.replace("      - interval: 3600\n", f"      - interval: {interval}\n"),
                                         out=out, models=Path(os.environ["ARGOS_PACKAGES_DIR"])))

    env = start_server(tmp_path, services, scheduler=True)
    settings = Settings(out_dir=out)
    records = tmp_path / "records"
    records.mkdir()

    def prepare(slug: str, publish_at: dt.datetime | None) -> None:
        when = f"publish_at: {publish_at.isoformat()}\n" if publish_at else ""
        (records / f"{slug}.yaml").write_text(f"id: {slug}\ntitle: Release {slug}\ndate: 2021-06-21\n"
                                              f"summary: Summary of {slug}.\nlanguages: []\n{when}")
        loaded = load_records([records / f"{slug}.yaml"])
        assert not loaded.errors, loaded.errors
        pipeline.prepare(loaded.events, settings)
        service.approve_all(settings, reviewer="ana", slug=slug)  # a reviewer approves it

    def wait_for(slug: str, timeout: float, before: dt.datetime | None = None) -> dt.datetime:
        """Wait until the release is out everywhere; until `before`, nothing may name it anywhere.

        The sitemap is what a publish writes last (after pages and feeds), so a release it lists
        is in every file; a page alone may be read while the feeds are still being written.
        """
        sitemap = out / "sitemap.xml"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            worker.check_alive()
            now = dt.datetime.now(dt.timezone.utc)
            if sitemap.exists() and f"/{slug}.html" in sitemap.read_text(encoding="utf-8"):
                return now
            if before and now < before:
                assert not mentions(out, slug), f"{slug} published before its embargo: {mentions(out, slug)}"
            time.sleep(0.5)
        raise AssertionError(f"{slug} not published within {timeout:.0f} s:\n{worker.output()[-6000:]}")

    prepare("already-due", None)
    prefect_cli("work-pool", "create", "pressflow", "--type", "process", env=env)
    prefect_cli("deploy", "--prefect-file", str(project_file), "--name", "publish-scheduled", env=env)
    worker = Service("worker", [PREFECT, "worker", "start", "--pool", "pressflow", "--type", "process"],
                     {**without_pressflow_env(env), "PREFECT_WORKER_QUERY_SECONDS": "1"}, tmp_path)
    services.append(worker)
    wait_for("already-due", RUN_TIMEOUT)  # the schedule runs, the worker starts flows, they publish

    embargo = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=3 * interval)
    prepare("on-time", embargo)
    appeared = wait_for("on-time", RUN_TIMEOUT, before=embargo)
    assert appeared >= embargo
    # Out with the first scheduled run that starts after the embargo: within an interval, plus
    # the run already going (a new one is cancelled meanwhile) and its own start-up, each
    # ~10 s here and given a minute on a loaded machine.
    assert (appeared - embargo).total_seconds() < interval + 2 * 60, (appeared, embargo)
    feed = feedparser.parse(str(out / "feeds" / "en" / "atom.xml"))
    assert feed.bozo == 0
    assert sorted(e.id.rsplit(":", 1)[1] for e in feed.entries) == ["already-due/en", "on-time/en"]
