"""`sitemap.xml`: every page, each with its translations as `xhtml:link` alternates."""

from __future__ import annotations

from .writer import Catalog, Writer


class Sitemap(Writer):
    def everything(self, catalog: Catalog) -> None:
        pages = []
        # Each page with exactly the alternates it declares itself (x-default included).
        for entries in catalog.releases():
            alternates = self.site.alternates({e.lang: self.site.page_url(e.lang, e.slug) for e in entries})
            for entry in entries:
                pages.append({"url": self.site.page_url(entry.lang, entry.slug), "lastmod": entry.updated.isoformat(),
                              "alternates": alternates})
        languages = catalog.languages()
        indexes = self.site.alternates({lang: self.site.index_url(lang) for lang in languages})
        for lang in languages:
            pages.append({"url": self.site.index_url(lang), "lastmod": catalog.last_updated(lang).isoformat(),
                          "alternates": indexes})
        self.write(self.site.sitemap_path(), self.renderer.html("sitemap.xml.j2", pages=pages))
