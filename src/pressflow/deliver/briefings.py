"""Embargoed briefings: what e-mail lists marked `embargoed_briefings: true` get before an
embargo ends (docs/channels.md, "Embargoed briefings").

The published outbox exists only after the embargo, so briefings are read from the store: a
release whose `publish_at` is still ahead, in each language whose press release has an approved
revision (`store.publishable_drafts_of`: one record version per language, as publish reads
it). Its text and HTML are rendered by publish's own outbox writer, exactly as
`press-release.txt` and `press-release.html` will be when the embargo ends; nothing is written.
Social channels never get briefings: the runner asks only marked e-mail lists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..core import db
from ..core.config import Settings
from ..drafts import store
from .base import Message

BRIEFING = "briefing"  # the deliveries table's kind for a briefing
# Rendered as if published at the embargo: a page's dates say when its embargo lifts, which is
# what the published page will say too, and the text does not change from one run to the next.
_NEVER = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


def embargo_of(release: store.Release) -> dt.datetime:
    """The release's embargo in the record's own offset (the store keeps it in UTC)."""
    written = (release.record or {}).get("publish_at")
    if isinstance(written, str):
        try:
            moment = dt.datetime.fromisoformat(written.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None and moment == release.publish_at:
            return moment
    return release.publish_at


def read_briefings(settings: Settings, now: dt.datetime, *, release: str | None = None
                   ) -> dict[tuple[str, str], Message]:
    """(release, language) -> the briefing, for every approved release still under embargo."""
    from ..publish import PublishReport, collect
    from ..publish.outbox import Outbox
    from ..publish.writer import Output

    output = Output(settings, PublishReport())  # renders only: nothing is staged or written
    outbox, site = Outbox(output), output.site
    found: dict[tuple[str, str], Message] = {}
    with db.session_scope(settings.db_url) as session:
        slugs = [s for s in store.embargoed_releases(session, now) if release in (None, s)]
        embargoes = {r.slug: embargo_of(r) for r in store.release_rows(session, slugs)}
        for batch in collect(session, _NEVER, slugs):
            for ready in batch:
                for item in ready.items:
                    # A web image is shown as the page will show it; a local one is not on the
                    # site before the embargo, so the briefing goes without it.
                    image = output.image(item) if isinstance(item.image, str) else None
                    files = outbox.release_files(item, [item], image)
                    text = files[site.outbox_path(item.slug, item.lang, "press-release.txt")]
                    html = files[site.outbox_path(item.slug, item.lang, "press-release.html")]
                    found[(item.slug, item.lang)] = Message(
                        item.slug, item.lang, BRIEFING, text, html, item.title,
                        site.page_url(item.lang, item.slug), None, embargo=embargoes[item.slug])
    return found


def still_out(settings: Settings, now: dt.datetime, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Of these (release, language) briefings no longer due, those whose embargo simply ended:
    the language is still approved and its `publish_at` has passed (the release itself goes out
    now). The others were withdrawn while under embargo (approval taken back, release gone)."""
    slugs = sorted({slug for slug, _ in keys})
    with db.session_scope(settings.db_url) as session:
        ended = {r.slug for r in store.release_rows(session, slugs) if r.publish_at is None or r.publish_at <= now}
        approved = store.publishable_drafts_of(session, sorted(ended))
    return {(slug, lang) for slug, lang in keys if slug in ended and lang in approved.get(slug, {})}
