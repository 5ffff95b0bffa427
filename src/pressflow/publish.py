"""Publishing: approved drafts to feeds, pages and outbound files.

Readers, then writers, Pelican-style: `collect` reads what may be published from the store
(approved text, embargo lifted); the `Writer` methods each write one kind of output.
Every file is written atomically and only when its content changed, so publishing twice
changes nothing, a crash leaves every file either old or new, and a lock keeps concurrent
publishers from interleaving.

Outputs (the layout in DESIGN.md, plus `feeds/all/` and `sitemap.xml`):
pages and an index per language, outbound files and a manifest per release, RSS and Atom per
language and for all languages together, and a sitemap with every page's translations.
"""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from babel.core import get_global
from feedgen.feed import FeedGenerator
from filelock import FileLock
from lxml import etree

from . import store
from .config import Settings
from .errors import PressflowError, PublishError
from .files import inside, remove_stale_temp_files, sha256_file, write_atomic
from .languages import language_name, text_direction
from .platforms import PLATFORMS
from .render import RELEASE, Renderer, babel_locale, localized_date, markdown_to_html, markdown_to_text, summary_of, title_of

ALL_LANGUAGES = "all"  # feeds/all/: one feed with every language, each entry marked with its own
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ATOM = "{http://www.w3.org/2005/Atom}"
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
# Reasons the pipeline records for a language that failed (rather than was skipped on purpose).
FAILURE_PREFIXES = ("translation failed", "rendering failed")


@dataclass
class Item:
    """One release in one language, ready to publish."""

    slug: str
    lang: str
    title: str
    summary: str
    markdown: str
    posts: dict[str, str]
    date: dt.date
    published: dt.datetime
    updated: dt.datetime
    image: Path | None = None
    image_alt: str | None = None
    draft_ids: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class PublishReport:
    releases: dict[str, list[str]] = field(default_factory=dict)  # slug -> languages published
    embargoed: list[str] = field(default_factory=list)
    files_written: int = 0
    files_unchanged: int = 0
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)  # slug -> lang -> reason
    errors: list[str] = field(default_factory=list)
    failed: dict[str, dict[str, str]] = field(default_factory=dict)  # slug -> lang -> error (this run or prepare)

    def count(self, changed: bool) -> None:
        if changed:
            self.files_written += 1
        else:
            self.files_unchanged += 1


def is_failure(reason: str) -> bool:
    """Whether a skipped language's reason is a failure (as opposed to, say, a missing model)."""
    return reason.startswith(FAILURE_PREFIXES)


class Site:
    """URLs and paths of the published outputs (the layout in DESIGN.md)."""

    def __init__(self, settings: Settings):
        self.settings, self.out = settings, settings.out_dir

    def page_url(self, lang: str, slug: str) -> str:
        return f"{self.settings.site_url}/site/{lang}/{slug}.html"

    def index_url(self, lang: str) -> str:
        return f"{self.settings.site_url}/site/{lang}/index.html"

    def feed_url(self, lang: str, kind: str) -> str:
        return f"{self.settings.site_url}/feeds/{lang}/{kind}.xml"

    def media_url(self, name: str) -> str:
        return f"{self.settings.site_url}/site/media/{name}"

    def entry_id(self, slug: str, lang: str) -> str:
        # A tag URI (RFC 4151) never changes when the site moves, so readers never see duplicates.
        return f"tag:{self.settings.tag_authority}:{slug}/{lang}"


def _local_image(release: store.Release) -> tuple[Path | None, str | None]:
    """The release's image file when it is local and inside the record's folder, and its alt text."""
    image = (release.record or {}).get("image")
    if not image or image["url"].startswith(("http://", "https://")) or not release.source_file:
        return None, image["alt"] if image else None
    try:  # a symlink out of the record's folder is refused like a '..' path
        path = inside(Path(release.source_file).parent, image["url"])
    except PublishError:
        return None, image["alt"]
    return (path if path.is_file() else None), image["alt"]


def as_utc(now: dt.datetime | None) -> dt.datetime:
    """`now` in UTC; a naive time is refused, because an embargo needs to know its zone."""
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None or now.utcoffset() is None:
        raise PublishError(f"publish time {now.isoformat()} has no time zone; give one, e.g. {now.isoformat()}+00:00")
    return now.astimezone(dt.timezone.utc)


def collect(session, settings: Settings, now: dt.datetime, report: PublishReport) -> list[Item]:
    """Everything publishable now: approved release text per language, embargo lifted."""
    items: list[Item] = []
    for release in session.scalars(store.select(store.Release).order_by(store.Release.date, store.Release.slug)):
        if release.publish_at and release.publish_at > now:
            report.embargoed.append(release.slug)
            continue
        image, alt = _local_image(release)
        tags = list((release.record or {}).get("tags") or [])
        for lang, drafts in sorted(store.publishable_drafts(session, release.slug).items()):
            if RELEASE not in drafts:
                continue
            markdown = drafts[RELEASE].text
            posts = {c: d.text for c, d in drafts.items() if c in PLATFORMS}
            content = markdown + "".join(f"\0{c}\0{t}" for c, t in sorted(posts.items()))
            publication = store.record_publication(session, release.slug, lang, content,
                                                   max(now, release.publish_at or now))
            items.append(Item(release.slug, lang, title_of(markdown), summary_of(markdown), markdown, posts,
                              release.date, publication.published_at, publication.updated_at, image, alt,
                              [d.id for d in drafts.values()], tags))
    return items


def newest_first(items: list[Item]) -> list[Item]:
    return sorted(items, key=lambda i: (i.published, i.date, i.slug, i.lang), reverse=True)


def publish(settings: Settings, *, now: dt.datetime | None = None,
            progress: Callable[[str], None] | None = None) -> PublishReport:
    """Publish every approved release whose time has come; safe to run at any time, any number of times."""
    now = as_utc(now)
    report = PublishReport()
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    lock = inside(settings.out_dir, "state", "publish.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock), timeout=600):
        remove_stale_temp_files(settings.out_dir)  # left by a publisher that was killed mid-write
        with store.session_scope(settings.db_url) as session:
            items = collect(session, settings, now, report)
            writer = Writer(settings, report)
            published: list[Item] = []
            for slug, group in _by_release(items).items():
                if progress:
                    progress(slug)
                release = session.get(store.Release, slug)
                previous = store.skipped_languages(session, slug, release.fingerprint)
                written = writer.release(group, previous)
                for item in group:
                    if not any(item is w for w in written):
                        _forget_new_publication(session, item, now)
                published += written
                report.releases[slug] = [i.lang for i in written]
                # `skipped`: every language prepare left out, as before; `failed`: those that failed,
                # in prepare or in this run's rendering.
                failed = {**{lang: r for lang, r in previous.items() if is_failure(r)}, **writer.failed.get(slug, {})}
                if previous:
                    report.skipped[slug] = previous
                if failed:
                    report.failed[slug] = failed
            for lang in sorted({i.lang for i in published}):
                writer.language([i for i in published if i.lang == lang], lang)
            writer.all_languages(published)
            writer.sitemap(published)
            _mark_published(session, published, now)
    return report


def _by_release(items: list[Item]) -> dict[str, list[Item]]:
    by_slug: dict[str, list[Item]] = {}
    for item in items:
        by_slug.setdefault(item.slug, []).append(item)
    return by_slug


def _forget_new_publication(session, item: Item, now: dt.datetime) -> None:
    """A language that failed to render was not published: its first publication time stays open."""
    if item.published == now:
        session.execute(store.delete(store.Publication).where(store.Publication.release_slug == item.slug,
                                                              store.Publication.lang == item.lang))


def _mark_published(session, items: list[Item], now: dt.datetime) -> None:
    ids = [draft_id for item in items for draft_id in item.draft_ids]
    for start in range(0, len(ids), 500):  # one UPDATE per 500 drafts, under SQLite's parameter limit
        session.execute(
            store.update(store.Draft)
            .where(store.Draft.id.in_(ids[start:start + 500]), store.Draft.status == store.APPROVED)
            .values(status=store.PUBLISHED, updated_at=now),
            execution_options={"synchronize_session": "fetch"},
        )


class Writer:
    """Writes pages, outbound files, manifests, feeds and the sitemap for collected items."""

    def __init__(self, settings: Settings, report: PublishReport):
        self.settings, self.report = settings, report
        self.site = Site(settings)
        self.renderer = Renderer(settings)
        self.out = settings.out_dir
        self.failed: dict[str, dict[str, str]] = {}  # slug -> lang -> why rendering it failed in this run
        self._images: dict[str, dict | None] = {}  # slug -> the copied image, written once per run

    def _write(self, path: Path, data: str | bytes) -> Path:
        self.report.count(write_atomic(path, data))
        return path

    # --- one release -----------------------------------------------------------------------

    def release(self, items: list[Item], previous: dict[str, str]) -> list[Item]:
        """The pages and outbound files of one release in every language, and its manifest.

        A language that fails to render is left out (and named in the manifest); the other
        languages still publish. Returns the items that were written.
        """
        slug = items[0].slug
        image = self._image(items[0])
        rendered: list[tuple[Item, dict[Path, str]]] = []
        for item in items:
            try:  # render everything first: a failing language writes nothing at all
                rendered.append((item, self._render_item(item, items, image)))
            except PressflowError as exc:
                self.failed.setdefault(slug, {})[item.lang] = f"rendering failed: {exc}"
        written = [item for item, _ in rendered]
        files: list[Path] = [image["path"]] if image and written else []  # the copied image is the release's too
        for item, outputs in rendered:
            # Pages link only to translations that exist: re-render when a sibling failed.
            if len(written) != len(items):
                outputs = self._render_item(item, written, image)
            files += [self._write(path, text) for path, text in outputs.items()]
        if written:
            self.manifest(slug, written, files, previous, self.failed.get(slug, {}))
        return written

    def _render_item(self, item: Item, siblings: list[Item], image: dict | None) -> dict[Path, str]:
        folder = ("outbox", item.slug, item.lang)
        outputs = {
            inside(self.out, "site", item.lang, f"{item.slug}.html"): self.page(item, siblings, image),
            inside(self.out, *folder, "press-release.md"): item.markdown,
            inside(self.out, *folder, "press-release.html"): self.page(item, [item], None),
            inside(self.out, *folder, "press-release.txt"): markdown_to_text(item.markdown),
        }
        for channel, text in sorted(item.posts.items()):
            outputs[inside(self.out, *folder, "posts", f"{channel}.txt")] = text
        return outputs

    def _image(self, item: Item) -> dict | None:
        """Copy a local image next to the pages; its URL, MIME type and size for pages and enclosures."""
        if item.image is None:
            return None
        if item.slug in self._images:
            return self._images[item.slug]
        target = inside(self.out, "site", "media", f"{item.slug}-{item.image.name}")
        data = item.image.read_bytes()
        self.report.count(write_atomic(target, data))
        mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        image = {"url": self.site.media_url(target.name), "type": mime, "length": len(data), "path": target}
        self._images[item.slug] = image
        return image

    def page(self, item: Item, siblings: list[Item], image: dict | None) -> str:
        alternates = [{"lang": s.lang, "url": self.site.page_url(s.lang, s.slug), "name": language_name(s.lang, s.lang)}
                      for s in siblings]
        return self.renderer.html(
            "page.html.j2", lang=item.lang, dir=text_direction(item.lang), title=item.title, summary=item.summary,
            url=self.site.page_url(item.lang, item.slug), alternates=alternates,
            default_url=self._default_page(item, siblings),
            feed_url=self.site.feed_url(item.lang, "atom"), rss_url=self.site.feed_url(item.lang, "rss"),
            og_locale=_og_locale(item.lang),
            og_alternate_locales=[_og_locale(s.lang) for s in siblings if s.lang != item.lang],
            image_url=image["url"] if image else None, image_type=image["type"] if image else None,
            image_alt=item.image_alt or "",
            published=item.published.isoformat(), modified=item.updated.isoformat(), date_iso=item.date.isoformat(),
            date_text=localized_date(item.date, item.lang), body_html=markdown_to_html(item.markdown),
            tags=item.tags,
        )

    def _default_page(self, item: Item, siblings: list[Item]) -> str | None:
        """The source-language page is `x-default`: what a reader with no matching language gets."""
        source = self.settings.source_language
        return self.site.page_url(source, item.slug) if any(s.lang == source for s in siblings) else None

    def manifest(self, slug: str, items: list[Item], files: list[Path], previous: dict[str, str],
                 failed_now: dict[str, str]) -> None:
        folder = inside(self.out, "outbox", slug)
        reasons = {**previous, **failed_now}
        manifest = {
            "release": slug,
            "title": next((i.title for i in items if i.lang == self.settings.source_language), items[0].title),
            "languages": sorted(i.lang for i in items),
            "files": [{"path": str(p.relative_to(self.out.resolve())), "sha256": sha256_file(p), "bytes": p.stat().st_size}
                      for p in sorted(files)],
            # Kept for readers of the first manifest format: every language left out, and why.
            "skipped_languages": [{"language": lang, "reason": reason,
                                   "status": "failed" if is_failure(reason) else "skipped"}
                                  for lang, reason in sorted(reasons.items())],
            "failed_languages": [{"language": lang, "reason": reason}
                                 for lang, reason in sorted(reasons.items()) if is_failure(reason)],
        }
        self._write(folder / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")

    # --- per language and across languages ---------------------------------------------------

    def language(self, items: list[Item], lang: str) -> None:
        """A language's index page (every release) and its RSS and Atom feeds (the newest few)."""
        items = newest_first(items)
        index = self.renderer.html(
            "index.html.j2", lang=lang, dir=text_direction(lang), language_name=language_name(lang, lang),
            url=self.site.index_url(lang),
            feed_url=self.site.feed_url(lang, "atom"), rss_url=self.site.feed_url(lang, "rss"),
            releases=[{"file": f"{i.slug}.html", "title": i.title, "date_iso": i.date.isoformat(),
                       "date_text": localized_date(i.date, lang)} for i in items],
        )
        self._write(inside(self.out, "site", lang, "index.html"), index)
        self.feeds(items[: self.settings.feed_limit], lang)

    def all_languages(self, items: list[Item]) -> None:
        """One feed with every language, for readers and outlets that want everything."""
        self.feeds(newest_first(items)[: self.settings.feed_limit], ALL_LANGUAGES)

    def feeds(self, items: list[Item], name: str) -> None:
        feed = self.feed(items, name)
        atom = self._finish_atom(feed.atom_str(pretty=True), items, mixed=name == ALL_LANGUAGES)
        self._write(inside(self.out, "feeds", name, "atom.xml"), atom)
        feed.link(href=self.site.index_url(self.settings.source_language if name == ALL_LANGUAGES else name),
                  rel="alternate", replace=True)  # RSS's channel <link> is the first alternate
        feed.link(href=self.site.feed_url(name, "rss"), rel="self")
        self._write(inside(self.out, "feeds", name, "rss.xml"), feed.rss_str(pretty=True))

    def feed(self, items: list[Item], name: str) -> FeedGenerator:
        mixed = name == ALL_LANGUAGES
        source = self.settings.source_language
        fg = FeedGenerator()
        fg.load_extension("dc")  # dc:language on each item of the all-languages RSS feed
        fg.id(f"tag:{self.settings.tag_authority}:feed/{name}")
        label = "all languages" if mixed else language_name(name, name)
        fg.title(f"{self.settings.organization} — {label}")
        fg.description(f"{self.settings.organization} press releases "
                       f"({'all languages' if mixed else language_name(name, 'en')})")
        fg.link(href=self.site.index_url(source if mixed else name), rel="alternate")
        fg.link(href=self.site.feed_url(name, "atom"), rel="self")
        # The all-languages feed has no one language ("mul": multiple); each entry carries its own.
        fg.language("mul" if mixed else name)
        # Derived from the entries, never "now": an unchanged feed stays byte-identical.
        fg.updated(max((i.updated for i in items), default=EPOCH))
        fg.generator("pressflow")
        for item in items:
            self._entry(fg.add_entry(order="append"), item, mixed)
        return fg

    def _entry(self, entry, item: Item, mixed: bool) -> None:
        entry_id = self.site.entry_id(item.slug, item.lang)
        entry.id(entry_id)
        entry.guid(entry_id, permalink=False)
        entry.title(item.title)
        entry.link(href=self.site.page_url(item.lang, item.slug), rel="alternate", hreflang=item.lang)
        entry.summary(item.summary)
        # Escaped HTML rather than CDATA: valid Atom, and safe when the text itself contains "]]>".
        entry.content(str(markdown_to_html(item.markdown)), type="html")
        entry.published(item.published)
        entry.updated(item.updated)
        for tag in item.tags:
            entry.category(term=tag, label=tag)
        if item.image is not None:
            image = self._image(item)
            entry.enclosure(image["url"], image["length"], image["type"])
        if mixed:
            entry.dc.dc_language(item.lang)

    def _finish_atom(self, atom: bytes, items: list[Item], *, mixed: bool) -> bytes:
        """What feedgen 1.0 cannot write: entry links with rel, type, hreflang and length (it drops
        them, so an enclosure would read as a second page link), and xml:lang on each entry of
        the all-languages feed."""
        by_id = {self.site.entry_id(i.slug, i.lang): i for i in items}
        root = etree.fromstring(atom)
        for entry in root.iter(f"{ATOM}entry"):
            item = by_id[entry.findtext(f"{ATOM}id")]
            for link in entry.findall(f"{ATOM}link"):
                entry.remove(link)
            position = entry.index(entry.find(f"{ATOM}title")) + 1
            links = [{"rel": "alternate", "type": "text/html", "hreflang": item.lang,
                      "href": self.site.page_url(item.lang, item.slug)}]
            if image := self._image(item):
                links.append({"rel": "enclosure", "type": image["type"], "length": str(image["length"]),
                              "href": image["url"]})
            for offset, attributes in enumerate(links):
                link = etree.Element(f"{ATOM}link", attrib=attributes)
                link.tail = entry.find(f"{ATOM}title").tail
                entry.insert(position + offset, link)
            if mixed:
                entry.set(XML_LANG, item.lang)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    # --- sitemap ---------------------------------------------------------------------------

    def sitemap(self, items: list[Item]) -> None:
        """`sitemap.xml`: every page, each with its translations as `xhtml:link` alternates."""
        pages = []
        for slug, group in sorted(_by_release(items).items()):
            alternates = [{"lang": i.lang, "url": self.site.page_url(i.lang, slug)} for i in group]
            for item in group:
                pages.append({"url": self.site.page_url(item.lang, slug), "lastmod": item.updated.isoformat(),
                              "alternates": alternates if len(group) > 1 else []})
        languages = sorted({i.lang for i in items})
        indexes = [{"lang": lang, "url": self.site.index_url(lang)} for lang in languages]
        for lang in languages:
            newest = max(i.updated for i in items if i.lang == lang)
            pages.append({"url": self.site.index_url(lang), "lastmod": newest.isoformat(),
                          "alternates": indexes if len(indexes) > 1 else []})
        self._write(inside(self.out, "sitemap.xml"), self.renderer.html("sitemap.xml.j2", pages=pages))


def _og_locale(lang: str) -> str:
    """Open Graph wants language_TERRITORY (e.g. es_ES); CLDR's likely territory fills it in."""
    locale = babel_locale(lang)
    territory = locale.territory or _likely_territory(locale.language)
    return f"{locale.language}_{territory}" if territory else locale.language


def _likely_territory(language: str) -> str | None:
    likely = get_global("likely_subtags").get(language, "")  # e.g. 'es' -> 'es_Latn_ES'
    last = likely.split("_")[-1] if "_" in likely else ""
    return last if last.isupper() or last.isdigit() else None


def remove_stale(out: Path) -> None:  # pragma: no cover - kept for operators, not called by publish
    shutil.rmtree(out / "site", ignore_errors=True)
