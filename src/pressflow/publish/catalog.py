"""The catalog: what is published, as feeds, index pages and the sitemap list it."""

from __future__ import annotations

import datetime as dt

from .model import Entry, newest_first


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

    def releases(self) -> list[list[Entry]]:
        by_slug: dict[str, list[Entry]] = {}
        for entry in sorted(self.entries, key=lambda e: (e.slug, e.lang)):
            by_slug.setdefault(entry.slug, []).append(entry)
        return [by_slug[slug] for slug in sorted(by_slug)]
