"""Prepare flow: event records to drafts awaiting review, in every member language.

Thin on purpose: the work is in `pressflow.pipeline`; this file owns what Prefect is for —
tasks with retries where things can fail, one translation task per language (run
concurrently by the task runner, or on a Dask cluster), and a run summary artifact.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_table_artifact

from pressflow import pipeline
from pressflow.config import Settings
from pressflow.records import Event, load_records


@task(name="load records")
def load_task(paths: list[str]) -> tuple[list[tuple[str, Event]], list[str]]:
    result = load_records([Path(p) for p in paths])
    return [(str(path), event) for path, event in result.events], [str(e) for e in result.errors]


@task(name="register releases", retries=2, retry_delay_seconds=2)
def register_task(events: list[tuple[str | None, Event]], settings: Settings):
    return pipeline.register([(Path(p) if p else None, e) for p, e in events], settings)


@task(name="translate language", task_run_name="translate {lang}", retries=2, retry_delay_seconds=5)
def translate_task(lang: str, jobs: list[pipeline.Job], settings: Settings) -> pipeline.PrepareReport:
    return pipeline.translate_language(lang, jobs, settings, pipeline.progress_for(lang))


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


@flow(name="pressflow-prepare", log_prints=True)
def prepare_flow(events: list[Event] | None = None, paths: list[str] | None = None,
                 out_dir: str | None = None) -> dict:
    """Validate event records (given as records or as file paths), render and translate them,
    and store every draft for review.

    Returns a summary: releases, languages, skipped languages with reasons, and record errors.

    Args:
        events: Event records to prepare (the Prefect UI shows a form for each).
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
    jobs, report = register_task(loaded, settings)
    languages = pipeline.languages_of(jobs)
    if languages:
        for result in translate_task.map(languages, unmapped(jobs), unmapped(settings)).result():
            report.merge(result)
    rows = summary_rows(report)
    if rows:
        create_table_artifact(key="prepare-summary", table=rows, description="Releases prepared in this run")
    return {"releases": report.releases, "skipped": report.skipped, "failed": report.failed,
            "errors": errors, "drafts_added": report.drafts_added,
            "segments": vars(report.stats)}
