"""Publishing: approved drafts to feeds, pages and outbound files.

Readers, then writers, Pelican-style: `collect` reads what may be published from the store
(approved text, embargo lifted); the `write_*` functions each write one kind of output.
Every file is written atomically and only when its content changed, so publishing twice
changes nothing, and a lock keeps concurrent publishers from interleaving.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from feedgen.feed import FeedGenerator
from filelock import FileLock

from . import store
from .config import Settings
from .files import inside, sha256_file, write_atomic
from .languages import language_name, text_direction
from .platforms import PLATFORMS
from .render import RELEASE, Renderer, babel_locale, localized_date, markdown_to_html, markdown_to_text, summary_of, title_of


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


@dataclass
class PublishReport:
    releases: dict[str, list[str]] = field(default_factory=dict)  # slug -> languages published
    embargoed: list[str] = field(default_factory=list)
    files_written: int = 0
    files_unchanged: int = 0
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)  # slug -> lang -> reason
    errors: list[str] = field(default_factory=list)

    def count(self, changed: bool) -> None:
        if changed:
            self.files_written += 1
        else:
            self.files_unchanged += 1


class Site:
    """URLs and paths of the published outputs (the layout in DESIGN.md)."""

    def __init__(self, settings: Settings):
        self.settings, self.out = settings, settings.out_dir

    def page_url(self, lang: str, slug: str) -> str:
        return f"{self.settings.site_url}/site/{lang}/{slug}.html"

    def feed_url(self, lang: str, kind: str) -> str:
        return f"{self.settings.site_url}/feeds/{lang}/{kind}.xml"

    def entry_id(self, slug: str, lang: str) -> str:
        # A tag URI (RFC 4151) never changes when the site moves, so readers never see duplicates.
        return f"tag:{self.settings.tag_authority}:{slug}/{lang}"


def _local_image(release: store.Release) -> tuple[Path | None, str | None]:
    image = (release.record or {}).get("image")
    if not image or image["url"].startswith(("http://", "https://")) or not release.source_file:
        return None, image["alt"] if image else None
    path = (Path(release.source_file).parent / image["url"]).resolve()
    return (path if path.is_file() else None), image["alt"]


def collect(session, settings: Settings, now: dt.datetime, report: PublishReport) -> list[Item]:
    """Everything publishable now: approved release text per language, embargo lifted."""
    items: list[Item] = []
    for release in session.scalars(store.select(store.Release).order_by(store.Release.date, store.Release.slug)):
        if release.publish_at and release.publish_at > now:
            report.embargoed.append(release.slug)
            continue
        image, alt = _local_image(release)
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
                              [d.id for d in drafts.values()]))
    return items


def publish(settings: Settings, *, now: dt.datetime | None = None,
            progress: Callable[[str], None] | None = None) -> PublishReport:
    """Publish every approved release whose time has come; safe to run at any time, any number of times."""
    now = now or dt.datetime.now(dt.timezone.utc)
    report = PublishReport()
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(inside(settings.out_dir, "state", "publish.lock")), timeout=600):
        with store.session_scope(settings.db_url) as session:
            items = collect(session, settings, now, report)
            writer = Writer(settings, report)
            by_slug: dict[str, list[Item]] = {}
            for item in items:
                by_slug.setdefault(item.slug, []).append(item)
            for slug, group in by_slug.items():
                if progress:
                    progress(slug)
                release = session.get(store.Release, slug)
                skipped = store.skipped_languages(session, slug, release.fingerprint)
                writer.release(group, skipped)
                report.releases[slug] = [i.lang for i in group]
                if skipped:
                    report.skipped[slug] = skipped
            for lang in sorted({i.lang for i in items}):
                writer.language([i for i in items if i.lang == lang], lang)
            for item in items:
                for draft_id in item.draft_ids:
                    draft = session.get(store.Draft, draft_id)
                    if draft.status == store.APPROVED:
                        draft.status, draft.updated_at = store.PUBLISHED, now
    return report


class Writer:
    """Writes pages, outbound files, manifests and feeds for collected items."""

    def __init__(self, settings: Settings, report: PublishReport):
        self.settings, self.report = settings, report
        self.site = Site(settings)
        self.renderer = Renderer(settings)
        self.out = settings.out_dir

    def _write(self, path: Path, data: str | bytes) -> Path:
        self.report.count(write_atomic(path, data))
        return path

    def release(self, items: list[Item], skipped: dict[str, str]) -> None:
        """The pages and outbound files of one release in every language, and its manifest."""
        slug = items[0].slug
        files: list[Path] = []
        image_url = self._image(items[0])
        for item in items:
            files.append(self._write(inside(self.out, "site", item.lang, f"{slug}.html"),
                                     self.page(item, items, image_url)))
            files += self.outbox(item)
        self.manifest(slug, items, files, skipped)

    def _image(self, item: Item) -> str | None:
        if item.image is None:
            return None
        target = inside(self.out, "site", "media", f"{item.slug}-{item.image.name}")
        self.report.count(write_atomic(target, item.image.read_bytes()))
        return f"{self.settings.site_url}/site/media/{target.name}"

    def page(self, item: Item, siblings: list[Item], image_url: str | None) -> str:
        alternates = [{"lang": s.lang, "url": self.site.page_url(s.lang, s.slug), "name": language_name(s.lang, s.lang)}
                      for s in siblings]
        return self.renderer.html(
            "page.html.j2", lang=item.lang, dir=text_direction(item.lang), title=item.title, summary=item.summary,
            url=self.site.page_url(item.lang, item.slug), alternates=alternates,
            feed_url=self.site.feed_url(item.lang, "atom"), rss_url=self.site.feed_url(item.lang, "rss"),
            og_locale=str(babel_locale(item.lang)), image_url=image_url, image_alt=item.image_alt or "",
            published=item.published.isoformat(), date_iso=item.date.isoformat(),
            date_text=localized_date(item.date, item.lang), body_html=markdown_to_html(item.markdown),
        )

    def outbox(self, item: Item) -> list[Path]:
        folder = ("outbox", item.slug, item.lang)
        written = [
            self._write(inside(self.out, *folder, "press-release.md"), item.markdown),
            self._write(inside(self.out, *folder, "press-release.html"),
                        self.page(item, [item], None)),
            self._write(inside(self.out, *folder, "press-release.txt"), markdown_to_text(item.markdown)),
        ]
        for channel, text in sorted(item.posts.items()):
            written.append(self._write(inside(self.out, *folder, "posts", f"{channel}.txt"), text))
        return written

    def manifest(self, slug: str, items: list[Item], files: list[Path], skipped: dict[str, str]) -> None:
        folder = inside(self.out, "outbox", slug)
        manifest = {
            "release": slug,
            "title": next((i.title for i in items if i.lang == self.settings.source_language), items[0].title),
            "languages": sorted(i.lang for i in items),
            "files": [{"path": str(p.relative_to(self.out)), "sha256": sha256_file(p), "bytes": p.stat().st_size}
                      for p in sorted(files)],
            "skipped_languages": [{"language": lang, "reason": reason} for lang, reason in sorted(skipped.items())],
        }
        self._write(folder / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")

    def language(self, items: list[Item], lang: str) -> None:
        """A language's index page and its RSS and Atom feeds, newest first."""
        items = sorted(items, key=lambda i: (i.published, i.slug), reverse=True)[: self.settings.feed_limit]
        index = self.renderer.html(
            "index.html.j2", lang=lang, dir=text_direction(lang), language_name=language_name(lang, lang),
            feed_url=self.site.feed_url(lang, "atom"), rss_url=self.site.feed_url(lang, "rss"),
            releases=[{"file": f"{i.slug}.html", "title": i.title, "date_iso": i.date.isoformat(),
                       "date_text": localized_date(i.date, lang)} for i in items],
        )
        self._write(inside(self.out, "site", lang, "index.html"), index)
        feed = self.feed(items, lang)
        self._write(inside(self.out, "feeds", lang, "atom.xml"), feed.atom_str(pretty=True))
        feed.link(href=self.site.feed_url(lang, "rss"), rel="self", replace=True)
        self._write(inside(self.out, "feeds", lang, "rss.xml"), feed.rss_str(pretty=True))

    def feed(self, items: list[Item], lang: str) -> FeedGenerator:
        fg = FeedGenerator()
        fg.id(f"tag:{self.settings.tag_authority}:feed/{lang}")
        fg.title(f"{self.settings.organization} — {language_name(lang, lang)}")
        fg.description(f"{self.settings.organization} press releases ({language_name(lang, 'en')})")
        fg.link(href=f"{self.settings.site_url}/site/{lang}/index.html", rel="alternate")
        fg.link(href=self.site.feed_url(lang, "atom"), rel="self")
        fg.language(lang)
        # Derived from the entries, never "now": an unchanged feed stays byte-identical.
        fg.updated(max((i.updated for i in items), default=dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)))
        fg.generator("pressflow")
        for item in items:
            entry = fg.add_entry(order="append")
            entry.id(self.site.entry_id(item.slug, lang))
            entry.guid(self.site.entry_id(item.slug, lang), permalink=False)
            entry.title(item.title)
            entry.link(href=self.site.page_url(lang, item.slug))
            entry.summary(item.summary)
            entry.content(str(markdown_to_html(item.markdown)), type="CDATA")
            entry.published(item.published)
            entry.updated(item.updated)
        return fg


def remove_stale(out: Path) -> None:  # pragma: no cover - kept for operators, not called by publish
    shutil.rmtree(out / "site", ignore_errors=True)
