"""Runs that survive their processes, on a real Prefect server and a real process worker.

One server for the module (its event services on: the persister, triggers and actions), the
project deployed from prefect.yaml with `prefect deploy --all` (its job variables pointed at the
test's output folder), and a worker per test. Approvals in a burst make one publish run; the
automations installed twice notify once per event at a loopback HTTP receiver; a run whose
worker and process are killed is marked Crashed when its heartbeats stop; `pressflow prepare` /
`publish` with a server submit to the deployment and exit as the run ended.

Everything polls with generous timeouts: the machine may be a loaded 2-core one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from test_prefect_server import (PREFECT, Service, descendants, free_port, prefect_cli, wait_healthy, with_job_env,
                                 without_pressflow_env)
from webhook_receiver import Receiver

pytestmark = pytest.mark.slow

PRESSFLOW = str(Path(sys.executable).with_name("pressflow"))
WAIT = 240  # seconds for a run, an event or an automation; generous on a loaded machine
DEBOUNCE = 30  # the publish trigger's `within` in prefect.yaml
CRASH_AFTER = 40  # the crash automation's `within` in these tests (90 s as shipped)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A Prefect server with the project deployed; yields (environment, output folder, log folder)."""
    home = tmp_path_factory.mktemp("runs-events")
    out = home / "out"
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home / "prefect-home"), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_CLI_PROMPT": "false", "PREFECT_UI_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "INFO",
           "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
           "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "true",
           "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "true", "PWD": str(ROOT)}
    server = Service("server", [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, home)
    try:
        wait_healthy(server, env["PREFECT_API_URL"])
        project_file = home / "prefect.yaml"
        project_file.write_text(with_job_env((ROOT / "prefect.yaml").read_text(encoding="utf-8"), out=out,
                                             models=Path(os.environ["ARGOS_PACKAGES_DIR"])))
        prefect_cli("work-pool", "create", "pressflow", "--type", "process", env=env)
        prefect_cli("deploy", "--all", "--prefect-file", str(project_file), env=env)
        yield env, out, home
    finally:
        server.stop()
        print(f"----- prefect server log -----\n{server.output()[-20000:]}")


@pytest.fixture
def worker(project, tmp_path):
    env, _, _ = project
    started = Service("worker", [PREFECT, "worker", "start", "--pool", "pressflow", "--type", "process"],
                      {**without_pressflow_env(env), "PREFECT_WORKER_QUERY_SECONDS": "1"}, tmp_path)
    yield started
    started.stop()
    print(f"----- worker log -----\n{started.output()[-20000:]}")


@pytest.fixture
def client(project):
    """A sync Prefect client of the module's server, and the process's settings pointing at it
    (so approvals made here are announced to it)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: project[0]["PREFECT_API_URL"]}):
        with get_client(sync_client=True) as prefect_client:
            yield prefect_client


def prepare_releases(out: Path, slugs: list[str], publish_at: dt.datetime | None = None) -> None:
    """English-only releases in the store (no models needed), drafts pending review."""
    from pressflow.core.config import Settings
    from pressflow.prepare import pipeline
    from pressflow.records import validate_record

    when = {"publish_at": publish_at.isoformat()} if publish_at else {}
    records = [(None, validate_record({"id": slug, "title": f"Release {slug}", "date": "2021-06-21",
                                       "summary": f"Summary of {slug}.", "languages": [], **when}))
               for slug in slugs]
    pipeline.prepare(records, Settings(out_dir=out))


def pending_ids(out: Path, slug: str) -> list[int]:
    from pressflow.core.config import Settings
    from pressflow.drafts import service

    return service.pending_ids(Settings(out_dir=out), slug=slug)


def runs_of(client, deployment: str, since: dt.datetime) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    runs = client.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])))
    return [run for run in runs if run.created >= since]


def wait_until(what: str, check, timeout: float = WAIT, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(every)
    raise AssertionError(f"not within {timeout} s: {what}")


def published(out: Path, slug: str) -> bool:
    sitemap = out / "sitemap.xml"
    return sitemap.exists() and f"/{slug}.html" in sitemap.read_text(encoding="utf-8")


def test_a_burst_of_approvals_is_one_publish_run(project, worker, client):
    """Three releases approved a second or two apart (the CLI, the service as the page uses it):
    one run of `publish`, after approving pauses, and every release out."""
    from pressflow.core.config import Settings
    from pressflow.drafts import service

    env, out, _ = project
    slugs = ["burst-one", "burst-two", "burst-three"]
    prepare_releases(out, slugs)
    since = dt.datetime.now(dt.timezone.utc)
    approved = subprocess.run([PRESSFLOW, "review", "approve", "--all", "--release", slugs[0], "--reviewer", "ana",
                               "--out", str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert approved.returncode == 0, approved.stderr
    for slug in slugs[1:]:
        time.sleep(1)
        service.approve_all(Settings(out_dir=out), reviewer="bo", slug=slug)

    runs = wait_until("a publish run after the approvals", lambda: runs_of(client, "publish", since))
    wait_until("every release published", lambda: all(published(out, s) for s in slugs))
    time.sleep(DEBOUNCE + 15)  # long enough for a second run to show, were there one
    runs = runs_of(client, "publish", since)
    assert len(runs) == 1, [(r.name, r.created, r.state_name) for r in runs]
    # The run started once approving paused, not at the first approval.
    assert runs[0].created >= since + dt.timedelta(seconds=DEBOUNCE), (runs[0].created, since)
    worker.check_alive()


def test_an_embargoed_release_gets_one_publish_run_at_its_embargo(project, worker, client):
    from pressflow.core.config import Settings
    from pressflow.drafts import service

    _, out, _ = project
    embargo = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=DEBOUNCE + 40)).replace(microsecond=0)
    prepare_releases(out, ["embargoed"], publish_at=embargo)
    ids = pending_ids(out, "embargoed")
    service.approve_all(Settings(out_dir=out), reviewer="ana", slug="embargoed")
    service.decide(Settings(out_dir=out), {i: service.Seen() for i in ids}, "approved", reviewer="ana")  # again

    deployment = client.read_deployment_by_name("pressflow-publish/publish")
    scheduled = [r for r in client.read_flow_runs() if r.deployment_id == deployment.id and "embargo" in r.tags]
    assert len(scheduled) == 1, [(r.name, r.expected_start_time) for r in scheduled]
    assert scheduled[0].expected_start_time == embargo
    # A worker starts it up to 10 s early (its prefetch): the run itself waits for the embargo.
    assert dt.datetime.fromisoformat(scheduled[0].parameters["not_before"]) == embargo
    assert not published(out, "embargoed")
    appeared = wait_until("the embargoed release out", lambda: published(out, "embargoed") and
                          dt.datetime.now(dt.timezone.utc))
    assert appeared >= embargo
    wait_until("the embargo run completed", lambda: client.read_flow_run(scheduled[0].id).state.is_completed())


def test_automations_installed_twice_notify_once_per_event(project, client, tmp_path):
    from prefect.blocks.webhook import Webhook
    from prefect.events import Event

    env, _, _ = project
    receiver = Receiver("/notices", wait=WAIT)
    try:
        Webhook(url=receiver.url, headers={"Content-Type": "application/json"}).save("test-notices", overwrite=True)
        names = {"pressflow-notify-reviewers", "pressflow-translation-failed", "pressflow-delivery-needs-a-person",
                 "pressflow-crash-silent-runs", "pressflow-run-needs-a-person"}
        # What a team did before this command: Prefect's own create, which makes one more each time.
        block_id = str(client.read_block_document_by_name("test-notices", "webhook").id)
        doubled = tmp_path / "notify-reviewers.yaml"
        doubled.write_text((ROOT / "automations" / "notify-reviewers.yaml").read_text().replace("WEBHOOK_BLOCK_ID",
                                                                                                 block_id))
        prefect_cli("automation", "create", "--from-file", str(doubled), env=env)
        for _ in range(2):
            installed = subprocess.run([PRESSFLOW, "automations", "install", "--webhook", "test-notices"], env=env,
                                       cwd=ROOT, capture_output=True, text=True, timeout=120)
            assert installed.returncode == 0, installed.stdout + installed.stderr
        ours = [a.name for a in client.read_automations() if a.name in names]
        assert sorted(ours) == sorted(names)

        occurred = dt.datetime.now(dt.timezone.utc)
        events = [Event(event="pressflow.release.awaiting-review", occurred=occurred,
                        resource={"prefect.resource.id": "pressflow.release.once"},
                        payload={"message": "2 drafts await review", "release": "once", "title": "Once",
                                 "languages": ["es"], "drafts": 2, "review_url": "http://review"}),
                  Event(event="pressflow.flow-run.completed-with-failures", occurred=occurred,
                        resource={"prefect.resource.id": "pressflow.flow-run.1234",
                                  "prefect.resource.name": "publish 2026-12-03 01:00"},
                        payload={"state": "Completed with failures", "message": "not published: once in zh"})]
        client.request("POST", "/events", json=[e.model_dump(mode="json") for e in events]).raise_for_status()
        receiver.wait_for(lambda b: b.get("release") == "once")
        receiver.wait_for(lambda b: b.get("flow_run") == "pressflow.flow-run.1234")
        time.sleep(15)  # a second notice, were there a duplicate automation, arrives by now
        assert len(receiver.matching(lambda b: b.get("release") == "once")) == 1, receiver.bodies
        [failure] = receiver.matching(lambda b: b.get("flow_run") == "pressflow.flow-run.1234")
        assert failure["message"] == "not published: once in zh"
        assert "Completed with failures" in failure["text"]
    finally:
        receiver.close()


def test_a_run_whose_worker_is_killed_is_marked_crashed(project, client, tmp_path):
    """The worker and the flow run's process die together (a lost machine): nothing reports the
    run's end, and the crash automation marks it Crashed once its heartbeats stop."""
    from filelock import FileLock
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment

    env, out, _ = project
    automations = tmp_path / "automations"
    automations.mkdir()
    shipped = (ROOT / "automations" / "runs.yaml").read_text(encoding="utf-8")
    assert "      within: 90\n" in shipped
    (automations / "runs.yaml").write_text(shipped.replace("      within: 90\n", f"      within: {CRASH_AFTER}\n"))
    receiver = Receiver("/notices", wait=WAIT)
    from prefect.blocks.webhook import Webhook

    Webhook(url=receiver.url, headers={"Content-Type": "application/json"}).save("crash-notices", overwrite=True)
    installed = subprocess.run([PRESSFLOW, "automations", "install", "--webhook", "crash-notices", "--dir",
                                str(automations)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    worker = Service("worker", [PREFECT, "worker", "start", "--pool", "pressflow", "--type", "process"],
                     {**without_pressflow_env(env), "PREFECT_WORKER_QUERY_SECONDS": "1"}, tmp_path)
    lock = FileLock(str(out / "state" / "publish.lock"))  # the run will wait for it, Running
    (out / "state").mkdir(parents=True, exist_ok=True)
    try:
        with lock:
            run = run_deployment("pressflow-publish/publish", timeout=0, as_subflow=False)
            wait_until("the run Running", lambda: client.read_flow_run(run.id).state.is_running())
            wait_until("the run's first heartbeat", lambda: heartbeats(client, run.id))
            pids = descendants(worker.process.pid)
            assert pids, "the flow run's process"
            for pid in [worker.process.pid, *pids]:
                os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            state = wait_until("the run Crashed", lambda: (s := client.read_flow_run(run.id).state).type ==
                               StateType.CRASHED and s, timeout=WAIT + 60)
        assert "heartbeat" in state.message
        assert time.monotonic() - killed >= 15  # the automation's silence, not the worker (it is dead)
        receiver.wait_for(lambda b: b.get("flow_run") == f"prefect.flow-run.{run.id}")
        # The dead run's slot of the shared publish limit comes back when its lease runs out.
        wait_until("the publish slot free", lambda: client.read_global_concurrency_limit_by_name(
            "pressflow-publish").active_slots == 0, timeout=WAIT)
    finally:
        worker.stop()
        receiver.close()
        print(f"----- worker log -----\n{worker.output()[-20000:]}")


def heartbeats(client, run_id) -> list:
    response = client.request("POST", "/events/filter", json={"filter": {
        "event": {"name": ["prefect.flow-run.heartbeat"]},
        "resource": {"id": [f"prefect.flow-run.{run_id}"]},
        "occurred": {"since": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat()}}})
    response.raise_for_status()
    return response.json()["events"]


def test_the_cli_submits_to_the_deployment_and_exits_as_the_run_ended(project, worker, client, tmp_path):
    env, out, _ = project
    since = dt.datetime.now(dt.timezone.utc)
    published_run = subprocess.run([PRESSFLOW, "publish", "--no-deliver", "--out", str(out)], env=env,
                                   capture_output=True, text=True, timeout=WAIT + 60)
    assert published_run.returncode == 0, published_run.stdout + published_run.stderr
    assert "submitted to pressflow-publish/publish" in published_run.stderr
    assert "ended Completed" in published_run.stdout
    assert "taking the pressflow-publish concurrency slot" in published_run.stderr  # the run's own logs, here
    [run] = runs_of(client, "publish", since)
    assert run.state.is_completed()

    good = tmp_path / "good.yaml"
    good.write_text("id: cli-good\ntitle: Good\ndate: 2021-06-21\nsummary: Fine.\nlanguages: []\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: cli-bad\ntitle: Bad\ndate: 2021-06-21\nsummary: Refused.\nlanguages: []\ncolour: red\n")
    prepared = subprocess.run([PRESSFLOW, "prepare", str(good), str(bad), "--out", str(out)], env=env,
                              capture_output=True, text=True, timeout=WAIT + 60)
    assert prepared.returncode == 1, prepared.stdout + prepared.stderr
    assert "ended Completed with failures" in prepared.stdout, prepared.stdout
    assert "colour" in prepared.stdout + prepared.stderr
    assert pending_ids(out, "cli-good")  # the worker stored the good record's drafts

    local = subprocess.run([PRESSFLOW, "publish", "--no-deliver", "--local", "--out", str(out)], env=env,
                           capture_output=True, text=True, timeout=WAIT)
    assert local.returncode == 0, local.stdout + local.stderr
    assert "submitted to" not in local.stderr
    assert len(runs_of(client, "publish", since)) == 1  # --local ran the flow here, not the deployment
