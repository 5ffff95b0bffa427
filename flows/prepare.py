"""Prepare flow: event records to drafts awaiting review, in every member language.

Thin on purpose: the work is in `pressflow.pipeline`; this file owns what Prefect is for —
tasks with retries where things can fail, translation mapped over (language pair, batch)
units (run by the task runner: threads here, or a Dask cluster with PRESSFLOW_TASK_RUNNER=dask,
see `pressflow.translate.runners`), and a run summary artifact.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.context import FlowRunContext
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from pressflow import pipeline
from pressflow.config import Settings
from pressflow.records import Event, load_records
from pressflow.translate.runners import task_runner
from pressflow.translate.stage import CLUSTER_UNIT_SIZE, LOCAL_UNIT_SIZE, Unit, UnitResult, run_plans, run_unit


@task(name="load records", cache_policy=NO_CACHE)  # files change between runs: never cached
def load_task(paths: list[str]) -> tuple[list[tuple[str, Event]], list[str]]:
    result = load_records([Path(p) for p in paths])
    return [(str(path), event) for path, event in result.events], [str(e) for e in result.errors]


@task(name="register releases", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def register_task(events: list[tuple[str | None, Event]], settings: Settings):
    return pipeline.register([(Path(p) if p else None, e) for p, e in events], settings)


@task(name="plan translation", task_run_name="plan {lang}", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def plan_task(lang: str, jobs: list[pipeline.Job], settings: Settings) -> pipeline.LanguageWork:
    return pipeline.plan_language(lang, jobs, settings)


@task(name="plan translation", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def plan_all_task(languages: list[str], jobs: list[pipeline.Job], settings: Settings) -> list[pipeline.LanguageWork]:
    return pipeline.plan_languages(languages, jobs, settings)


@task(name="translate batch", task_run_name="translate {unit.target} ({unit.model.source}->{unit.model.target})",
      retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def translate_unit_task(unit: Unit) -> UnitResult:
    return run_unit(unit, progress=pipeline.progress_for(unit.target))


@task(name="store drafts", task_run_name="store {work.lang}", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def store_task(work: pipeline.LanguageWork, settings: Settings) -> pipeline.PrepareReport:
    return pipeline.store_language(work, settings)


@task(name="store drafts", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def store_all_task(works: list[pipeline.LanguageWork], settings: Settings) -> pipeline.PrepareReport:
    return pipeline.store_languages(works, settings)


def on_threads() -> bool:
    return isinstance(FlowRunContext.get().task_runner, ThreadPoolTaskRunner)


def data(value):
    """Mark a task argument as plain data: Prefect need not walk every record and rendered
    draft in it looking for futures (that walk was ~8% of the flow's CPU). Only on the thread
    runner: Dask unpacks tuples in arguments, and the marker is one."""
    return quote(value) if on_threads() else value


def run_units(units: list[Unit]) -> list:
    """Every unit on the task runner; one failing after its retries fails its language only."""
    futures = translate_unit_task.map([data(unit) for unit in units])
    futures.wait()
    return [future.result(raise_on_failure=False) for future in futures]


def translate_chunk(jobs: list[pipeline.Job], settings: Settings) -> pipeline.PrepareReport:
    """Plan every language of these releases, run the model work on the task runner, store."""
    languages = pipeline.languages_of(jobs)
    if not languages:
        return pipeline.PrepareReport()
    if on_threads():
        # One task each for planning and storing every language: threads share one
        # interpreter, so per-language tasks would run no faster, and each task run costs
        # ~60 ms of orchestration.
        works = plan_all_task(data(languages), data(jobs), settings)
        run_plans([work.plan for work in works if work.plan is not None], run_units, unit_size=LOCAL_UNIT_SIZE)
        return store_all_task(data(works), settings)
    # On a cluster, each language is planned and stored by a worker of its own.
    works = plan_task.map(languages, unmapped(jobs), unmapped(settings)).result()
    run_plans([work.plan for work in works if work.plan is not None], run_units, unit_size=CLUSTER_UNIT_SIZE)
    report = pipeline.PrepareReport()
    for result in store_task.map(works, unmapped(settings)).result():
        report.merge(result)
    return report


def summary_rows(report: pipeline.PrepareReport) -> list[dict]:
    rows = []
    for slug, info in sorted(report.releases.items()):
        rows.append({
            "release": slug,
            "record": info["status"],
            "languages": ", ".join(info["languages"]),
            "skipped": "; ".join(f"{k}: {v}" for k, v in sorted(report.skipped.get(slug, {}).items())),
            "failed": "; ".join(f"{k}: {v}" for k, v in sorted(report.failed.get(slug, {}).items())),
        })
    return rows


@flow(name="pressflow-prepare", log_prints=True, task_runner=task_runner())
def prepare_flow(events: list[Event] = [], paths: list[str] | None = None,  # noqa: B006 - never mutated
                 out_dir: str | None = None) -> dict:
    """Validate event records (given as records or as file paths), render and translate them,
    and store every draft for review.

    Returns a summary: releases, languages, skipped languages with reasons, and record errors.

    Args:
        events: Event records to prepare (the Prefect UI shows a form for each). A plain list,
            not `list[Event] | None`: under `anyOf` Prefect's validator reports only that the
            list matches no schema; under a list it names the record and field at fault.
        paths: Record files or folders (YAML/JSON) on the worker, relative to the project.
        out_dir: Output folder holding the draft store; default PRESSFLOW_OUT, else outputs/.
    """
    logger = get_run_logger()
    settings = Settings().with_out(out_dir)
    loaded: list[tuple[str | None, Event]] = [(None, e) for e in (events or [])]
    errors: list[str] = []
    if paths:
        from_files, errors = load_task(paths)
        loaded += from_files
    for error in errors:
        logger.error(error)
    jobs, report = register_task(data(loaded), settings)
    for chunk in pipeline.chunks(jobs, settings):  # memory follows the chunk, not the batch
        report.merge(translate_chunk(chunk, settings))
    rows = summary_rows(report)
    if rows:
        create_table_artifact(key="prepare-summary", table=rows, description="Releases prepared in this run")
    return {"releases": report.releases, "skipped": report.skipped, "failed": report.failed,
            "errors": errors, "drafts_added": report.drafts_added,
            "segments": vars(report.stats)}
