"""The web pages: one per release and language, and each language's index."""

from __future__ import annotations

from pathlib import Path

from babel.core import get_global

from ..languages import language_name, text_direction
from ..render import babel_locale, localized_date, markdown_to_html
from .model import Image, Item
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
            date_text=localized_date(item.date, item.lang), body_html=markdown_to_html(item.markdown),
            tags=item.tags,
        )

    def language(self, lang: str, catalog: Catalog) -> None:
        """The language's index page: every release, newest first."""
        entries = catalog.page(lang, 0, catalog.count(lang))
        index = self.renderer.html(
            "index.html.j2", lang=lang, dir=text_direction(lang), language_name=language_name(lang, lang),
            url=self.site.index_url(lang),
            # its translations, as the sitemap lists them (a language left empty has none)
            alternates=self.site.alternates({other: self.site.index_url(other) for other in catalog.languages()})
            if catalog.count(lang) else [],
            feed_url=self.site.feed_url(lang, "atom"), rss_url=self.site.feed_url(lang, "rss"),
            releases=[{"file": f"{e.slug}.html", "title": e.title, "date_iso": e.date.isoformat(),
                       "date_text": localized_date(e.date, lang)} for e in entries],
        )
        self.write(self.site.index_path(lang), index)

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
