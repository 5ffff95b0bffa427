"""Approvals announced as Prefect events, waits with a bound, automation files, the CLI's one lines.

The events go to the session's real Prefect server (`prefect_server`, its event persister on)
and are read back from its events API. Without a server, approving imports no Prefect at all.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import filelock
import pytest
from typer.testing import CliRunner

from conftest import ROOT
from pressflow.cli import NOT_RECORDED, app
from pressflow.core import db
from pressflow.core.config import Settings
from pressflow.core.errors import ConfigError, LockWaitTimeout, ReviewError
from pressflow.drafts import announce, service
from pressflow.prepare import pipeline
from pressflow.records import validate_record


def prepare_english(settings: Settings, slug: str, publish_at: str | None = None) -> list[int]:
    record = {"id": slug, "title": f"Release {slug}", "date": "2021-06-21", "summary": "Summary.", "languages": []}
    if publish_at:
        record["publish_at"] = publish_at
    pipeline.prepare([(None, validate_record(record))], settings)
    return service.pending_ids(settings, slug=slug)


def approved_events(client, slug: str) -> list[dict]:
    response = client.request("POST", "/events/filter", json={"filter": {
        "event": {"name": [announce.APPROVED]}, "resource": {"id": [f"pressflow.release.{slug}"]},
        "occurred": {"since": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat()}}})
    response.raise_for_status()
    return response.json()["events"]


def wait_for_events(client, slug: str, count: int, timeout: float = 90) -> list[dict]:
    deadline = time.monotonic() + timeout
    while (found := approved_events(client, slug)) and len(found) < count or not found:
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    return found


def test_an_approval_is_one_event_per_release_after_the_commit(prefect_server, settings):
    from prefect.client.orchestration import get_client

    ids = prepare_english(settings, "approved-once")
    assert len(ids) > 1  # the release and its posts: several drafts, one event
    assert service.decide(settings, {i: service.Seen() for i in ids}, "approved", reviewer="ana") == len(ids)

    # A batch with a draft that cannot be decided is all or nothing: no event for the rollback.
    refused = prepare_english(settings, "rolled-back")
    with pytest.raises(ReviewError):
        service.decide(settings, {refused[0]: service.Seen(), 999_999: service.Seen()}, "approved", reviewer="bo")

    with get_client(sync_client=True) as client:
        [event] = wait_for_events(client, "approved-once", 1)
        time.sleep(5)  # the persister writes in batches: a stray second event or a rolled-back one shows by now
        assert len(approved_events(client, "approved-once")) == 1
        assert approved_events(client, "rolled-back") == []
    assert event["payload"]["release"] == "approved-once"
    assert event["payload"]["languages"] == ["en"]
    assert event["payload"]["reviewer"] == "ana"
    assert event["resource"]["prefect.resource.id"] == "pressflow.release.approved-once"
    assert event["resource"][announce.DEBOUNCE_LABEL] == "publish"  # the publish trigger's one bucket


def test_an_embargoed_release_gets_one_scheduled_publish_run(prefect_server, settings):
    from prefect.client.orchestration import get_client

    from pressflow.flows.publish import publish_flow

    publish_flow.to_deployment(name="publish").apply()
    embargo = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).replace(microsecond=0)
    ids = prepare_english(settings, "under-embargo", publish_at=embargo.isoformat())
    service.approve_all(settings, reviewer="ana", slug="under-embargo")
    service.decide(settings, {i: service.Seen() for i in ids}, "approved", reviewer="ana")  # approved again
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(announce.PUBLISH_DEPLOYMENT)
        runs = [r for r in client.read_flow_runs() if r.deployment_id == deployment.id
                and r.idempotency_key == announce.embargo_key("under-embargo", embargo)]
    assert len(runs) == 1
    assert runs[0].state.is_scheduled() and runs[0].expected_start_time == embargo


def test_without_a_server_approving_imports_no_prefect(tmp_path):
    script = f"""
import sys
from pathlib import Path
from pressflow.core.config import Settings
from pressflow.drafts import service
from pressflow.prepare import pipeline
from pressflow.records import validate_record
settings = Settings(out_dir=Path({str(tmp_path / 'out')!r}))
record = {{"id": "quiet", "title": "Quiet", "date": "2021-06-21", "summary": "S.", "languages": []}}
pipeline.prepare([(None, validate_record(record))], settings)
assert service.approve_all(settings, reviewer="ana", slug="quiet") > 0
print(sorted(m for m in sys.modules if m == "prefect" or m.startswith("prefect.")))
"""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # no profile naming a server
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_server_that_never_answers_holds_an_approval_seconds_not_minutes(tmp_path):
    """Prefect's client would wait 60 s a try and retry 5 times; an approval waits a few seconds."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    held = []
    threading.Thread(target=lambda: [held.append(listener.accept()) for _ in range(20)], daemon=True).start()
    script = f"""
import sys, time
from pathlib import Path
from pressflow.core.config import Settings
from pressflow.drafts import service
from pressflow.prepare import pipeline
from pressflow.records import validate_record
settings = Settings(out_dir=Path({str(tmp_path / 'out')!r}))
record = {{"id": "held", "title": "Held", "date": "2021-06-21", "summary": "S.", "languages": []}}
pipeline.prepare([(None, validate_record(record))], settings)
start = time.monotonic()
assert service.approve_all(settings, reviewer="ana", slug="held") > 0
print(round(time.monotonic() - start, 1))
print(service.pending_ids(settings, slug="held"))
"""
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{listener.getsockname()[1]}/api",
           "PREFECT_HOME": str(tmp_path / "prefect-home")}
    try:
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    finally:
        listener.close()
    assert done.returncode == 0, done.stderr
    took, pending = done.stdout.split("\n")[:2]
    assert held, "the approval never tried the server"
    assert float(took) < 3 * announce.ANNOUNCE_TIMEOUT, took  # one request timed out, none retried
    assert pending == "[]"  # and the approval stands


def test_a_wait_for_another_runs_lock_has_a_bound(tmp_path):
    url = f"sqlite:///{tmp_path / 'pressflow.db'}"
    db.get_engine(url)
    waited = []
    with db.lock_file(tmp_path / "pressflow.db", "prepare"):  # another prepare holds it
        started = time.monotonic()
        with pytest.raises(LockWaitTimeout, match="PRESSFLOW_LOCK_WAIT_MINUTES"):
            with db.exclusive(url, "prepare", db.PREPARE_LOCK_KEY, on_wait=lambda: waited.append(1), timeout=1.0):
                pass
    assert waited == [1] and 1.0 <= time.monotonic() - started < 30


def test_a_wait_for_an_advisory_lock_has_a_bound(postgres_url):
    from sqlalchemy import func, select

    db.get_engine(postgres_url)
    with db.exclusive(postgres_url, "prepare", db.PREPARE_LOCK_KEY):  # held on a connection of its own
        with pytest.raises(LockWaitTimeout):
            with db.exclusive(postgres_url, "prepare", db.PREPARE_LOCK_KEY, timeout=1.0):
                pass
    with db.exclusive(postgres_url, "prepare", db.PREPARE_LOCK_KEY, timeout=1.0):  # free again
        pass


def test_automation_files_need_a_webhook_and_unique_names(tmp_path):
    from pressflow.flows.automations import load_automations

    with pytest.raises(ConfigError, match="--webhook"):
        load_automations(ROOT / "automations", None)
    found = load_automations(ROOT / "automations", "00000000-0000-0000-0000-000000000001")
    assert {a.name for a in found} >= {"pressflow-crash-silent-runs", "pressflow-run-needs-a-person"}
    twice = tmp_path / "a.yaml"
    twice.write_text((ROOT / "automations" / "runs.yaml").read_text())
    (tmp_path / "b.yaml").write_text((ROOT / "automations" / "runs.yaml").read_text())
    with pytest.raises(ConfigError, match="a second automation named"):
        load_automations(tmp_path, "00000000-0000-0000-0000-000000000001")


def test_the_crash_automation_is_the_documented_one():
    """Prefect's zombie-flow automation: after a heartbeat, any event of the same run within
    `within`, else Crashed; `within` three heartbeats of prefect.yaml's frequency."""
    import yaml

    from pressflow.flows.automations import load_automations

    [crash] = [a for a in load_automations(ROOT / "automations", "00000000-0000-0000-0000-000000000001")
               if a.name == "pressflow-crash-silent-runs"]
    trigger = crash.trigger
    assert trigger.after == {"prefect.flow-run.heartbeat"} and trigger.expect == {"prefect.flow-run.*"}
    assert trigger.for_each == {"prefect.resource.id"} and trigger.posture == "Proactive"
    assert crash.actions[0].type == "change-flow-run-state" and crash.actions[0].state == "CRASHED"
    project = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    frequency = int(project["definitions"]["work_pools"]["pressflow_pool"]["job_variables"]["env"][
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"])
    assert trigger.within.total_seconds() == 3 * frequency


@contextlib.contextmanager
def no_server_in_prefect_settings():
    """Prefect's own settings without a server, when an earlier test loaded them with its own."""
    if "prefect.settings" not in sys.modules:
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        yield


def test_without_a_server_prepare_says_once_what_it_does_not_record(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    record = tmp_path / "r.yaml"
    record.write_text("id: r\ntitle: R\ndate: 2021-06-21\nsummary: S.\nlanguages: []\n")
    with no_server_in_prefect_settings():
        result = CliRunner().invoke(app, ["run", str(record), "--auto-approve", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert result.stderr.count(NOT_RECORDED) == 1 and len(NOT_RECORDED.splitlines()) == 1


def test_with_a_server_and_no_deployment_the_cli_says_so_in_one_line(prefect_server, tmp_path):
    result = CliRunner().invoke(app, ["prepare", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "no deployment pressflow-prepare/prepare" in line
    assert "prefect deploy --all" in line and "--local" in line
