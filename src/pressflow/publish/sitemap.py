"""`sitemap.xml`: every page, each with its translations as `xhtml:link` alternates."""

from __future__ import annotations

from .writer import Catalog, Writer


class Sitemap(Writer):
    def everything(self, catalog: Catalog) -> None:
        pages = []
        for entries in catalog.releases():
            alternates = [{"lang": e.lang, "url": self.site.page_url(e.lang, e.slug)} for e in entries]
            for entry in entries:
                pages.append({"url": self.site.page_url(entry.lang, entry.slug), "lastmod": entry.updated.isoformat(),
                              "alternates": alternates if len(entries) > 1 else []})
        languages = catalog.languages()
        indexes = [{"lang": lang, "url": self.site.index_url(lang)} for lang in languages]
        for lang in languages:
            pages.append({"url": self.site.index_url(lang), "lastmod": catalog.last_updated(lang).isoformat(),
                          "alternates": indexes if len(indexes) > 1 else []})
        self.write(self.site.sitemap_path(), self.renderer.html("sitemap.xml.j2", pages=pages))
