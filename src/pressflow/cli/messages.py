"""What the CLI says about an outcome, one line each, worded for the people who run it.

Kept apart from the commands (`cli/__init__.py`) so the wording is tested without a terminal and the CLI stays a thin
layer of parsing and printing.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.config import Settings


def prepared(slug: str, outcome) -> str:
    """`prepared SLUG: en (unchanged), zh (9 new drafts)`: the source language's state, and what
    this run added in each target language (a model installed since the last run adds some).

    `outcome`: the release's `pipeline.ReleaseOutcome` (title, status, languages, added)."""
    parts = []
    for lang in outcome.languages:
        if lang in outcome.added:
            count = outcome.added[lang]
            parts.append(f"{lang} ({count} new draft{'s' if count != 1 else ''})")
        elif outcome.status in ("new", "changed", "unchanged"):  # the source language, stored at registration
            parts.append(f"{lang} ({outcome.status})")
        else:
            parts.append(lang)
    only = ""
    if getattr(outcome, "source_only", False):
        only = (f"; it will be published in {', '.join(outcome.languages)} only: the record names no countries "
                "and no languages (add e.g. countries: [PT, BR] or languages: [pt, es] to translate it)")
    return f"prepared {slug}: {', '.join(parts)}{only}"


def embargoed(settings: "Settings", slugs: list[str]) -> list[str]:
    """`embargoed SLUG until 2030-01-01 02:00 UTC (10:00 +08:00 in the record); ...` per release."""
    from ..core import db  # imported when needed: the CLI starts fast
    from ..drafts import store

    lines = []
    with db.session_scope(settings.db_url) as session:
        for slug in slugs:
            release = store.get_release(session, slug)
            given = (release.record or {}).get("publish_at") if release else None
            lines.append(f"embargoed {slug} {embargo_until(release.publish_at if release else None, given)}")
    return lines


def embargo_until(publish_at: dt.datetime | None, given: str | None) -> str:
    """When an embargo ends, in UTC and in the offset the record gave (staff think in their own zone)."""
    if publish_at is None:
        return "(its publish_at is still in the future)"
    utc = publish_at.astimezone(dt.timezone.utc)
    text = f"until {utc:%Y-%m-%d %H:%M} UTC"
    try:
        own = dt.datetime.fromisoformat(given) if given else None
    except ValueError:
        own = None
    if own is not None and own.utcoffset() not in (None, dt.timedelta(0)):
        day = "" if own.date() == utc.date() else f"{own:%Y-%m-%d} "
        text += f" ({day}{own:%H:%M} {_offset(own)} in the record)"
    return text + "; publish again after that"


def _offset(moment: dt.datetime) -> str:
    minutes = int(moment.utcoffset().total_seconds() // 60)
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
