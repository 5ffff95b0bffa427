"""Two `pressflow prepare` runs on one store at once (SQLite, and a real PostgreSQL server): the
later one says, in one line, that another prepare is running, waits for it, and continues;
nobody sees a raw SQL error, and the store holds one set of drafts."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pressflow.core import db
from pressflow.drafts import store
from pressflow.prepare import pipeline
from pressflow.flows.prepare import WAITING
from pressflow.core.config import Settings

pytestmark = pytest.mark.slow  # four real prepare runs in subprocesses

RECORD = """\
id: water-forum
title: Water forum opens in Tashkent
date: 2021-09-12
summary: Scientists from five countries met to restore the Aral Sea.
languages: [es]
"""


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request, tmp_path) -> Settings:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return Settings(out_dir=tmp_path / "out", database_url=url)


@pytest.fixture
def record(tmp_path) -> Path:
    path = tmp_path / "records" / "water-forum.yaml"
    path.parent.mkdir()
    path.write_text(RECORD, encoding="utf-8")
    return path


def environment(settings: Settings) -> dict[str, str]:
    """The subprocesses' environment: this session's Prefect server, the store, short outputs."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PRESSFLOW_MAX_DECODING_LENGTH": "24"}
    if settings.database_url:
        env["PRESSFLOW_DATABASE_URL"] = settings.database_url
    return env


def start_prepare(settings: Settings, record: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pressflow.cli", "prepare", "--local", str(record), "--out",
                             str(settings.out_dir)], env=environment(settings), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def stderr_lines(process: subprocess.Popen) -> queue.Queue:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()
    return lines


def drafts(settings: Settings) -> list[tuple]:
    with db.session_scope(settings.db_url) as session:
        return sorted((d.lang, d.channel, d.revision) for d in store.list_drafts(session))


def run_named(name: str, timeout: float = 60):
    """The id of the flow run whose current state is named `name` (waiting until there is one)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStateName

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(state=dict(name=FlowRunFilterStateName(any_=[name]))))
            if runs:
                return runs[0].id
            time.sleep(0.5)
    raise AssertionError(f"no flow run in state {name!r} within {timeout} s")


def state_names(run_id) -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [state.name for state in sorted(client.read_flow_run_states(run_id), key=lambda s: s.timestamp)]


def test_a_prepare_waits_for_the_one_running_then_continues(prefect_harness, argos_models, store_settings, record):
    with db.exclusive(store_settings.db_url, "prepare", db.PREPARE_LOCK_KEY):  # "the other prepare"
        process = start_prepare(store_settings, record)
        lines = stderr_lines(process)
        said = lines.get(timeout=240)  # it has started, found the lock taken, and says so
        assert said.strip() == pipeline.ANOTHER_PREPARE
        waiting = run_named(WAITING)  # the run's state says what it waits for
        assert process.poll() is None  # still waiting
        assert not drafts(store_settings)
    out, _ = process.communicate(timeout=600)
    rest = [lines.get_nowait() for _ in range(lines.qsize())]
    assert process.returncode == 0, rest
    assert state_names(waiting)[-3:] == [WAITING, "Running", "Completed"]
    assert "prepared water-forum: " in out and "es" in out.split("prepared water-forum: ")[1]
    assert len(drafts(store_settings)) > 0


def test_two_prepares_at_once_both_succeed_and_store_one_set_of_drafts(prefect_harness, argos_models,
                                                                       store_settings, record):
    runs = [start_prepare(store_settings, record) for _ in range(2)]
    results = [(run.wait(timeout=600), *run.communicate()) for run in runs]
    for code, out, err in results:
        assert code == 0, err
        assert "INSERT" not in err and "[SQL" not in err and "Traceback" not in err, err
        said = [line for line in err.splitlines() if not line.startswith("recorded in Prefect")]
        assert set(said) <= {pipeline.ANOTHER_PREPARE}, err
    # one of them did the work; the other found it done (an unchanged record adds nothing)
    added = sorted(int(re.search(r"^(\d+) drafts stored", out, re.M).group(1)) for _, out, _ in results)
    stored = drafts(store_settings)
    assert added == [0, len(stored)] and stored
    assert len(stored) == len(set(stored))  # one draft per language and channel, each at revision 1
    assert {revision for _, _, revision in stored} == {1}
