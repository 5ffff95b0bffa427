"""The prepare flow: event records to drafts awaiting review, in every member language.

The loop is `pressflow.prepare.pipeline.prepare`'s; this flow hands it `TaskSteps`, which runs each
step as a Prefect task (retries only for errors that can pass, timeouts where work can hang) and the
model work on the flow's task runner: threads, or a Dask cluster (PRESSFLOW_TASK_RUNNER=dask,
see `pressflow.translate.runners`). Only the model work leaves this process; records, the
memory and the store are handled here.

Each target language is a task of its own ("prepare es"), which stores the language's drafts as
soon as it is translated: a run killed or cancelled midway loses only the languages in flight.
The store says what is done (a re-run translates only the languages missing for each record
version); the task's cache policy (`StoredLanguage`) says the same to Prefect, so a retried or
re-triggered run shows those languages as Cached. Notices that drafts await review are written
with the drafts and sent by `flush_notices`, at the start and the end of every run.

A run in which a record was refused or a language failed ends in the state "Completed with
failures", its message naming them; its summary artifact keeps a failed column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE, TASK_SOURCE, CachePolicy
from prefect.context import FlowRunContext
from prefect.runtime import flow_run
from prefect.states import Completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import BaseAnnotation, quote
from prefect.utilities.hashing import hash_objects

import pressflow
from pressflow.core import db
from pressflow.core.config import Settings
from pressflow.core.errors import ModelMissingError
from pressflow.prepare import pipeline
from pressflow.records import Event, LoadResult, load_records
from pressflow.translate.runners import check_reachable, task_runner
from pressflow.translate.stage import CLUSTER_UNIT_SIZE, LOCAL_UNIT_SIZE, Unit, UnitResult, run_unit
from pressflow.flows import can_pass, completed_with_failures, settings_for
from pressflow.flows.events import flush_notices

# Upper bounds for work that can hang (a stuck database lock, a model that never stops decoding).
# Generous: a chunk of 200 releases in 8 languages plans in about a minute on 2 cores.
STEP_TIMEOUT = 15 * 60
UNIT_TIMEOUT = 30 * 60  # loading a model plus up to LOCAL_UNIT_SIZE sentences with beam 4
RETRIES = dict(retries=2, retry_delay_seconds=2, retry_condition_fn=can_pass, cache_policy=NO_CACHE)


@task(name="load records", timeout_seconds=STEP_TIMEOUT, **RETRIES)
def load_task(paths: list[Path]) -> LoadResult:
    return load_records(paths)


@task(name="register releases", timeout_seconds=STEP_TIMEOUT, **RETRIES)
def register_task(events: list[tuple[Path | None, Event]], settings: Settings):
    return pipeline.register(events, settings)


@task(name="plan translation", task_run_name="plan {languages}", timeout_seconds=STEP_TIMEOUT, **RETRIES)
def plan_task(languages: list[str], jobs: list[pipeline.Job], settings: Settings) -> list[pipeline.LanguageWork]:
    return pipeline.plan_languages(languages, jobs, settings)


@task(name="translate batch", task_run_name="translate {unit.target} ({unit.model.source}->{unit.model.target})",
      timeout_seconds=UNIT_TIMEOUT, **RETRIES)
def translate_unit_task(unit: Unit) -> UnitResult:
    return run_unit(unit, progress=pipeline.progress_for(unit.target))


@task(name="store drafts", timeout_seconds=STEP_TIMEOUT, **RETRIES)
def store_task(works: list[pipeline.LanguageWork], settings: Settings) -> pipeline.PrepareReport:
    return pipeline.store_languages(works, settings)


@dataclass
class StoredLanguage(CachePolicy):
    """A language's drafts are done once stored: the key is what decides them and where they are.

    The store (its URL and birth: a store made again is another), the language, each release's
    record version, the models that translate into the language (a new package version is new
    work) and pressflow's version. Added to TASK_SOURCE on the task.
    """

    def compute_key(self, task_ctx, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any) -> str:
        lang, jobs, settings = (unquoted(inputs[name]) for name in ("lang", "jobs", "settings"))
        versions = sorted((job.event.slug, job.event.fingerprint()) for job in jobs if lang in job.languages)
        return hash_objects(db.store_identity(settings.db_url), lang, versions,
                            model_ids(settings.source_language, lang), pressflow.__version__, raise_on_failure=True)


def unquoted(value):
    return value.unwrap() if isinstance(value, BaseAnnotation) else value


def model_ids(source: str, lang: str) -> list[str]:
    from pressflow.translate.engine import ArgosEngine

    try:
        return [leg.engine_id for leg in ArgosEngine().route(source, lang)]
    except ModelMissingError:
        return []  # skipped, not done: installing a model changes the key


@task(name="prepare language", task_run_name="prepare {lang}", cache_policy=StoredLanguage() + TASK_SOURCE,
      persist_result=True)
def language_task(lang: str, jobs: list[pipeline.Job], settings: Settings) -> pipeline.PrepareReport:
    """Plan, translate and store one language; its own steps are tasks too (retries, timeouts)."""
    return pipeline.prepare_language(lang, jobs, settings, TaskSteps(threads=on_threads()))


def on_threads() -> bool:
    return isinstance(FlowRunContext.get().task_runner, ThreadPoolTaskRunner)


def data(value):
    """Mark a task argument as plain data: Prefect need not walk every record and rendered
    draft in it looking for futures (that walk was ~8% of the flow's CPU)."""
    return quote(value)


class TaskSteps(pipeline.Steps):
    """The driver's steps as Prefect tasks. Called directly (not submitted), a task runs here
    in the flow's process; only `run_units` maps over the task runner, on threads or Dask."""

    def __init__(self, threads: bool):
        super().__init__()
        self.threads = threads
        self.unit_size = LOCAL_UNIT_SIZE if threads else CLUSTER_UNIT_SIZE
        if not threads:  # a cluster's workers load models of their own: every language at once
            self.lanes = None

    def load(self, paths):
        return load_task(data(paths))

    def register(self, events, settings):
        return register_task(data(events), settings)

    def plan(self, languages, jobs, settings):
        return plan_task(languages, data(jobs), settings)

    def run_units(self, units):
        # Dask unpacks tuples in arguments, and `quote` is one: units go bare to a cluster.
        futures = translate_unit_task.map([data(unit) if self.threads else unit for unit in units])
        futures.wait()
        return [future.result(raise_on_failure=False) for future in futures]  # a failure fails its language

    def store(self, works, settings):
        return store_task(data(works), settings)

    def language(self, lang, jobs, settings):
        state = language_task(lang, data(jobs), settings, return_state=True)
        if state.name == "Cached":  # stored by an earlier run: nothing added by this one
            return pipeline.PrepareReport()
        return state.result()


def run_name() -> str:
    """ "prepare 3 releases", or "prepare events/, extra.yaml" for record files."""
    parameters = flow_run.parameters
    events, paths = parameters.get("events") or [], parameters.get("paths") or []
    parts = [f"{len(events)} release{'s' if len(events) != 1 else ''}"] if events else []
    if paths:
        shown = ", ".join(Path(p).name + ("/" if not Path(p).suffix else "") for p in paths[:3])
        parts.append(shown + (f" and {len(paths) - 3} more" if len(paths) > 3 else ""))
    return "prepare " + (" + ".join(parts) or "nothing")


@flow(name="pressflow-prepare", flow_run_name=run_name, log_prints=True, task_runner=task_runner(),
      validate_parameters=True)
def prepare_flow(events: list[Event] = [], paths: list[str] | None = None,  # noqa: B006 - never mutated
                 out_dir: str | None = None) -> pipeline.PrepareReport:
    """Validate event records (given as records or as file paths), render and translate them,
    and store every draft for review.

    Returns the run's `PrepareReport`: releases, languages, skipped and failed languages with
    reasons, and refused records. Ends "Completed with failures" when any failed.

    Args:
        events: Event records to prepare (the Prefect UI shows a form for each). A plain list,
            not `list[Event] | None`: under `anyOf` Prefect's validator reports only that the
            list matches no schema; under a list it names the record and field at fault.
        paths: Record files or folders (YAML/JSON) on the worker, relative to the project.
        out_dir: Output folder holding the draft store; default PRESSFLOW_OUT, else outputs/.
    """
    settings = settings_for(out_dir)
    check_reachable(settings)
    flush_notices(settings)  # what an earlier run stored but could not tell
    pipeline.on_wait(lambda message: show_state(WAITING, message),
                     lambda: show_state("Running", "holds the store; preparing"), owner="flow")
    report = pipeline.prepare_sources(settings, paths=[Path(p) for p in paths or []], events=events or [],
                                      steps=TaskSteps(threads=on_threads()))
    create_artifacts(report)
    report.notices_waiting = flush_notices(settings).waiting  # drafts awaiting review, languages failed
    return final_state(report)


# A run waiting for another prepare on its store is Running in Prefect's eyes; its state's name
# says what it waits for (bounded by PRESSFLOW_LOCK_WAIT_MINUTES), then goes back to Running.
WAITING = "Waiting for another prepare"


def show_state(name: str, message: str) -> None:
    """Show this flow run as Running under `name` (in the UI's run list and `prefect flow-run ls`)."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(context.flow_run.id, Running(name=name, message=message), force=True)
    except Exception as exc:  # showing the wait is a courtesy: the prepare goes on without it
        get_run_logger().warning(f"could not show the state {name!r}: {exc}")


def final_state(report: pipeline.PrepareReport):
    if report.ok:
        waiting = f"; {report.notices_waiting} notice(s) wait for the next run" if report.notices_waiting else ""
        return Completed(data=report, message=f"{report.drafts_added} drafts stored{waiting}")
    return completed_with_failures(report, failure_message(report))


def failure_message(report: pipeline.PrepareReport) -> str:
    """One sentence naming what failed, e.g. "2 records refused (bad.yaml); failed: forum in zh"."""
    parts = []
    if report.errors:
        parts.append(f"{len(report.errors)} record(s) refused: " + "; ".join(short(e, 100) for e in report.errors[:3]))
    failed = [f"{slug} in {lang} ({short(reason, 60)})" for slug, langs in sorted(report.failed.items())
              for lang, reason in sorted(langs.items())]
    if failed:
        parts.append("failed: " + "; ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else ""))
    return ". ".join(parts)


def short(reason: str, limit: int = 80) -> str:
    """The first line of a reason, cut to `limit` characters: a table cell, not a traceback."""
    line = reason.strip().splitlines()[0] if reason.strip() else ""
    return line if len(line) <= limit else line[:limit - 1] + "…"


def summary_rows(report: pipeline.PrepareReport) -> list[dict]:
    slugs = sorted(report.releases.keys() | report.failed.keys())
    return [{
        "release": slug,
        "record": report.releases[slug].status if slug in report.releases else "",
        "languages": ", ".join(report.releases[slug].languages) if slug in report.releases else "",
        "skipped": "; ".join(f"{k}: {short(v)}" for k, v in sorted(report.skipped.get(slug, {}).items())),
        "failed": "; ".join(f"{k}: {short(v)}" for k, v in sorted(report.failed.get(slug, {}).items())),
    } for slug in slugs]


def create_artifacts(report: pipeline.PrepareReport) -> None:
    """The summary table (short reasons, the failed column always there) and, when anything
    failed, a second artifact with every reason in full."""
    rows = summary_rows(report)
    if rows:
        create_table_artifact(key="prepare-summary", table=rows, description="Releases prepared in this run")
    if report.ok:
        return
    lines = ["# What failed in this run", ""]
    lines += [f"- refused: {error}" for error in report.errors]
    for slug, langs in sorted(report.failed.items()):
        for lang, reason in sorted(langs.items()):
            lines += [f"- **{slug}** in **{lang}**:", "", "  ```", *("  " + l for l in reason.splitlines()), "  ```"]
    create_markdown_artifact(key="prepare-failures", markdown="\n".join(lines),
                             description="Every failure of this run, in full")
