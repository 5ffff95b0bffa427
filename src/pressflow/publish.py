"""Publishing: approved drafts to feeds, pages and outbound files.

Readers, then writers, Pelican-style: `collect` reads what may be published from the store
(approved text, embargo lifted); the `Writer` methods each write one kind of output.
Every file is written atomically and only when its content changed, so publishing twice
changes nothing, a crash leaves every file either old or new, and a lock keeps concurrent
publishers from interleaving.

Outputs (the layout in DESIGN.md, plus `feeds/all/` and `sitemap.xml`):
pages and an index per language, outbound files and a manifest per release, RSS and Atom per
language and for all languages together, and a sitemap with every page's translations.

Feeds and pages always show the same version of a release: one put back under embargo is
withdrawn from both, and a language that fails to render keeps its last published version in both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import mimetypes
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple
from urllib.parse import urlsplit

from babel.core import get_global
from feedgen.feed import FeedGenerator
from filelock import FileLock
from lxml import etree

from . import store
from .config import Settings
from .errors import PressflowError, PublishError
from .files import inside, remove_stale_temp_files, remove_tree, sha256_file, write_atomic
from .languages import language_name, text_direction
from .platforms import PLATFORMS
from .render import RELEASE, Renderer, babel_locale, localized_date, markdown_to_html, markdown_to_text, summary_of, title_of

ALL_LANGUAGES = "all"  # feeds/all/: one feed with every language, each entry marked with its own
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ATOM = "{http://www.w3.org/2005/Atom}"
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
# Reasons the pipeline records for a language that failed (rather than was skipped on purpose).
FAILURE_PREFIXES = ("translation failed", "rendering failed")


class Published(NamedTuple):
    """A release's publication in one language as it stood before this run."""

    content_hash: str
    published_at: dt.datetime
    updated_at: dt.datetime


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
    image: Path | str | None = None  # a local file (copied next to the pages) or a web address (linked as is)
    image_alt: str | None = None
    draft_ids: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    previous: Published | None = None  # None: never published in this language before


@dataclass
class PublishReport:
    releases: dict[str, list[str]] = field(default_factory=dict)  # slug -> languages published
    embargoed: list[str] = field(default_factory=list)
    files_written: int = 0
    files_unchanged: int = 0
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)  # slug -> lang -> reason
    errors: list[str] = field(default_factory=list)
    failed: dict[str, dict[str, str]] = field(default_factory=dict)  # slug -> lang -> error (this run or prepare)
    # slug -> languages that failed to render in this run but were published before: that earlier
    # version stays in the feeds, pages and sitemap alike.
    kept: dict[str, list[str]] = field(default_factory=dict)
    # Releases published earlier and now under embargo again: their pages and outbound files were removed.
    withdrawn: list[str] = field(default_factory=list)

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


def _release_image(release: store.Release) -> tuple[Path | str | None, str | None]:
    """The release's image and its alt text: a web address as the record gives it, or a file
    when it is inside the record's folder."""
    image = (release.record or {}).get("image")
    if not image:
        return None, None
    if image["url"].startswith(("http://", "https://")):
        return image["url"], image["alt"]
    if not release.source_file:
        return None, image["alt"]
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
    before = _publications(session)
    for release in session.scalars(store.select(store.Release).order_by(store.Release.date, store.Release.slug)):
        if release.publish_at and release.publish_at > now:
            report.embargoed.append(release.slug)
            continue
        image, alt = _release_image(release)
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
                              [d.id for d in drafts.values()], tags, before.get((release.slug, lang))))
    return items


def _publications(session) -> dict[tuple[str, str], Published]:
    """Every publication as it stands before this run (plain values: `collect` then updates the rows)."""
    P = store.Publication
    rows = session.execute(store.select(P.release_slug, P.lang, P.content_hash, P.published_at, P.updated_at))
    return {(slug, lang): Published(*rest) for slug, lang, *rest in rows}


def newest_first(items: list[Item]) -> list[Item]:
    return sorted(items, key=lambda i: (i.published, i.date, i.slug, i.lang), reverse=True)


# The CLI registers a listener to draw a progress bar; flows log instead.
_progress_listeners: list[Callable[[str], None]] = []


def on_progress(listener: Callable[[str], None]) -> None:
    """Call `listener(slug)` as each release starts publishing, in every later publish here."""
    _progress_listeners.append(listener)


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
                for listener in ([progress] if progress else []) + _progress_listeners:
                    listener(slug)
                release = session.get(store.Release, slug)
                previous = store.skipped_languages(session, slug, release.fingerprint)
                written, kept = writer.release(group, previous)
                for item in group:
                    if not any(item is w for w in written):
                        _restore_publication(session, item)
                published += written + kept
                report.releases[slug] = [i.lang for i in written]
                if kept:
                    report.kept[slug] = [i.lang for i in kept]
                # `skipped`: every language prepare left out, as before; `failed`: those that failed,
                # in prepare or in this run's rendering.
                failed = {**{lang: r for lang, r in previous.items() if is_failure(r)}, **writer.failed.get(slug, {})}
                if previous:
                    report.skipped[slug] = previous
                if failed:
                    report.failed[slug] = failed
            # Languages that had feeds before are rewritten even when nothing is left in them, so a
            # withdrawn or failed release also leaves a feed it was the only entry of.
            for lang in sorted({i.lang for i in published} | writer.feed_languages()):
                writer.language([i for i in published if i.lang == lang], lang)
            writer.all_languages(published)
            writer.sitemap(published)
            # Only now that no feed, index or sitemap lists them: a crash between the two leaves
            # pages nobody links to, which the next run removes (it looks on disk, not in the store).
            writer.withdraw(report.embargoed, published)
            _unpublish_embargoed(session, report.embargoed, now)
            _mark_published(session, published, now)
    return report


def _by_release(items: list[Item]) -> dict[str, list[Item]]:
    by_slug: dict[str, list[Item]] = {}
    for item in items:
        by_slug.setdefault(item.slug, []).append(item)
    return by_slug


def _restore_publication(session, item: Item) -> None:
    """A language that failed to render was not published in this run: its publication goes back
    to what the last published version left (so the next success moves `updated`), or away if
    there was none (so its first publication time stays open)."""
    P = store.Publication
    where = (P.release_slug == item.slug, P.lang == item.lang)
    if item.previous is None:
        session.execute(store.delete(P).where(*where))
    else:
        session.execute(store.update(P).where(*where).values(content_hash=item.previous.content_hash,
                                                             updated_at=item.previous.updated_at))


def _unpublish_embargoed(session, slugs: list[str], now: dt.datetime) -> None:
    """Releases under embargo again are no longer published: when the embargo lifts they go out
    anew, with that time as their publication time, and their drafts wait as approved."""
    for chunk in store.in_batches(slugs):
        session.execute(store.delete(store.Publication).where(store.Publication.release_slug.in_(chunk)))
        session.execute(
            store.update(store.Draft)
            .where(store.Draft.release_slug.in_(chunk), store.Draft.status == store.PUBLISHED)
            .values(status=store.APPROVED, updated_at=now),
            execution_options={"synchronize_session": "fetch"},
        )


def _mark_published(session, items: list[Item], now: dt.datetime) -> None:
    ids = [draft_id for item in items for draft_id in item.draft_ids]
    for batch in store.in_batches(ids):  # one UPDATE per 500 drafts
        session.execute(
            store.update(store.Draft)
            .where(store.Draft.id.in_(batch), store.Draft.status == store.APPROVED)
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

    def release(self, items: list[Item], previous: dict[str, str]) -> tuple[list[Item], list[Item]]:
        """The pages and outbound files of one release in every language, and its manifest.

        A language that fails to render writes nothing and is named in the manifest; the other
        languages still publish. If an earlier run published it, that version stays, in the
        feeds as on its pages, so subscribers see one consistent version rather than a feed
        entry gone while its page lingers. Returns the items written and the items kept.
        """
        slug = items[0].slug
        image = self._image(items[0])
        rendered: list[tuple[Item, dict[Path, str]]] = []
        kept: list[Item] = []
        for item in items:
            try:  # render everything first: a failing language writes nothing at all
                rendered.append((item, self._render_item(item, items, image)))
            except PressflowError as exc:
                reason = f"rendering failed: {exc}"
                if (earlier := self._previous_version(item)) is not None:
                    kept.append(earlier)
                    reason += f"; the version published {earlier.updated.isoformat()} stays"
                self.failed.setdefault(slug, {})[item.lang] = reason
        written = [item for item, _ in rendered]
        live = sorted(written + kept, key=lambda i: i.lang)  # `items` are in this order too
        files: list[Path] = []
        if image and image["path"] and live:
            files.append(image["path"])  # the copied image is the release's too
        for item, outputs in rendered:
            # Pages link only to translations that exist: re-render when a sibling failed.
            if len(live) != len(items):
                outputs = self._render_item(item, live, image)
            files += [self._write(path, text) for path, text in outputs.items()]
        files += [path for item in kept for path in self._files_on_disk(item)]
        if live:
            self.manifest(slug, live, files, previous, self.failed.get(slug, {}))
        return written, kept

    def _previous_version(self, item: Item) -> Item | None:
        """`item` as an earlier run published it, read back from its outbound files; None when
        it was never published or its files are gone."""
        if item.previous is None or not inside(self.out, "site", item.lang, f"{item.slug}.html").is_file():
            return None
        folder = inside(self.out, "outbox", item.slug, item.lang)
        try:
            markdown = (folder / "press-release.md").read_text(encoding="utf-8")
            posts = {p.stem: p.read_text(encoding="utf-8") for p in sorted((folder / "posts").glob("*.txt"))}
        except (OSError, UnicodeDecodeError):
            return None
        return dataclasses.replace(item, title=title_of(markdown), summary=summary_of(markdown), markdown=markdown,
                                   posts=posts, published=item.previous.published_at,
                                   updated=item.previous.updated_at, draft_ids=[])

    def _files_on_disk(self, item: Item) -> list[Path]:
        """The page and outbound files an earlier run wrote for `item`."""
        folder = inside(self.out, "outbox", item.slug, item.lang)
        outbox = [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".tmp")]
        return [inside(self.out, "site", item.lang, f"{item.slug}.html"), *outbox]

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
        """The release's image for pages and enclosures: its URL, MIME type, size in bytes and
        local copy (the last two None for a web address)."""
        if item.image is None:
            return None
        if item.slug not in self._images:
            self._images[item.slug] = (_remote_image(item.image) if isinstance(item.image, str)
                                       else self._copy_image(item.slug, item.image))
        return self._images[item.slug]

    def _copy_image(self, slug: str, source: Path) -> dict:
        """Copy a local image next to the pages (once per run)."""
        target = inside(self.out, "site", "media", f"{slug}-{source.name}")
        data = source.read_bytes()
        self.report.count(write_atomic(target, data))
        mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return {"url": self.site.media_url(target.name), "type": mime, "length": len(data), "path": target}

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
        if enclosure := _enclosure(self._image(item)):
            entry.enclosure(enclosure["url"], enclosure["length"], enclosure["type"])
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
            if enclosure := _enclosure(self._image(item)):
                links.append({"rel": "enclosure", "type": enclosure["type"], "length": str(enclosure["length"]),
                              "href": enclosure["url"]})
            for offset, attributes in enumerate(links):
                link = etree.Element(f"{ATOM}link", attrib=attributes)
                link.tail = entry.find(f"{ATOM}title").tail
                entry.insert(position + offset, link)
            if mixed:
                entry.set(XML_LANG, item.lang)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    def feed_languages(self) -> set[str]:
        """The languages that have feeds on disk, from earlier runs."""
        feeds = self.out / "feeds"
        if not feeds.is_dir():
            return set()
        return {d.name for d in feeds.iterdir() if d.name != ALL_LANGUAGES and (d / "atom.xml").is_file()}

    # --- withdrawing ------------------------------------------------------------------------

    def withdraw(self, slugs: list[str], published: list[Item]) -> None:
        """Remove what earlier runs published of releases that are under embargo again (their
        `publish_at` moved into the future): pages, copied image and outbound folder.

        Each file goes in one step (unlink); the outbound folder is renamed out of the way
        before it is deleted, so nobody sees part of it. Call after the feeds, indexes and
        sitemap were rewritten without these releases.
        """
        in_use = {image["path"] for item in published if (image := self._image(item))}
        site = self.out / "site"
        languages = [d.name for d in site.iterdir() if d.is_dir() and d.name != "media"] if site.is_dir() else []
        for slug in slugs:
            outbox = inside(self.out, "outbox", slug)
            files = [inside(self.out, "site", lang, f"{slug}.html") for lang in languages]
            files += [path for path in self._media_listed(outbox) if path not in in_use]
            removed = [path for path in files if path.is_file()]
            for path in removed:
                path.unlink()
            if outbox.is_dir():  # last: its manifest names the media to remove if this run dies first
                remove_tree(outbox)
                removed.append(outbox)
            if removed:
                self.report.withdrawn.append(slug)

    def _media_listed(self, outbox: Path) -> list[Path]:
        """The copied images a release's manifest lists (the image may have changed since)."""
        try:
            files = json.loads((outbox / "manifest.json").read_text(encoding="utf-8"))["files"]
            return [inside(self.out, f["path"]) for f in files if f["path"].startswith("site/media/")]
        except (OSError, ValueError, KeyError, TypeError, PublishError):  # unreadable: remove the pages anyway
            return []

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


def _remote_image(url: str) -> dict:
    """An image on the web is linked as it is: publishing never fetches it, so its size is
    unknown, and its type is what its name suggests, if anything."""
    return {"url": url, "type": mimetypes.guess_type(urlsplit(url).path)[0], "length": None, "path": None}


def _enclosure(image: dict | None) -> dict | None:
    """The image as a feed enclosure, only when its size and type are known.

    RSS 2.0 requires `length` and `type`. The RSS Board's best-practices profile allows
    length 0 for an unknown size (feedvalidator.org accepts it, feedparser passes it on as
    "0"), but that 0 is indistinguishable from a wrong size to readers and podcatchers, and
    the real size would mean fetching a third party's file at publish time. So a web image
    gets no enclosure; its pages still show it and name it in og:image.
    """
    return image if image and image["length"] is not None and image["type"] else None


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
