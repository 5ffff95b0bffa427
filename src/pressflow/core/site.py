"""Every URL and path of the published layout, in one place (the contract in outputs/README.md).

Subscribers bookmark these URLs, so they never move. Render (links in posts), publishing (every
writer) and the review page (links to what was published) all take them from here.

`files`: paths relative to the output folder, as the review page serves them (`/site/...`).
`Site`: the same as absolute URLs under the site URL, and as paths inside the output folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from .files import inside

ALL_LANGUAGES = "all"  # feeds/all/: one feed with every language, each entry marked with its own
FEED_FILES = {"atom": "atom.xml", "rss": "rss.xml", "json": "feed.json"}
INDEX_PAGE_SIZE = 20  # releases per index page
SUBSCRIBE_PAGE = "subscribe.html"  # beside a language's index; no release slug can be "subscribe.html"
SITEMAP_MAX_URLS = 50_000  # the sitemap protocol's limit per file
SERVED_FOLDERS = ("feeds", "site", "sitemaps")  # what the review page serves of the output folder, under the same paths


class files:
    """Paths relative to the output folder, '/'-separated (also the review page's URL paths)."""

    @staticmethod
    def page(lang: str, slug: str) -> str:
        return f"site/{lang}/{slug}.html"

    @staticmethod
    def index(lang: str, number: int = 1) -> str:
        """Index page `number` of a language: index.html, then index-2.html, index-3.html, ..."""
        return f"site/{lang}/{index_name(number)}"

    @staticmethod
    def subscribe(lang: str) -> str:
        """A language's page telling subscribers what a feed is and which addresses to copy."""
        return f"site/{lang}/{SUBSCRIBE_PAGE}"

    @staticmethod
    def feed(name: str, kind: str) -> str:
        return f"feeds/{name}/{FEED_FILES[kind]}"

    @staticmethod
    def media(name: str) -> str:
        return f"site/media/{name}"

    @staticmethod
    def outbox(slug: str, *parts: str) -> str:
        return "/".join(("outbox", slug, *parts))

    @staticmethod
    def sitemap(number: int | None = None) -> str:
        """`sitemap.xml` (the one sitemap, or the sitemap index), or sitemap part `number`."""
        return "sitemap.xml" if number is None else f"sitemaps/sitemap-{number}.xml"


def index_name(number: int) -> str:
    return "index.html" if number == 1 else f"index-{number}.html"


def index_href(slug: str) -> str:
    """A page's link from an index page of its language (they share a folder)."""
    return f"{slug}.html"


class Site:
    """Absolute URLs and output paths of one configured site."""

    def __init__(self, settings):
        self.settings, self.out = settings, settings.out_dir
        self.base = settings.site_url
        self._folders: dict[str, Path] = {}  # folder (relative) -> where it resolves, checked once

    def url(self, relative: str) -> str:
        return f"{self.base}/{relative}"

    def path(self, relative: str) -> Path:
        """`relative` inside the output folder. Its folder is resolved once (a symlink out of the
        output folder is refused); the name needs no resolving: writes replace a link at that
        name rather than follow it."""
        folder, _, name = relative.rpartition("/")
        if name in ("", ".", ".."):
            return inside(self.out, *relative.split("/"))  # refused, or the folder itself
        return self._folder(folder) / name

    def _folder(self, relative: str) -> Path:
        """Where a folder of the layout is: its parent's place and its name, when it is no
        symlink (one lstat), else resolved in full, and refused if that leaves the output folder."""
        if relative not in self._folders:
            parent, _, name = relative.rpartition("/")
            if not relative:
                found = inside(self.out)
            elif name in (".", "..") or os.path.islink(place := self._folder(parent) / name):
                found = inside(self.out, *relative.split("/"))
            else:
                found = place
            self._folders[relative] = found
        return self._folders[relative]

    # --- URLs ---------------------------------------------------------------------------------

    def page_url(self, lang: str, slug: str) -> str:
        return self.url(files.page(lang, slug))

    def index_url(self, lang: str, number: int = 1) -> str:
        return self.url(files.index(lang, number))

    def feed_url(self, name: str, kind: str) -> str:
        return self.url(files.feed(name, kind))

    def subscribe_url(self, lang: str) -> str:
        return self.url(files.subscribe(lang))

    def media_url(self, name: str) -> str:
        return self.url(files.media(name))

    def sitemap_url(self, number: int | None = None) -> str:
        return self.url(files.sitemap(number))

    def alternates(self, urls: dict[str, str]) -> list[dict[str, str]]:
        """A page's translations ({lang: url}) as its `hreflang` links and the sitemap give them:
        none for a page in one language, else each language plus `x-default`, the source
        language's page, when there is one."""
        if len(urls) < 2:
            return []
        links = [{"lang": lang, "url": url} for lang, url in sorted(urls.items())]
        if (source := urls.get(self.settings.source_language)) is not None:
            links.append({"lang": "x-default", "url": source})
        return links

    def entry_id(self, slug: str, lang: str) -> str:
        # A tag URI (RFC 4151) never changes when the site moves, so readers never see duplicates.
        return f"tag:{self.settings.tag_authority}:{slug}/{lang}"

    def feed_id(self, name: str) -> str:
        return f"tag:{self.settings.tag_authority}:feed/{name}"

    # --- paths --------------------------------------------------------------------------------

    def page_path(self, lang: str, slug: str) -> Path:
        return self.path(files.page(lang, slug))

    def index_path(self, lang: str, number: int = 1) -> Path:
        return self.path(files.index(lang, number))

    def feed_path(self, name: str, kind: str) -> Path:
        return self.path(files.feed(name, kind))

    def subscribe_path(self, lang: str) -> Path:
        return self.path(files.subscribe(lang))

    def media_path(self, name: str) -> Path:
        return self.path(files.media(name))

    def outbox_path(self, slug: str, *parts: str) -> Path:
        return self.path(files.outbox(slug, *parts))

    def sitemap_path(self, number: int | None = None) -> Path:
        return self.path(files.sitemap(number))

    def site_languages(self) -> list[str]:
        """Languages that have a folder of pages on disk (from this run or earlier ones)."""
        site = self.out / "site"
        return sorted(d.name for d in site.iterdir() if d.is_dir() and d.name != "media") if site.is_dir() else []

    def feed_languages(self) -> set[str]:
        """The languages that have feeds on disk, from earlier runs."""
        feeds = self.out / "feeds"
        if not feeds.is_dir():
            return set()
        return {d.name for d in feeds.iterdir() if d.name != ALL_LANGUAGES and (d / "atom.xml").is_file()}
