"""Runs that outlive their processes, on a real Prefect server and process worker.

- A flow run killed after one language is stored: the next run translates only what is missing.
- The Prefect server stopped mid-run and started again (same port, same database): the
  notice that drafts await review still reaches the reviewers' webhook, exactly once.

The record is long enough (tiny genuine Argos models, many sentences) that the languages after
the first take seconds; everything else is polled with generous deadlines, not slept on.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from pathlib import Path

import pytest

from conftest import ROOT
from test_events import install_automations
from test_prefect_server import (PREFECT, RUN_TIMEOUT, Service, descendants, prefect_cli, start_server,
                                 wait_healthy, without_pressflow_env)
from test_prefect_server import server, services  # noqa: F401 - fixtures: a server of its own, stopped after
from webhook_receiver import Receiver

pytestmark = pytest.mark.slow

LANGUAGES = ["es", "zh", "ar"]  # two in flight at once (the model cache's size), the third after
SLUG = "durable-forum"
POLL = 0.1


def long_record() -> dict:
    """Enough sentences that each language takes a few seconds with the test models."""
    body = [f"Paragraph {i}: scientists from {i} member countries met in Beijing. They planned {i} joint "
            f"projects on water. The {i} delegates agreed to meet again." for i in range(60)]
    return {"id": SLUG, "title": "A long forum", "date": "2021-06-04", "languages": LANGUAGES,
            "summary": "Scientists from member countries met in Beijing.", "body": body}


def job_env(out: Path) -> dict:
    return {"env": {"PRESSFLOW_OUT": str(out), "ARGOS_PACKAGES_DIR": os.environ["ARGOS_PACKAGES_DIR"],
                    "PRESSFLOW_MAX_DECODING_LENGTH": "32"}}  # the random-weight model rarely stops by itself


def stored_languages(out: Path) -> set[str]:
    from pressflow.core import db
    from pressflow.drafts import store

    path = out / "state" / "pressflow.db"
    if not path.exists():
        return set()
    with db.session_scope(f"sqlite:///{path}") as session:
        return {row.lang for row in store.draft_summaries(session, slug=SLUG)}


def wait_until(what: str, condition, timeout: float = RUN_TIMEOUT, check=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check:
            check()
        if found := condition():
            return found
        time.sleep(POLL)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def flow_run_process(worker: Service, run_id) -> int | None:
    """The pid of the process running this flow run (a child of the worker), or None."""
    for pid in descendants(worker.process.pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"PREFECT__FLOW_RUN_ID={run_id}".encode() in environ:
            return pid
    return None


def deploy_and_start_worker(env: dict, tmp_path: Path, services: list[Service], name: str = "worker") -> Service:
    prefect_cli("work-pool", "create", "pressflow", "--type", "process", env=env)
    deployed = prefect_cli("deploy", "--all", env=env)
    assert "pressflow-prepare/prepare" in deployed, deployed
    return start_worker(env, tmp_path, services, name)


def start_worker(env: dict, tmp_path: Path, services: list[Service], name: str) -> Service:
    worker = Service(name, [PREFECT, "worker", "start", "--pool", "pressflow", "--type", "process"],
                     {**without_pressflow_env(env), "PREFECT_WORKER_QUERY_SECONDS": "1"}, tmp_path)
    services.append(worker)
    return worker


def task_run_names(run_id, want: set[str]) -> set[str]:
    """The names of a flow run's task runs, once every name in `want` is among them (the server
    records task runs from their events, a moment after the flow run ends)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    def names() -> set[str] | None:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])), limit=200)
        found = {run.name for run in runs if run.state is not None and run.state.is_final()}
        return found if want <= found else None

    return wait_until(f"task runs {sorted(want)} of flow run {run_id}", names, timeout=90)


def recorded_events(name: str, since: dt.datetime, slug: str, want: int = 1, timeout: float = 90) -> list:
    """The events of this name about the release the server recorded since then, once `want` are
    there (or the timeout passed: then what there is)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    event_filter = EventFilter(event=EventNameFilter(prefix=[name]),
                               occurred=EventOccurredFilter(since=since, until=since + dt.timedelta(hours=1)))
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            found = [e for e in client.read_events(event_filter, limit=50).events
                     if e.resource.id == f"pressflow.release.{slug}"]
        if len(found) >= want or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_a_killed_run_keeps_its_finished_languages_and_the_next_translates_only_the_rest(
        tmp_path, server, services, argos_models):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    out = tmp_path / "out"
    worker = deploy_and_start_worker(server, tmp_path, services)
    with temporary_settings({PREFECT_API_URL: server["PREFECT_API_URL"]}):
        first = run_deployment("pressflow-prepare/prepare", parameters={"events": [long_record()]},
                               job_variables=job_env(out), timeout=0, as_subflow=False)
        wait_until("a first language stored", lambda: stored_languages(out) & set(LANGUAGES),
                   check=worker.check_alive)
        pid = wait_until("the flow run's process", lambda: flow_run_process(worker, first.id), timeout=10)
        os.killpg(os.getpgid(pid), signal.SIGKILL)  # the flow run dies mid-prepare, as in an OOM kill
        wait_until("the killed process gone", lambda: flow_run_process(worker, first.id) is None, timeout=30)
        kept = stored_languages(out) & set(LANGUAGES)
        missing = set(LANGUAGES) - kept
        assert kept, "nothing was kept of a run killed after a language was stored"
        assert missing, "every language was stored before the kill: the record is too short for this test"

        second = run_deployment("pressflow-prepare/prepare", parameters={"events": [long_record()]},
                                job_variables=job_env(out), timeout=RUN_TIMEOUT, poll_interval=1, as_subflow=False)
        assert second.state is not None and second.state.is_completed(), f"the second run ended {second.state!r}"
        names = task_run_names(second.id, {f"prepare {lang}" for lang in missing})
    worker.check_alive()
    # The model was called for missing languages only (one in flight at the kill may come from the
    # memory: its finished units were kept there); the kept ones were not even planned.
    translated = {name.split()[1] for name in names if name.startswith("translate ")}
    assert translated and translated <= missing, (sorted(names), kept)
    assert not {f"prepare {lang}" for lang in kept} & names, sorted(names)
    assert stored_languages(out) == {"en", *LANGUAGES}
    per_language = 5  # the release and four posts
    assert second.state.message == f"{per_language * len(missing)} drafts stored", second.state.message


def test_the_notice_reaches_reviewers_once_though_the_server_went_down_mid_run(tmp_path, services, argos_models,
                                                                             monkeypatch):
    from prefect.blocks.webhook import Webhook
    from prefect.deployments import run_deployment
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pressflow.core import db
    from pressflow.drafts import notices
    from pressflow.flows import events

    out = tmp_path / "out"
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED", "true")  # automations act
    env = start_server(tmp_path, services, scheduler=False)
    server = services[-1]
    receiver = Receiver()
    EventsWorker.drain_all()  # this process's events worker may be bound to an earlier test's server
    try:
        with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
            Webhook(url=receiver.url, headers={"Content-Type": "application/json"}).save("pressflow-reviewers")
            install_automations(tmp_path, env)
            worker = deploy_and_start_worker(env, tmp_path, services)
            run = run_deployment("pressflow-prepare/prepare", parameters={"events": [long_record()]},
                                 job_variables=job_env(out), timeout=0, as_subflow=False)
            wait_until("a first language stored", lambda: stored_languages(out) & set(LANGUAGES),
                       check=worker.check_alive)
            assert set(LANGUAGES) - stored_languages(out), "every language was stored before the server stopped"

            server.stop()  # the server goes away while the run translates the other languages
            server = Service("server-again", server.process.args, env, tmp_path)
            services.append(server)
            wait_healthy(server, env["PREFECT_API_URL"])
            # Whether the run lived through the outage (Prefect's client retries) or died of it,
            # its process ends; the next run of a pressflow flow sends what it could not.
            wait_until("the prepare run's process ended", lambda: flow_run_process(worker, run.id) is None)
            if worker.process.poll() is not None:  # a worker that gave up while the server was away
                worker = start_worker(env, tmp_path, services, "worker-again")
            published = run_deployment("pressflow-publish/publish", job_variables=job_env(out), timeout=RUN_TIMEOUT,
                                       poll_interval=1, as_subflow=False)
            assert published.state is not None and published.state.is_completed(), repr(published.state)

            receiver.wait_for(lambda m: m["event"] == events.AWAITING_REVIEW and m["release"] == SLUG,
                              timeout=RUN_TIMEOUT)
            with db.session_scope(f"sqlite:///{out / 'state' / 'pressflow.db'}") as session:
                assert notices.unsent(session) == []
            # Nothing is left to send twice; give a duplicate (were there one) the time to arrive.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                told = receiver.matching(lambda m: m["event"] == events.AWAITING_REVIEW)
                assert len(told) == 1, told
                time.sleep(POLL)
            assert set(told[0]["languages"]) <= {"en", *LANGUAGES} and "en" in told[0]["languages"], told
    finally:
        EventsWorker.drain_all()
        receiver.close()
