"""Prefect events saying what a run did to each release, for automations to act on.

The flows call `emit_prepare_events` and `emit_publish_events` with their typed reports; what
the events say is built here, by plain functions over those reports, so the flows stay thin and
the events can be checked without a server. Every event's resource is the release
(`pressflow.release.<slug>`); Prefect adds the flow run it was emitted in as a related resource.

- `pressflow.release.awaiting-review`: drafts of a release wait for review (after a prepare run
  that changed or translated it). Payload: release, title, languages, drafts (how many wait),
  review_url, message. `automations/notify-reviewers.yaml` turns it into a webhook call.
- `pressflow.release.translation-failed`: languages of a release failed (reasons by language).
- `pressflow.release.published`: a publish run put a release out, new or changed, in these
  languages (with their page URLs); a release whose text did not change emits nothing, so the
  scheduled publish every 5 minutes is silent when nothing happened.
- `pressflow.release.withdrawn`: a published release is under embargo again; its pages went.

Each payload has a one-line `message` a chat or mail relay can show as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core import db
from ..core.config import Settings
from ..drafts import store

if TYPE_CHECKING:
    from ..prepare.pipeline import PrepareReport
    from ..publish import PublishReport

AWAITING_REVIEW = "pressflow.release.awaiting-review"
TRANSLATION_FAILED = "pressflow.release.translation-failed"
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


def prepare_notices(report: PrepareReport, settings: Settings) -> list[Notice]:
    """What a prepare run tells: which releases now await review, and where languages failed.

    A release is announced only when this run changed or translated it, so re-running prepare
    over unchanged records does not tell reviewers again about drafts they already know of.
    The count and languages come from the store: every draft of the release still pending.
    """
    touched = {slug: outcome for slug, outcome in report.releases.items()
               if outcome.status != "unchanged" or set(outcome.languages) - {settings.source_language}}
    notices = []
    waiting = pending_drafts(settings, sorted(touched))
    for slug, outcome in sorted(touched.items()):
        if by_language := waiting.get(slug):
            languages = sorted(by_language)
            count = sum(by_language.values())
            link = review_link(settings, languages)
            notices.append(Notice(AWAITING_REVIEW, slug, outcome.title, {
                "release": slug, "title": outcome.title, "languages": languages, "drafts": count,
                "drafts_by_language": dict(sorted(by_language.items())), "review_url": link,
                "message": f"{count} draft{'s' if count != 1 else ''} of “{outcome.title}” await review "
                           f"({', '.join(languages)}): {link}"}))
    for slug, failed in sorted(report.failed.items()):
        title = report.releases[slug].title if slug in report.releases else slug
        languages = sorted(failed)
        notices.append(Notice(TRANSLATION_FAILED, slug, title, {
            "release": slug, "title": title, "languages": languages,
            "reasons": {lang: failed[lang][:REASON_CHARS] for lang in languages},
            "message": f"Translating “{title}” failed in {', '.join(languages)}: "
                       + "; ".join(f"{lang}: {failed[lang].splitlines()[0][:120] if failed[lang] else ''}"
                                   for lang in languages)}))
    return notices


def pending_drafts(settings: Settings, slugs: list[str]) -> dict[str, dict[str, int]]:
    """slug -> language -> how many of its drafts wait for review."""
    counts: dict[str, dict[str, int]] = {}
    if not slugs:
        return counts
    with db.session_scope(settings.db_url) as session:
        for slug in slugs:
            for row in store.draft_summaries(session, status=store.PENDING, slug=slug):
                counts.setdefault(slug, {}).setdefault(row.lang, 0)
                counts[slug][row.lang] += 1
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


def emit(notices: list[Notice]) -> None:
    from prefect.events import emit_event

    for notice in notices:
        emit_event(event=notice.event, resource=notice.resource, payload=notice.payload)


def emit_prepare_events(report: PrepareReport, settings: Settings) -> list[Notice]:
    notices = prepare_notices(report, settings)
    emit(notices)
    return notices


def emit_publish_events(report: PublishReport, settings: Settings,
                        before: dict[tuple[str, str], str]) -> list[Notice]:
    notices = publish_notices(report, settings, before)
    emit(notices)
    return notices
