"""The one small interface every output implements, and what writers share.

A writer says what it writes for a release in one language (`release_files`, rendered but not
yet written, so a language that fails to render writes nothing anywhere), what it rewrites for a
language (`language`) and across languages (`everything`), and what it removes when a release
is withdrawn (`withdraw`). Adding an output format is one new writer and its template.
"""

from __future__ import annotations

import datetime as dt
import logging
import mimetypes
import re
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import orjson

from ..core.config import Settings
from ..core.files import Staging
from ..records.images import ImageError, read_image
from ..records.languages import language_name
from ..render import Renderer
from .social_image import PLATFORMS_WITHOUT_SVG, SocialImageError, svg_to_png
from .model import Changes, Entry, Image, Item, PublishReport
from ..core.site import ALL_LANGUAGES, Site

log = logging.getLogger(__name__)


class Catalog(Protocol):
    """What is published, as the per-language and across-language outputs list it."""

    def languages(self) -> list[str]: ...

    def newest(self, lang: str | None, limit: int) -> list[Entry]:
        """The newest `limit` entries of `lang` (None: every language), newest first."""

    def count(self, lang: str) -> int: ...

    def last_updated(self, lang: str) -> dt.datetime:
        """When the newest change to an entry of `lang` was published."""

    def page(self, lang: str, offset: int, limit: int) -> list[Entry]:
        """Entries `offset` to `offset + limit` of `lang`, newest first."""

    def oldest(self, lang: str, offset: int, limit: int) -> list[Entry]:
        """Entries `offset` to `offset + limit` of `lang` in order of publication, oldest first."""


class Output:
    """What a publish run's writers share: settings, layout, templates, staged files, report."""

    def __init__(self, settings: Settings, report: PublishReport):
        self.settings, self.report = settings, report
        self.site = Site(settings)
        self.renderer = Renderer(settings)
        self.staging = Staging(settings.out_dir)
        self._images: dict[str, Image | None] = {}  # slug -> its image, copied once per run
        self.session = None  # the store's session of this run (publish sets it): related releases
        self._related: dict[str, dict[str, tuple]] = {}  # lang -> slug -> (title, tags, published, date)

    RELATED_POOL = 500  # the newest entries of a language searched for releases related to a page

    def related_pool(self, lang: str) -> dict[str, tuple]:
        """Published releases of `lang` (the store's newest, and this run's so far): slug ->
        (title, tags, published, date), read once a run."""
        if lang not in self._related:
            from . import ledger

            rows = ledger.newest_entries(self.session, lang, self.RELATED_POOL) if self.session is not None else []
            self._related[lang] = {r.release_slug: (r.title, tuple(r.tags or ()), r.published_at, r.release_date)
                                   for r in rows}
        return self._related[lang]

    def remember(self, item: Item) -> None:
        """`item` is published in this run: pages rendered after it may list it as related."""
        self.related_pool(item.lang)[item.slug] = (item.title, tuple(item.tags), item.published, item.date)

    def write(self, path: Path, data: str | bytes) -> Path:
        self.report.count(self.staging.write(path, data))
        return path

    def entry(self, item: Item) -> Entry:
        """What lists of releases show of `item`: its content without the headline, which feeds
        give as the entry's title (a reader would show it twice)."""
        return Entry(item.slug, item.lang, item.title, item.summary, without_title(item.html), item.date,
                     item.published, item.updated, tuple(item.tags), self.image(item))

    def image(self, item: Item) -> Image | None:
        """The release's image for pages and enclosures (a local file is copied once per run)."""
        if item.image is None:
            return None
        if item.slug not in self._images:
            if isinstance(item.image, str):
                image = self._images[item.slug] = _remote_image(item.image, item.image_alt or "")
                if image.type == "image/svg+xml" or urlsplit(image.url).path.lower().endswith(".svg"):
                    self.report.warnings.append(
                        f"{item.slug}: the image {image.url} is an SVG on the web, which is linked, never fetched, "
                        f"so no PNG preview can be made of it; {PLATFORMS_WITHOUT_SVG} show no preview of an SVG: "
                        f"give the record a PNG or JPEG (or the SVG file itself)")
            else:
                self._images[item.slug] = self._copy_image(item.slug, item.image, item.image_alt or "")
        return self._images[item.slug]

    def _copy_image(self, slug: str, source: Path, alt: str) -> Image | None:
        """Copy a local image next to the pages: only a real image, checked by its content (an
        SVG as sanitized), named with the extension of what it is."""
        try:
            image = read_image(source)
        except (ImageError, OSError) as exc:  # prepare checked it; the file changed since
            log.error("%s: the image %s is left out: %s", slug, source, exc)
            return None
        name = f"{slug}-{source.stem}.{image.extension}"
        target = self.site.media_path(name)
        self.write(target, image.data)
        social = {}
        if image.mime == "image/svg+xml":
            social = self._social_preview(slug, source.stem, image.data)
        return Image(self.site.media_url(name), image.mime, len(image.data), alt, target, **social)

    def _social_preview(self, slug: str, stem: str, svg: bytes) -> dict:
        """A PNG of an SVG image for og:image, beside it (`<slug>-<name>-social.png`); a warning
        instead when it cannot be drawn (the page keeps its SVG, previews show none)."""
        try:
            png, width, height = svg_to_png(svg)
        except SocialImageError as exc:
            self.report.warnings.append(f"{slug}: no social preview image: {exc}; {PLATFORMS_WITHOUT_SVG} show "
                                        f"no preview of an SVG: give the record a PNG or JPEG")
            return {}
        name = f"{slug}-{stem}-social.png"
        path = self.site.media_path(name)
        self.write(path, png)
        return {"social_url": self.site.media_url(name), "social_path": path, "social_size": (width, height)}


_FIRST_H1 = re.compile(r"\A\s*<h1>.*?</h1>\n?", re.S)


def without_title(html) -> str:
    """A release's HTML without its first <h1> (its title). The HTML is markdown-it's, sanitized,
    so its <h1> is well formed."""
    return _FIRST_H1.sub("", str(html), count=1)


def indented_json(data: dict) -> bytes:
    """A JSON file as pressflow writes them (manifests, JSON Feeds): indented by two spaces, not
    ASCII-escaped, a final newline. orjson gives the bytes json.dumps(indent=2,
    ensure_ascii=False) would, without json's pure-Python indenting encoder (0.5 ms a manifest)."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"


def _remote_image(url: str, alt: str) -> Image:
    """An image on the web is linked as it is: publishing never fetches it, so its size is
    unknown, and its type is what its name suggests, if anything."""
    return Image(url, mimetypes.guess_type(urlsplit(url).path)[0], None, alt)


class Writer:
    """One kind of output. Each method does nothing unless the output has something to do then."""

    def __init__(self, output: Output):
        self.output, self.site, self.settings = output, output.site, output.settings
        self.renderer = output.renderer

    def write(self, path: Path, data: str | bytes) -> Path:
        return self.output.write(path, data)

    def release_files(self, item: Item, siblings: list[Item], image: Image | None) -> dict[Path, str]:
        """The files of `item` (rendered, not written); `siblings`: its release's published languages."""
        return {}

    def language(self, lang: str, catalog: Catalog, changes: Changes) -> None:
        """Rewrite what lists one language's releases (called for the languages `changes` touched)."""

    def everything(self, catalog: Catalog, changes: Changes) -> None:
        """Rewrite what lists every language's releases (called when anything changed)."""

    def withdraw(self, slug: str) -> list[Path]:
        """Files of a withdrawn release to remove (after everything listing it was rewritten)."""
        return []


class FeedWriter(Writer):
    """A feed format: one feed per language and one of every language (`feeds/all/`), each of
    the newest PRESSFLOW_FEED_LIMIT entries. A format writes its files in `write_feeds`."""

    def language(self, lang: str, catalog: Catalog, changes: Changes) -> None:
        self.write_feeds(catalog.newest(lang, self.settings.feed_limit), lang)

    def everything(self, catalog: Catalog, changes: Changes) -> None:
        """One feed with every language, for readers and outlets that want everything."""
        self.write_feeds(catalog.newest(None, self.settings.feed_limit), ALL_LANGUAGES)

    def write_feeds(self, entries: list[Entry], name: str) -> None:
        raise NotImplementedError

    def title(self, name: str) -> str:
        label = "all languages" if name == ALL_LANGUAGES else language_name(name, name)
        return f"{self.settings.organization} — {label}"

    def description(self, name: str) -> str:
        label = "all languages" if name == ALL_LANGUAGES else language_name(name, "en")
        return f"{self.settings.organization} press releases ({label})"

    def write_feed(self, name: str, kind: str, data: str | bytes) -> None:
        """Write a feed, noting it for the WebSub hub when it changed."""
        changed = self.output.staging.write(self.site.feed_path(name, kind), data)
        self.output.report.count(changed)
        if changed:
            self.output.report.feeds_changed.append(self.site.feed_url(name, kind))
