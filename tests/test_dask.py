"""The prepare flow on a local Dask cluster (prefect-dask's DaskTaskRunner), under a real
Prefect server: the translation units run in worker processes and the drafts land in the store."""

from __future__ import annotations

import pytest

from pressflow import store
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
    with store.session_scope(settings.db_url) as session:
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
