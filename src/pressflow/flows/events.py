"""Prefect events saying what a run did to each release, for automations to act on.

What prepare tells (drafts await review, a language failed) is written to the store's notices
outbox with the drafts or the failure (`pressflow.drafts.notices`), and sent from there by
`flush_notices`, which every flow calls (prepare at its start and end, publish at its start):
a run that dies, or a Prefect server that is down, delays a notice to the next run but never
loses it, and a notice is marked sent only once the server accepted it (POST /api/events), so
two runs at once send it once. Without a Prefect server, notices wait in the store for one
(`waiting_notices`), and are dropped unsent after `notices.KEEP` (the review queue lists the
drafts anyway). `emit_publish_events` is called by the publish flow with its typed report.
What the events say is built here, by plain functions, so the flows stay thin and the events
can be checked without a server. Every event's resource is the release
(`pressflow.release.<slug>`), related to the flow run that sent it.

- `pressflow.release.awaiting-review`: drafts of a release wait for review (a prepare run stored
  new drafts of it; one event for everything of a release a flush sends). Payload: release,
  title, languages, drafts (how many wait: every pending draft of the release, counted when
  sent), review_url, message. `automations/notify-reviewers.yaml` turns it into a webhook call.
- `pressflow.release.translation-failed`: languages of a release failed (reasons by language).
- `pressflow.release.published`: a publish run put a release out, new or changed, in these
  languages (with their page URLs); a release whose text did not change emits nothing, so the
  scheduled publish every 5 minutes is silent when nothing happened.
- `pressflow.release.withdrawn`: a published release is under embargo again; its pages went.

Each payload has a one-line `message` a chat or mail relay can show as it is.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core import db
from ..core.config import Settings, prefect_api_url
from ..drafts import notices as outbox
from ..drafts import store

if TYPE_CHECKING:
    from ..publish import PublishReport

log = logging.getLogger("pressflow")
# Spelled out (not joined from the outbox's kinds) so that the events reference finds them.
AWAITING_REVIEW = "pressflow.release.awaiting-review"
TRANSLATION_FAILED = "pressflow.release.translation-failed"
assert AWAITING_REVIEW.endswith(outbox.AWAITING_REVIEW) and TRANSLATION_FAILED.endswith(outbox.TRANSLATION_FAILED)
PUBLISHED = "pressflow.release.published"
WITHDRAWN = "pressflow.release.withdrawn"
REASON_CHARS = 300  # an event is a notice, not a log: the full reason is in the run's logs


@dataclass(frozen=True)
class Notice:
    """One event to emit: its name, the release it is about, and what it says."""

    event: str
    slug: str
    title: str
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def resource(self) -> dict[str, str]:
        return {"prefect.resource.id": f"pressflow.release.{self.slug}", "prefect.resource.name": self.title,
                "pressflow.release": self.slug}


def review_link(settings: Settings, languages: list[str]) -> str:
    """The review queue, narrowed to the one language when there is only one."""
    base = f"{settings.review_page_url}/"
    return f"{base}?lang={languages[0]}" if len(languages) == 1 else base


@dataclass
class Flushed:
    """What a flush did: events the server accepted, notices still waiting, and old ones dropped."""

    sent: int = 0
    waiting: int = 0
    dropped: int = 0


def flush_notices(settings: Settings) -> Flushed:
    """Send the outbox's waiting notices to the Prefect server, one event per release and kind.

    Claims them first (so an overlapping run sends none of them again), marks each event's
    notices sent once the server took it, and gives the rest back when it cannot: the next run
    sends them. Without a Prefect server it only counts what waits.
    """
    with db.session_scope(settings.db_url) as session:
        dropped = outbox.forget_old(session)
        if not prefect_api_url():
            return Flushed(waiting=outbox.waiting_count(session), dropped=dropped)
        token, rows = outbox.claim(session)
    sent, waiting = send_claimed(settings, token, list(grouped(rows).items()))
    return Flushed(sent=sent, waiting=waiting, dropped=dropped)


def send_claimed(settings: Settings, token: str, groups: list) -> tuple[int, int]:
    """Send each claimed group, in order, marking it sent; stop at the first the server does not
    take and give it and the rest back. Returns (events sent, notices given back)."""
    sent = 0
    for number, ((kind, slug), rows) in enumerate(groups):
        ids = [row.id for row in rows]
        try:
            with db.session_scope(settings.db_url) as session:
                notice = build_notice(session, kind, slug, rows, settings)
            if notice is not None:  # None: nothing left to tell; the notices are settled all the same
                send(notice, event_id(kind, ids))
                sent += 1
        except Exception as exc:  # the server is down or refused: keep the rest for the next run
            left = [row.id for _, rows in groups[number:] for row in rows]
            with db.session_scope(settings.db_url) as session:
                outbox.release(session, token, left)
            log.warning("%d notice(s) wait for the next run: the Prefect server did not take them (%s: %s)",
                        len(left), type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            return sent, len(left)
        with db.session_scope(settings.db_url) as session:
            outbox.mark_sent(session, token, ids)
    return sent, 0


def grouped(rows: list[outbox.Notice]) -> dict[tuple[str, str], list[outbox.Notice]]:
    """(kind, release) -> its notices, in the order they were written."""
    groups: dict[tuple[str, str], list[outbox.Notice]] = {}
    for row in rows:
        groups.setdefault((row.kind, row.release_slug), []).append(row)
    return groups


def event_id(kind: str, ids: list[int]) -> uuid.UUID:
    """The same notices make the same event id: were one sent twice (a sender died between the
    server's answer and marking it sent), the server's triggers would act on it once."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"pressflow-notice:{kind}:{','.join(map(str, sorted(ids)))}")


def waiting_notices(settings: Settings) -> list[Notice]:
    """The events the outbox's waiting notices would make now (nothing is claimed or sent)."""
    with db.session_scope(settings.db_url) as session:
        rows = outbox.unsent(session)
        built = [build_notice(session, kind, slug, group, settings) for (kind, slug), group in grouped(rows).items()]
    return [notice for notice in built if notice is not None]


def build_notice(session, kind: str, slug: str, rows: list[outbox.Notice], settings: Settings) -> Notice | None:
    """The event for a release's notices of one kind; None when nothing is left to tell (every
    draft the notices announced was reviewed before they went out)."""
    title = store.release_titles(session, [slug]).get(slug, slug)
    if kind == outbox.AWAITING_REVIEW:
        return awaiting_review(slug, title, pending_drafts(session, slug), settings)
    reasons = {row.lang: row.detail.get("reason", "") for row in rows}  # the latest reason per language
    return translation_failed(slug, title, reasons)


def awaiting_review(slug: str, title: str, by_language: dict[str, int], settings: Settings) -> Notice | None:
    if not by_language:
        return None
    languages = sorted(by_language)
    count = sum(by_language.values())
    link = review_link(settings, languages)
    return Notice(AWAITING_REVIEW, slug, title, {
        "release": slug, "title": title, "languages": languages, "drafts": count,
        "drafts_by_language": dict(sorted(by_language.items())), "review_url": link,
        "message": f"{count} draft{'s' if count != 1 else ''} of “{title}” await review "
                   f"({', '.join(languages)}): {link}"})


def translation_failed(slug: str, title: str, failed: dict[str, str]) -> Notice:
    languages = sorted(failed)
    return Notice(TRANSLATION_FAILED, slug, title, {
        "release": slug, "title": title, "languages": languages,
        "reasons": {lang: failed[lang][:REASON_CHARS] for lang in languages},
        "message": f"Translating “{title}” failed in {', '.join(languages)}: "
                   + "; ".join(f"{lang}: {failed[lang].splitlines()[0][:120] if failed[lang] else ''}"
                               for lang in languages)})


def pending_drafts(session, slug: str) -> dict[str, int]:
    """language -> how many drafts of the release wait for review."""
    counts: dict[str, int] = {}
    for row in store.draft_summaries(session, status=store.PENDING, slug=slug):
        counts[row.lang] = counts.get(row.lang, 0) + 1
    return counts


def publish_notices(report: PublishReport, settings: Settings, before: dict[tuple[str, str], str]) -> list[Notice]:
    """What a publish run tells: releases put out new or changed (their publications differ from
    `before`, the `publications` taken as the run began), and releases withdrawn under a new embargo."""
    from ..core.site import Site  # the one owner of every published URL

    site = Site(settings)
    fresh: dict[str, list[str]] = {}
    for (slug, lang), digest in sorted(publications(settings).items()):
        if slug in report.releases and lang in report.releases[slug] and before.get((slug, lang)) != digest:
            fresh.setdefault(slug, []).append(lang)
    titles = release_titles(settings, sorted(set(fresh) | set(report.withdrawn)))
    notices = []
    for slug, languages in sorted(fresh.items()):
        title = titles.get(slug, slug)
        urls = {lang: site.page_url(lang, slug) for lang in languages}
        notices.append(Notice(PUBLISHED, slug, title, {
            "release": slug, "title": title, "languages": languages, "urls": urls,
            "message": f"Published “{title}” ({', '.join(languages)}): {urls[languages[0]]}"}))
    for slug in sorted(report.withdrawn):
        title = titles.get(slug, slug)
        notices.append(Notice(WITHDRAWN, slug, title, {
            "release": slug, "title": title,
            "message": f"Withdrew “{title}”: it is under embargo again; its pages and outbound files were removed"}))
    return notices


def publications(settings: Settings) -> dict[tuple[str, str], str]:
    """(slug, language) -> content hash of every publication in the store: taken before and after
    a publish run, the difference is what the run put out new or changed (a few bytes a row)."""
    from ..publish import ledger  # imported here: a prepare run does not load publishing

    with db.session_scope(settings.db_url) as session:
        return ledger.publication_hashes(session)


def release_titles(settings: Settings, slugs: list[str]) -> dict[str, str]:
    if not slugs:
        return {}
    with db.session_scope(settings.db_url) as session:
        return store.release_titles(session, slugs)


def send(notice: Notice, event_id: uuid.UUID) -> None:
    """Post one event and return once the Prefect server accepted it (raises otherwise).

    Not `emit_event`: that queues the event for a background worker and cannot say whether it
    arrived, and a notice is marked sent only when it did."""
    from prefect.client.orchestration import get_client
    from prefect.events import Event

    event = Event(event=notice.event, resource=notice.resource, payload=notice.payload, related=run_related(),
                  id=event_id)
    with get_client(sync_client=True) as client:
        client.request("POST", "/events", json=[event.model_dump(mode="json")])


def run_related() -> list[dict[str, str]]:
    """The flow run sending, as `emit_event` would relate it (automations name it in messages)."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return []
    return [{"prefect.resource.id": f"prefect.flow-run.{context.flow_run.id}", "prefect.resource.role": "flow-run",
             "prefect.resource.name": context.flow_run.name}]


def emit(notices: list[Notice]) -> None:
    from prefect.events import emit_event

    for notice in notices:
        emit_event(event=notice.event, resource=notice.resource, payload=notice.payload)


def emit_publish_events(report: PublishReport, settings: Settings,
                        before: dict[tuple[str, str], str]) -> list[Notice]:
    notices = publish_notices(report, settings, before)
    emit(notices)
    return notices
