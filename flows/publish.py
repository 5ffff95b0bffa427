"""Publish flow: approved drafts to feeds, pages and outbound files.

Safe to run on a schedule: it publishes what is approved and past its embargo, writes only
what changed, and takes a lock so overlapping runs cannot interleave.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.artifacts import create_table_artifact

from pressflow.config import Settings
from pressflow.publish import PublishReport, publish


@task(name="publish", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)  # reads the store: never cached
def publish_task(settings: Settings, now: dt.datetime | None) -> PublishReport:
    return publish(settings, now=now)


@flow(name="pressflow-publish", log_prints=True)
def publish_flow(out_dir: str | None = None, now: dt.datetime | None = None) -> dict:
    """Publish every approved release whose time has come.

    Args:
        out_dir: Output folder (feeds, pages, outbox, draft store); default PRESSFLOW_OUT, else outputs/.
        now: Publish as if it were this time (for tests and previews); default: the clock.
    """
    report = publish_task(Settings().with_out(out_dir), now)
    rows = [{"release": slug, "languages": ", ".join(report.releases.get(slug, [])),
             "skipped": "; ".join(f"{k}: {v}" for k, v in sorted(report.skipped.get(slug, {}).items())),
             "failed": "; ".join(f"{k}: {v}" for k, v in sorted(report.failed.get(slug, {}).items()))}
            for slug in sorted(report.releases.keys() | report.failed.keys())]
    if rows:
        create_table_artifact(key="publish-summary", table=rows,
                              description=f"{report.files_written} files written, {report.files_unchanged} unchanged")
    return {"releases": report.releases, "embargoed": report.embargoed, "skipped": report.skipped,
            "failed": report.failed,
            "files_written": report.files_written, "files_unchanged": report.files_unchanged}
