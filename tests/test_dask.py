"""The prepare flow on a local Dask cluster (prefect-dask's DaskTaskRunner), under a real
Prefect server: the translation units run in worker processes and the drafts land in the store."""

from __future__ import annotations

import pytest

from pressflow.core import db
from pressflow.drafts import store
from pressflow.translate.runners import RunnerError, task_runner


@pytest.mark.slow
def test_prepare_flow_on_a_local_dask_cluster(prefect_harness, argos_models, settings, events, monkeypatch):
    from pressflow.flows.prepare import prepare_flow
    from pressflow.translate.runners import dask_runner

    monkeypatch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", "8")  # inherited by the worker processes
    batch = [event.model_copy(update={"languages": ["es", "zh", "fr"]}) for _, event in events[:2]]
    flow = prepare_flow.with_options(task_runner=dask_runner(workers=2, processes=True))
    summary = flow(events=batch, out_dir=str(settings.out_dir))
    assert not summary.failed, summary.failed
    assert set(summary.skipped[batch[0].slug]) == {"fr"}  # no model: skipped, others went ahead
    assert summary.stats.translated > 0
    with db.session_scope(settings.db_url) as session:
        for event in batch:
            langs = {d.lang for d in store.list_drafts(session, slug=event.slug)}
            assert langs == {"en", "es", "zh"}
    again = flow(events=[batch[0].model_copy(update={"tags": ["rerun"]})], out_dir=str(settings.out_dir))
    assert again.stats.translated == 0 and again.drafts_added > 0  # all from memory


def test_task_runner_is_chosen_by_environment(monkeypatch):
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    monkeypatch.delenv("PRESSFLOW_DASK_ADDRESS", raising=False)
    monkeypatch.delenv("PRESSFLOW_TASK_RUNNER", raising=False)
    assert isinstance(task_runner(), ThreadPoolTaskRunner)
    monkeypatch.setenv("PRESSFLOW_TASK_RUNNER", "dask")
    assert isinstance(task_runner(), DaskTaskRunner)
    monkeypatch.setenv("PRESSFLOW_TASK_RUNNER", "spark")
    with pytest.raises(RunnerError, match="PRESSFLOW_TASK_RUNNER='spark'"):
        task_runner()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _drafts(out) -> list[tuple[str, str, str, str]]:
    from pressflow.core.config import Settings

    with db.session_scope(Settings(out_dir=out).db_url) as session:
        return sorted((d.release_slug, d.lang, d.channel, d.status) for d in store.list_drafts(session))


@pytest.fixture
def cluster(tmp_path, prefect_harness):
    """A real `dask scheduler` and `dask worker` (two processes), started in a folder of their own."""
    import os
    import subprocess
    import sys
    import time

    from prefect.settings import PREFECT_API_URL

    elsewhere = tmp_path / "cluster-cwd"
    elsewhere.mkdir()
    address = f"tcp://127.0.0.1:{_free_port()}"
    # The workers report their task runs to the same Prefect server (else each starts its own).
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PRESSFLOW_MAX_DECODING_LENGTH": "8"}
    logs = (elsewhere / "scheduler.log").open("wb"), (elsewhere / "worker.log").open("wb")
    started = [
        subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                          "--port", address.rsplit(":", 1)[1], "--no-dashboard"], cwd=elsewhere, env=env,
                         stdout=logs[0], stderr=subprocess.STDOUT, start_new_session=True)]
    time.sleep(2)
    started.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2",
                                     "--nthreads", "1", "--no-dashboard"], cwd=elsewhere, env=env,
                                    stdout=logs[1], stderr=subprocess.STDOUT, start_new_session=True))
    from distributed import Client

    with Client(address, timeout=120) as client:
        client.wait_for_workers(2, timeout=180)
    try:
        yield address, elsewhere
    finally:
        import signal

        for process in reversed(started):
            os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for log in logs:
            log.close()


@pytest.mark.slow
def test_a_real_cluster_in_another_folder_stores_exactly_what_threads_store(cluster, argos_models, events, tmp_path,
                                                                            monkeypatch):
    """A relative --out means the flow's folder, not the workers': every draft lands in one store."""
    from pressflow.core.config import Settings
    from pressflow.flows import using_settings
    from pressflow.flows.prepare import prepare_flow
    from pressflow.translate.runners import task_runner

    address, elsewhere = cluster
    monkeypatch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", "8")
    batch = [event.model_copy(update={"languages": ["es", "zh", "fr"]}) for _, event in events[:3]]
    here = tmp_path / "flow-cwd"
    here.mkdir()
    monkeypatch.chdir(here)

    threads = prepare_flow.with_options(task_runner=task_runner(Settings(task_runner="threads")))
    with using_settings(Settings(task_runner="threads")):
        by_threads = threads(events=batch, out_dir="threads-out")
    on_dask = Settings(dask_address=address)
    with using_settings(on_dask):
        by_dask = prepare_flow.with_options(task_runner=task_runner(on_dask))(events=batch, out_dir="out")

    assert by_dask.failed == {} and by_threads.failed == {}
    expected = _drafts(here / "threads-out")
    assert len(expected) == 3 * 3 * len({c for _, _, c, _ in expected})  # en, es, zh of every release
    assert _drafts(here / "out") == expected
    assert by_dask.stats.translated == by_threads.stats.translated > 0
    assert not list(elsewhere.rglob("*.db")), "a worker wrote a store of its own"


def test_a_remote_cluster_with_a_sqlite_store_is_refused_up_front(tmp_path):
    from pressflow.core.config import Settings
    from pressflow.translate.runners import check_reachable

    remote = Settings(out_dir=tmp_path / "out", dask_address="tcp://10.1.2.3:8786")
    with pytest.raises(RunnerError) as refused:
        check_reachable(remote)
    message = str(refused.value)
    assert "\n" not in message and "10.1.2.3:8786" in message and "PRESSFLOW_DATABASE_URL" in message
    check_reachable(Settings(out_dir=tmp_path / "out", dask_address="tcp://127.0.0.1:8786"))  # local: fine
    check_reachable(remote.model_copy(update={"database_url": "postgresql+psycopg://u@db/pressflow"}))
