"""The sitemap: every page, each with its translations as `xhtml:link` alternates.

`sitemap.xml` is one sitemap while everything fits one file of PART_URLS URLs and PART_BYTES
bytes; past that it is a sitemap index of `sitemaps/sitemap-N.xml` parts (the protocol allows
50,000 URLs and 50 MB a file; smaller parts keep a rewrite cheap). Each release's lines are kept
in the store with the part that holds them: releases join the last part as they are first
published, so a new release rewrites the last part and the index, never the whole sitemap.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr, escape

from . import ledger
from .model import Changes, Entry
from ..core.site import SITEMAP_MAX_URLS
from .writer import Writer

URLSET = ('<?xml version="1.0" encoding="UTF-8"?>\n'
          '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:xhtml="http://www.w3.org/1999/xhtml">\n')
INDEX_PART = 0  # the part with the language index pages


class Sitemap(Writer):
    PART_URLS = SITEMAP_MAX_URLS
    PART_BYTES = 2_000_000  # a new release rewrites its part: a small one keeps that cheap

    def __init__(self, output):
        super().__init__(output)
        self.changed_parts: set[int] = set()  # parts whose releases changed in this run
        self._parts: dict[int, list[int]] | None = None  # part -> [URLs, bytes], read once a run
        self._last_position: int | None = None  # of the release last published for the first time

    def _sizes(self, session) -> dict[int, list[int]]:
        if self._parts is None:
            self._parts = {part: list(size) for part, size in ledger.sitemap_parts(session).items()}
        return self._parts

    def _account(self, session, part: int, urls: int, size: int) -> None:
        sizes = self._sizes(session).setdefault(part, [0, 0])
        sizes[0] += urls
        sizes[1] += size

    def releases(self, session, entries: dict[str, list[Entry]]) -> None:
        """Keep these releases' sitemap lines (slug -> its entries; none: no longer published),
        each in its part."""
        places = ledger.sitemap_places(session, list(entries))
        if self._last_position is None:
            self._last_position = ledger.last_sitemap_position(session)
        rows, gone = [], []
        for slug, listed in entries.items():
            place = places.get(slug)
            if place is not None:
                part, urls, size = place
                self._account(session, part, -urls, -size)
                self.changed_parts.add(part)
            if not listed:
                if place is not None:
                    gone.append(slug)
                continue
            xml = release_lines(self.site, listed)
            part = place[0] if place is not None else None
            if part is None or self._overflows(session, part, len(listed), len(xml)):
                part = self._last_part_with_room(session, len(listed), len(xml))
            self._account(session, part, len(listed), len(xml))
            position = None
            if place is None:
                self._last_position += 1
                position = self._last_position
            rows.append({"slug": slug, "position": position, "sitemap_part": part, "urls": len(listed),
                         "sitemap_xml": xml, "size": len(xml), "updated_at": max(e.updated for e in listed)})
            self.changed_parts.add(part)
        ledger.remove_sitemap_lines(session, gone)
        ledger.save_sitemap_lines(session, rows)

    def _overflows(self, session, part: int, more_urls: int, more_bytes: int) -> bool:
        urls, size = self._sizes(session).get(part, (0, 0))
        return urls + more_urls > self.PART_URLS or size + more_bytes > self.PART_BYTES

    def _last_part_with_room(self, session, urls: int, size: int) -> int:
        parts = {part: size for part, size in self._sizes(session).items() if size[0] > 0}
        last = max(parts, default=1)
        used_urls, used_bytes = parts.get(last, (0, 0))
        fits = used_urls + urls <= self.PART_URLS and used_bytes + size <= self.PART_BYTES
        return last if fits or not used_urls else last + 1

    def everything(self, catalog, changes: Changes) -> None:
        session = catalog.session
        parts = ledger.sitemap_parts(session)
        indexes = self._index_lines(catalog)
        one_file = len(parts) <= 1 and sum(u for u, _ in parts.values()) + indexes[1] <= self.PART_URLS
        if one_file:
            lines = list(ledger.sitemap_lines(session, None))
            self.write(self.site.sitemap_path(), URLSET + "".join(lines) + indexes[0] + "</urlset>\n")
            for part in range(INDEX_PART, max(parts, default=0) + 1):  # a sitemap index's parts, from before
                self.output.staging.remove(self.site.sitemap_path(part))
            return
        for part in sorted(self.changed_parts if not changes.everything else parts):
            if part in parts:
                lines = ledger.sitemap_lines(session, part)
                self.write(self.site.sitemap_path(part), URLSET + "".join(lines) + "</urlset>\n")
            else:
                self.output.staging.remove(self.site.sitemap_path(part))
        self.write(self.site.sitemap_path(INDEX_PART), URLSET + indexes[0] + "</urlset>\n")
        updated = ledger.sitemap_part_updated(session)
        newest = max(updated.values()).isoformat()
        index = ['<?xml version="1.0" encoding="UTF-8"?>\n',
                 '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n',
                 f"<sitemap>\n<loc>{escape(self.site.sitemap_url(INDEX_PART))}</loc>\n<lastmod>{newest}</lastmod>\n</sitemap>\n"]
        for part in sorted(parts):
            index.append(f"<sitemap>\n<loc>{escape(self.site.sitemap_url(part))}</loc>\n"
                         f"<lastmod>{updated[part].isoformat()}</lastmod>\n</sitemap>\n")
        self.write(self.site.sitemap_path(), "".join(index) + "</sitemapindex>\n")

    def _index_lines(self, catalog) -> tuple[str, int]:
        """Each language's front index page and subscribe page, with the others as alternates."""
        languages = catalog.languages()
        alternates = self.site.alternates({lang: self.site.index_url(lang) for lang in languages})
        lines = [_url(self.site.index_url(lang), catalog.last_updated(lang).isoformat(), alternates)
                 for lang in languages]
        subscribe = self.site.alternates({lang: self.site.subscribe_url(lang) for lang in languages})
        lines += [_url(self.site.subscribe_url(lang), catalog.last_updated(lang).isoformat(), subscribe)
                  for lang in languages]
        return "".join(lines), len(lines)


def release_lines(site, entries: list[Entry]) -> str:
    """A release's `<url>` elements: one per language, each with exactly the alternates its page
    declares (x-default included)."""
    entries = sorted(entries, key=lambda e: e.lang)
    alternates = site.alternates({e.lang: site.page_url(e.lang, e.slug) for e in entries})
    return "".join(_url(site.page_url(e.lang, e.slug), e.updated.isoformat(), alternates) for e in entries)


def _url(loc: str, lastmod: str, alternates: list[dict[str, str]]) -> str:
    links = "".join(f'<xhtml:link rel="alternate" hreflang={quoteattr(a["lang"])} href={quoteattr(a["url"])}/>\n'
                    for a in alternates)
    return f"<url>\n<loc>{escape(loc)}</loc>\n<lastmod>{lastmod}</lastmod>\n{links}</url>\n"
