"""Publish flow: approved drafts to feeds, pages and outbound files.

Safe to run on a schedule: it publishes what is approved and past its embargo, writes only
what changed, and takes a lock so overlapping runs cannot interleave.

The flow always publishes as of the clock. It has no `now` parameter on purpose: a deployment's
parameters are a form anyone with access to the Prefect UI can fill in, and a time in the
future there would publish embargoed releases into the real output folder. Tests and previews
call `pressflow.publish.publish(settings, now=...)` instead.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.artifacts import create_table_artifact

from pressflow.config import Settings
from pressflow.publish import PublishReport, publish


@task(name="publish", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)  # reads the store: never cached
def publish_task(settings: Settings) -> PublishReport:
    return publish(settings)


@flow(name="pressflow-publish", log_prints=True)
def publish_flow(out_dir: str | None = None) -> dict:
    """Publish every approved release whose time has come.

    Args:
        out_dir: Output folder (feeds, pages, outbox, draft store); default PRESSFLOW_OUT, else outputs/.
    """
    report = publish_task(Settings().with_out(out_dir))
    create_summary_artifact(report)
    return {"releases": report.releases, "embargoed": report.embargoed, "skipped": report.skipped,
            "failed": report.failed, "kept": report.kept, "withdrawn": report.withdrawn,
            "files_written": report.files_written, "files_unchanged": report.files_unchanged}


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
