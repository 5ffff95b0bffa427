"""The web pages: one per release and language, and each language's index."""

from __future__ import annotations

from pathlib import Path

from babel.core import get_global

from ..languages import language_name, text_direction
from ..render import babel_locale, localized_date
from .model import Changes, Entry, Image, Item
from .site import INDEX_PAGE_SIZE, index_href, index_name
from .writer import Catalog, Writer


class Pages(Writer):
    def release_files(self, item: Item, siblings: list[Item], image: Image | None) -> dict[Path, str]:
        return {self.site.page_path(item.lang, item.slug): self.page(item, siblings, image)}

    def page(self, item: Item, siblings: list[Item], image: Image | None) -> str:
        """A release's page in one language, linking to its published translations (`siblings`)."""
        alternates = [{"lang": s.lang, "url": self.site.page_url(s.lang, s.slug), "name": language_name(s.lang, s.lang)}
                      for s in siblings]
        return self.renderer.html(
            "page.html.j2", lang=item.lang, dir=text_direction(item.lang), title=item.title, summary=item.summary,
            url=self.site.page_url(item.lang, item.slug), alternates=alternates,
            # hreflang links, as the sitemap gives them: none for a page in one language
            hreflang_links=self.site.alternates({s.lang: self.site.page_url(s.lang, s.slug) for s in siblings}),
            feed_url=self.site.feed_url(item.lang, "atom"), rss_url=self.site.feed_url(item.lang, "rss"),
            og_locale=og_locale(item.lang),
            og_alternate_locales=[og_locale(s.lang) for s in siblings if s.lang != item.lang],
            image_url=image.url if image else None, image_type=image.type if image else None,
            image_alt=item.image_alt or "",
            published=item.published.isoformat(), modified=item.updated.isoformat(), date_iso=item.date.isoformat(),
            date_text=localized_date(item.date, item.lang), body_html=item.html,
            tags=item.tags,
        )

    def language(self, lang: str, catalog: Catalog, changes: Changes) -> None:
        """The language's index pages: `index.html`, the newest releases, and archive pages of
        INDEX_PAGE_SIZE releases each in order of publication, `index-2.html` the first ones
        ever published. An archive page's releases never move to another page, so its URL stays
        good and a new release rewrites the front page only (and, every INDEX_PAGE_SIZE
        releases, the archive page it completes)."""
        size, total = INDEX_PAGE_SIZE, catalog.count(lang)
        full = total // size  # archive pages: only full ones
        before = changes.counts_before.get(lang, 0) // size
        for block in sorted(self._blocks_to_write(lang, changes, full, before)):
            self._index_page(lang, catalog.oldest(lang, (block - 1) * size, size)[::-1], block, full, total)
        # The front page's translations are the other languages' front pages, as the sitemap lists them.
        alternates = self.site.alternates({other: self.site.index_url(other) for other in catalog.languages()})
        self._index_page(lang, catalog.newest(lang, size), None, full, total, alternates if total else [])
        for block in range(full + 1, before + 1):  # fewer releases than before (withdrawn): pages gone
            self.output.staging.remove(self.site.index_path(lang, block + 1))

    @staticmethod
    def _blocks_to_write(lang: str, changes: Changes, full: int, before: int) -> set[int]:
        if changes.everything:
            return set(range(1, full + 1))
        blocks = {position // INDEX_PAGE_SIZE + 1 for position in changes.positions.get(lang, ())}
        if lang in changes.removed_from:  # later releases moved up one place
            blocks |= set(range(changes.removed_from[lang] // INDEX_PAGE_SIZE + 1, full + 1))
        if full > before and before:  # the last full page's "newer" link now points at a new page
            blocks.add(before)
        return {block for block in blocks if 1 <= block <= full}

    def _index_page(self, lang: str, entries: list[Entry], block: int | None, full: int, total: int,
                    alternates: list[dict] = ()) -> None:
        """One index page: the front page (`block` None) or archive page `block` (1 = oldest)."""
        number = 1 if block is None else block + 1  # its file: index.html, index-2.html, ...
        newer = None if block is None else (1 if block == full else block + 2)
        older = (full + 1 if full else None) if block is None else (block if block > 1 else None)
        href = lambda n: index_name(n) if n else None  # noqa: E731 - three uses, one line each
        absolute = lambda n: self.site.index_url(lang, n) if n else None  # noqa: E731
        items = [self._index_item(e, lang) for e in entries]
        page = {"number": number, "count": full + 1, "size": INDEX_PAGE_SIZE, "total": total, "items": items,
                "front": block is None, "newer_url": href(newer), "older_url": href(older),
                "prev_url": href(newer), "next_url": href(older),
                "prev_absolute_url": absolute(newer), "next_absolute_url": absolute(older)}
        html = self.renderer.html(
            "index.html.j2", lang=lang, dir=text_direction(lang), language_name=language_name(lang, lang),
            url=self.site.index_url(lang, number), page=page, releases=items, alternates=list(alternates),
            feed_url=self.site.feed_url(lang, "atom"), rss_url=self.site.feed_url(lang, "rss"),
            json_feed_url=self.site.feed_url(lang, "json"),
        )
        self.write(self.site.index_path(lang, number), html)

    def _index_item(self, entry: Entry, lang: str) -> dict:
        href = index_href(entry.slug)
        image = {"url": entry.image.url, "alt": entry.image.alt} if entry.image else None
        return {"title": entry.title, "url": href, "file": href, "absolute_url": self.site.page_url(lang, entry.slug),
                "summary": entry.summary, "date_iso": entry.date.isoformat(),
                "date_text": localized_date(entry.date, lang), "image": image}

    def withdraw(self, slug: str) -> list[Path]:
        return [self.site.page_path(lang, slug) for lang in self.site.site_languages()]


def og_locale(lang: str) -> str:
    """Open Graph wants language_TERRITORY (e.g. es_ES); CLDR's likely territory fills it in."""
    locale = babel_locale(lang)
    territory = locale.territory or _likely_territory(locale.language)
    return f"{locale.language}_{territory}" if territory else locale.language


def _likely_territory(language: str) -> str | None:
    likely = get_global("likely_subtags").get(language, "")  # e.g. 'es' -> 'es_Latn_ES'
    last = likely.split("_")[-1] if "_" in likely else ""
    return last if last.isupper() or last.isdigit() else None
