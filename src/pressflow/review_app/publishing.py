"""What approving does: publish at once, or leave it to the scheduled publish deployment.

- "now", with a Prefect server configured (PREFECT_API_URL): start a run of the `publish`
  deployment of prefect.yaml, so the run, its logs and artifacts show in the Prefect UI and a
  worker does the writing;
- "now", without a Prefect server: publish in this process with `pressflow.publish.publish`
  (the publish flow's own work; an ephemeral Prefect server per click would only add seconds);
- "scheduled": do nothing; the `publish-scheduled` deployment picks approved drafts up.

PRESSFLOW_PUBLISH_ON_APPROVE=0 selects "scheduled"; the default is "now".
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import Settings

DEPLOYMENT = "pressflow-publish/publish"
SCHEDULED_DEPLOYMENT = "pressflow-publish/publish-scheduled"


@dataclass(frozen=True)
class PublishMode:
    on_approve: bool
    via_prefect: bool

    def describe(self) -> str:
        if not self.on_approve:
            return (f"Approved drafts are published by the scheduled deployment {SCHEDULED_DEPLOYMENT} "
                    "(every 5 minutes); approving does not publish by itself.")
        if self.via_prefect:
            return f"Approving publishes at once through the Prefect deployment {DEPLOYMENT}."
        return "Approving publishes at once, from this server (no Prefect server is configured)."


def prefect_api_url() -> str | None:
    """The configured Prefect API (environment or Prefect profile), if any."""
    try:
        from prefect.settings import get_current_settings

        return get_current_settings().api.url or None
    except Exception:  # a broken Prefect profile must not take the review page down
        return os.environ.get("PREFECT_API_URL") or None


def mode_from_environment() -> PublishMode:
    on_approve = os.environ.get("PRESSFLOW_PUBLISH_ON_APPROVE", "1").lower() not in ("0", "false", "no")
    return PublishMode(on_approve=on_approve, via_prefect=prefect_api_url() is not None)


def publish_now(settings: Settings, mode: PublishMode) -> str:
    """Publish approved drafts as the mode says; returns a sentence for the reviewer."""
    if mode.via_prefect:
        from prefect.deployments import run_deployment

        run = run_deployment(DEPLOYMENT, parameters={"out_dir": str(settings.out_dir.resolve())}, timeout=0)
        return f"Publishing started: Prefect flow run {run.name} of {DEPLOYMENT}."
    from ..publish import publish

    report = publish(settings)
    published = sum(len(langs) for langs in report.releases.values())
    return (f"Published {published} release language(s): {report.files_written} files written, "
            f"{report.files_unchanged} unchanged.")
