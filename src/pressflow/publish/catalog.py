"""The catalog: what is published, as feeds, index pages and the sitemap list it."""

from __future__ import annotations

import datetime as dt

from . import ledger
from .model import Entry, Image, newest_first


class MemoryCatalog:
    """The catalog of entries published as of this run, held in memory."""

    def __init__(self, entries: list[Entry]):
        self.entries = newest_first(entries)

    def languages(self) -> list[str]:
        return sorted({e.lang for e in self.entries})

    def _of(self, lang: str | None) -> list[Entry]:
        return [e for e in self.entries if lang is None or e.lang == lang]

    def newest(self, lang: str | None, limit: int) -> list[Entry]:
        return self._of(lang)[:limit]

    def count(self, lang: str) -> int:
        return len(self._of(lang))

    def last_updated(self, lang: str) -> dt.datetime:
        return max(e.updated for e in self._of(lang))

    def page(self, lang: str, offset: int, limit: int) -> list[Entry]:
        return self._of(lang)[offset:offset + limit]

    def oldest(self, lang: str, offset: int, limit: int) -> list[Entry]:
        return list(reversed(self._of(lang)))[offset:offset + limit]


class StoreCatalog:
    """The catalog in the store (`ledger.PublishedEntry`): feeds and index pages are rebuilt from
    it without rendering a release, whatever the archive's size."""

    def __init__(self, session):
        self.session = session
        self._languages: list[str] | None = None  # asked by every language's index pages
        self._newest: dict[tuple[str | None, int], list[Entry]] = {}  # asked by each feed format

    def languages(self) -> list[str]:
        if self._languages is None:
            self._languages = sorted(ledger.entry_languages(self.session))
        return self._languages

    def newest(self, lang: str | None, limit: int) -> list[Entry]:
        if (lang, limit) not in self._newest:
            self._newest[(lang, limit)] = [entry_of(row) for row in ledger.newest_entries(self.session, lang, limit)]
        return list(self._newest[(lang, limit)])

    def count(self, lang: str) -> int:
        return ledger.count_entries(self.session, lang)

    def last_updated(self, lang: str) -> dt.datetime:
        return ledger.last_updated(self.session, lang)

    def page(self, lang: str, offset: int, limit: int) -> list[Entry]:
        return [entry_of(row) for row in ledger.newest_entries(self.session, lang, limit, offset)]

    def oldest(self, lang: str, offset: int, limit: int) -> list[Entry]:
        """Entries `offset`.. of `lang` in order of publication (where archive index pages keep them)."""
        return [entry_of(row) for row in ledger.oldest_entries(self.session, lang, offset, limit)]


def entry_of(row: ledger.PublishedEntry) -> Entry:
    image = Image(**row.image) if row.image else None
    return Entry(row.release_slug, row.lang, row.title, row.summary, row.content_html, row.release_date,
                 row.published_at, row.updated_at, tuple(row.tags or ()), image)


def entry_columns(entry: Entry) -> dict:
    """`entry` as `ledger.PublishedEntry` column values."""
    image = entry.image
    return {"lang": entry.lang, "title": entry.title, "summary": entry.summary, "content_html": entry.content_html,
            "release_date": entry.date, "published_at": entry.published, "updated_at": entry.updated,
            "tags": list(entry.tags),
            "image": {"url": image.url, "type": image.type, "length": image.length, "alt": image.alt} if image else None}
