"""The publish flow: approved drafts to feeds, pages and outbound files.

Safe to run on a schedule: it publishes what is approved and past its embargo, writes only
what changed, and takes a lock so overlapping runs cannot interleave.

The flow always publishes as of the clock. It has no `now` parameter on purpose: a deployment's
parameters are a form anyone with access to the Prefect UI can fill in, and a time in the
future there would publish embargoed releases into the real output folder. Tests and previews
call `pressflow.publish.publish(settings, now=...)` instead.

A run in which a language could not be published (or a file not written) ends in the state
"Completed with failures", its message naming them, and emits an event saying so.

Runs take the one slot of the `pressflow-publish` global concurrency limit (leased; see
`pressflow.flows.publish_slot`): `publish` and `publish-scheduled` never run at once.
"""

from __future__ import annotations

import datetime as dt
import time

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from pressflow.core.config import Settings
from pressflow.publish import PublishReport, publish
from pressflow.flows import can_pass, completed_with_failures, publish_slot, settings_for
from pressflow.flows.events import emit_publish_events, flush_notices, publications

# A worker starts a scheduled run up to PREFECT_WORKER_PREFETCH_SECONDS (10 s) early, so a run
# scheduled at an embargo waits out the rest itself; a `not_before` further off than this is a
# mistake in the form, not something to hold a process for.
LONGEST_WAIT = dt.timedelta(minutes=5)

# Publishing waits for the publish lock (another run may hold it) and writes every changed file;
# an hour is far beyond any real run, and frees a schedule slot held by a hung one.
PUBLISH_TIMEOUT = 60 * 60


@task(name="publish", timeout_seconds=PUBLISH_TIMEOUT, retries=2, retry_delay_seconds=5,
      retry_condition_fn=can_pass, cache_policy=NO_CACHE)  # reads the store: never cached
def publish_task(settings: Settings) -> PublishReport:
    return publish(settings)


def run_name() -> str:
    return "publish " + dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


@flow(name="pressflow-publish", flow_run_name=run_name, log_prints=True)
def publish_flow(out_dir: str | None = None, not_before: dt.datetime | None = None) -> PublishReport:
    """Publish every approved release whose time has come.

    Args:
        out_dir: Output folder (feeds, pages, outbox, draft store); default PRESSFLOW_OUT, else outputs/.
        not_before: Start publishing no earlier than this (at most 5 minutes ahead); a run scheduled
            at an embargo passes the embargo, as a worker may start it a few seconds early.
    """
    settings = settings_for(out_dir)
    wait_until(not_before)
    flush_notices(settings)  # what a prepare run stored but could not tell (its server was down)
    with publish_slot():  # shared with every other publish run, however it was started
        before = publications(settings)  # to tell what this run put out new or changed
        report = publish_task(settings)
    for warning in report.warnings:  # e.g. the site address left at its loopback default
        get_run_logger().warning(warning)
    create_summary_artifact(report)
    emit_publish_events(report, settings, before)  # releases published or withdrawn
    return final_state(report)


def wait_until(not_before: dt.datetime | None) -> None:
    """Sleep until `not_before`; it can only delay a run, never publish early, so it is safe in a form."""
    if not_before is None:
        return
    if not_before.tzinfo is None:
        raise ValueError(f"not_before {not_before.isoformat()} has no time zone offset")
    left = not_before - dt.datetime.now(dt.timezone.utc)
    if left > LONGEST_WAIT:
        raise ValueError(f"not_before {not_before.isoformat()} is {left} away (at most {LONGEST_WAIT}): "
                         "schedule the run for that time instead")
    if left > dt.timedelta(0):
        get_run_logger().info("waiting %.1f s for %s (the run started early)", left.total_seconds(), not_before)
        time.sleep(left.total_seconds())


def final_state(report: PublishReport):
    message = f"{report.files_written} files written, {report.files_unchanged} unchanged"
    failed = [f"{slug} in {lang} ({reason.splitlines()[0][:60] if reason else ''})"
              for slug, langs in sorted(report.failed.items()) for lang, reason in sorted(langs.items())]
    if not (failed or report.errors):
        return Completed(data=report, message=message)
    named = "; ".join([*report.errors[:3], *failed[:5]])
    return completed_with_failures(report, f"not published: {named}. {message}")


def create_summary_artifact(report: PublishReport) -> None:
    """One row per release this run published, failed or withdrew, as a table in the Prefect UI."""
    withdrawn = set(report.withdrawn)
    rows = [{"release": slug, "languages": ", ".join(report.releases.get(slug, [])),
             "skipped": "; ".join(f"{k}: {v}" for k, v in sorted(report.skipped.get(slug, {}).items())),
             "failed": "; ".join(f"{k}: {v}" for k, v in sorted(report.failed.get(slug, {}).items())),
             "withdrawn": "under embargo again: pages and outbound files removed" if slug in withdrawn else ""}
            for slug in sorted(report.releases.keys() | report.failed.keys() | withdrawn)]
    if rows:
        create_table_artifact(key="publish-summary", table=rows,
                              description=f"{report.files_written} files written, {report.files_unchanged} unchanged")
