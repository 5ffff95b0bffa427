"""The deliver flow: what publish put out, to the configured channels, once (docs/channels.md).

The runner (`pressflow.deliver.runner`) does the work and its exactly-once bookkeeping; the
flow gives each delivery's network call a task of its own (named after the release, language,
account and part), emits an event per outcome, and ends "Completed with failures" when a
delivery failed or is unknown. Tasks are never retried by Prefect: the ledger retries, after
confirming on the platform, which a blind task retry would skip.

Events (resource `pressflow.delivery.<id>`, related to the release `pressflow.release.<slug>`):
`pressflow.delivery.sent`, `.failed`, `.unknown` (a person settles it: `pressflow channels
resolve`), `.deleted`. `automations/delivery.yaml` turns failed and unknown into a webhook call.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from pressflow.deliver.config import channels_file, load_channels
from pressflow.deliver.ledger import Row
from pressflow.deliver.runner import DeliverReport, Runner
from pressflow.core.errors import ConfigError
from pressflow.flows import settings_for


def delivery_payload(name: str, row: Row) -> dict:
    what = {"pressflow.delivery.sent": "sent", "pressflow.delivery.failed": "failed",
            "pressflow.delivery.unknown": "unknown (settle it with `pressflow channels resolve`)",
            "pressflow.delivery.deleted": "deleted"}[name]
    return {"delivery": row.id, "release": row.release, "language": row.language, "channel": row.channel,
            "account": row.account, "kind": row.kind, "part": row.part, "state": row.state, "url": row.url,
            "error": row.last_error,
            "message": f"{row.release} ({row.language}) to {row.account}: {what}"
                       + (f": {row.url}" if row.url and row.state == "sent" else "")
                       + (f": {row.last_error}" if row.last_error and row.state in ("failed", "unknown") else "")}


def emit_delivery_event(name: str, row: Row) -> None:
    from prefect.events import emit_event

    emit_event(event=name, resource={"prefect.resource.id": f"pressflow.delivery.{row.id}",
                                     "prefect.resource.name": f"{row.release} {row.language} {row.account}"},
               related=[{"prefect.resource.id": f"pressflow.release.{row.release}",
                         "prefect.resource.role": "release"}],
               payload=delivery_payload(name, row))


def _around_send(row: Row, call):
    name = f"deliver {row.release} {row.language} {row.account} {row.kind}:{row.part}"
    return task(name=name, cache_policy=NO_CACHE, retries=0)(lambda: call())()


def run_name() -> str:
    return "deliver " + dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


@flow(name="pressflow-deliver", flow_run_name=run_name, log_prints=True)
def deliver_flow(out_dir: str | None = None, channels: str | None = None, release: str | None = None):
    """Send what publish put out to the channels file's accounts; take back withdrawn releases.

    Args:
        out_dir: Output folder; default PRESSFLOW_OUT, else outputs/.
        channels: The channels file on the worker; default PRESSFLOW_CHANNELS.
        release: Only this release (slug).
    """
    settings = settings_for(out_dir)
    path = channels_file(channels)
    if path is None:
        raise ConfigError("no channels configured: set PRESSFLOW_CHANNELS on the worker, or pass `channels`")
    report = Runner(settings, load_channels(path), on_event=emit_delivery_event,
                    around_send=_around_send).run(release=release)
    return final_state(report)


def final_state(report: DeliverReport):
    if report.ok:
        return Completed(data=report, message=report.summary())
    named = "; ".join([*report.errors[:3], *(f"{r.release} {r.language} {r.account}: {r.state}"
                                             for r in (report.failed + report.unknown)[:5])])
    return Completed(name="Completed with failures", data=report, message=f"{named}. {report.summary()}")
