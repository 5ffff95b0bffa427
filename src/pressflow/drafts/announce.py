"""Approvals as Prefect events: `pressflow.release.approved`, and a publish run at an embargo.

Every approval goes through `service.decide_in` (the CLI, the review page, `run --auto-approve`),
which hands the decided drafts to `note_approved`. Once the transaction commits, one event per
release tells Prefect what was approved; the `publish` deployment's trigger (prefect.yaml) turns
a burst of them into one publish run. A release under embargo also gets a publish run scheduled
at its `publish_at`, named and keyed by release and time, so approving it twice makes one run.

Without a Prefect server configured this does nothing, and Prefect is never imported: a
command a person types costs what its work costs. A server that cannot be reached, or answers
too slowly, costs an approval at most a few seconds (ANNOUNCE_TIMEOUT a request): the decision
is committed; the scheduled poll publishes it later.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from ..core.config import prefect_api_url
from . import store

log = logging.getLogger(__name__)

APPROVED = "pressflow.release.approved"
PUBLISH_DEPLOYMENT = "pressflow-publish/publish"
_PENDING_KEY = "pressflow.approved"  # in session.info: what this transaction approved, by release
# Every approval carries this label with one value: the publish trigger (prefect.yaml) buckets
# events by it (`for_each`), so approvals of any releases fall in one bucket, one run. (Without
# `for_each` a proactive trigger keeps a bucket open at all times and fires whenever a window
# passes with no approval, i.e. all the time.)
DEBOUNCE_LABEL = "pressflow.debounce"
# Seconds each request to Prefect may take while a reviewer waits for their approval to return.
# Prefect's own client waits 60 s and retries 5 times: a server that accepts and never answers
# held an approval (CLI or review page) for minutes. An approval that misses Prefect is
# published by the hourly poll, an embargoed one at the first poll after its embargo.
ANNOUNCE_TIMEOUT = 5.0


@dataclass
class Approved:
    """What one transaction approved of one release."""

    slug: str
    title: str
    publish_at: dt.datetime | None
    reviewers: set[str] = field(default_factory=set)
    languages: set[str] = field(default_factory=set)

    def event(self) -> dict:
        languages, reviewers = sorted(self.languages), sorted(self.reviewers)
        return {
            "event": APPROVED,
            "resource": {"prefect.resource.id": f"pressflow.release.{self.slug}",
                         "prefect.resource.name": self.title, "pressflow.release": self.slug,
                         DEBOUNCE_LABEL: "publish"},
            "payload": {"release": self.slug, "title": self.title, "languages": languages,
                        "reviewer": ", ".join(reviewers),
                        "publish_at": self.publish_at.isoformat() if self.publish_at else None,
                        "message": f"{', '.join(reviewers)} approved “{self.title}” ({', '.join(languages)})"},
        }


def note_approved(session: Session, drafts: list[store.Draft], reviewer: str) -> None:
    """Remember these approved drafts; announce them when `session` commits (never if it rolls back)."""
    if not drafts or prefect_api_url() is None:
        return
    pending: dict[str, Approved] | None = session.info.get(_PENDING_KEY)
    if pending is None:
        pending = session.info[_PENDING_KEY] = {}
        sa_event.listen(session, "after_commit", _announce_pending, once=True)
        sa_event.listen(session, "after_rollback", _forget_pending, once=True)
    for draft in drafts:
        release = draft.release
        entry = pending.setdefault(draft.release_slug, Approved(draft.release_slug, release.title, release.publish_at))
        entry.reviewers.add(reviewer)
        entry.languages.add(draft.lang)


def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
    if sa_event.contains(session, "after_commit", _announce_pending):
        sa_event.remove(session, "after_commit", _announce_pending)


def _announce_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None) or {}
    if sa_event.contains(session, "after_rollback", _forget_pending):
        sa_event.remove(session, "after_rollback", _forget_pending)
    if pending:
        announce(list(pending.values()))


def announce(approvals: list[Approved], now: dt.datetime | None = None) -> None:
    """Send the events and schedule the embargoed releases' publish runs, each request bounded by
    ANNOUNCE_TIMEOUT and never retried; a Prefect failure is logged (the approval stands, and the
    scheduled poll publishes it)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_REQUEST_TIMEOUT, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

        with temporary_settings({PREFECT_API_REQUEST_TIMEOUT: ANNOUNCE_TIMEOUT, PREFECT_CLIENT_MAX_RETRIES: 0}), \
                get_client(sync_client=True) as client:
            response = client.request("POST", "/events", json=[_wire(a.event(), now) for a in approvals])
            response.raise_for_status()
            for approval in approvals:
                if approval.publish_at and approval.publish_at > now:
                    schedule_publish(client, approval.slug, approval.publish_at)
    except Exception as exc:  # noqa: BLE001 - the approval is committed whatever Prefect says
        log.warning("approval not announced to Prefect (%s: %s); the scheduled publish will pick it up",
                    type(exc).__name__, exc)


def _wire(event: dict, now: dt.datetime) -> dict:
    import uuid

    return {**event, "id": str(uuid.uuid4()), "occurred": now.isoformat(), "related": []}


def schedule_publish(client, slug: str, publish_at: dt.datetime) -> None:
    """A run of the publish deployment at the embargo: one per release and time (idempotency key)."""
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Scheduled

    try:
        deployment = client.read_deployment_by_name(PUBLISH_DEPLOYMENT)
    except ObjectNotFound:
        log.warning("no %s deployment: %s waits for the scheduled publish", PUBLISH_DEPLOYMENT, slug)
        return
    when = publish_at.astimezone(dt.timezone.utc)
    client.create_flow_run_from_deployment(
        deployment.id, state=Scheduled(scheduled_time=when),
        name=f"publish {slug} at its embargo {when:%Y-%m-%d %H:%M}",
        idempotency_key=embargo_key(slug, when), tags=["embargo"],
        parameters={"not_before": when.isoformat()})  # a worker may start it up to 10 s early


def embargo_key(slug: str, publish_at: dt.datetime) -> str:
    return f"pressflow-embargo:{slug}:{publish_at.astimezone(dt.timezone.utc).isoformat()}"
