"""Publishing: approved drafts to feeds, pages and outbound files.

A reader, then writers, Pelican-style: `collect` reads what may be published from the store
(approved text, embargo lifted); each writer (`pages`, `outbox`, `feeds`, `sitemap`) writes one
kind of output behind one small interface (`writer.Writer`), and `site` owns every URL and path.
Every new file is staged in full before any is put in place, and only files whose content
changed are, so publishing twice changes nothing, a run that cannot finish (a full disk) leaves
the published set as it was, a crash leaves every file old or new, and a lock keeps concurrent
publishers from interleaving.

Feeds and pages always show the same version of a release: one put back under embargo is
withdrawn from both, and a language that fails to render keeps its last published version in both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path
from typing import Callable, Iterator

from filelock import FileLock
from pydantic import ValidationError

from ..core import db
from ..core.config import Settings
from ..core.errors import PressflowError, PublishError
from ..core.files import inside, remove_stale_temp_files, remove_tree
from ..core.site import ALL_LANGUAGES, Site
from ..drafts import store
from ..platforms import PLATFORMS
from ..records import Event
from ..render import RELEASE
from ..render.document import PostDocument, ReleaseDocument, load_document, release_markdown
from . import ledger
from .catalog import StoreCatalog, entry_columns
from .feeds import Feeds
from . import websub
from .jsonfeed import JsonFeed
from .model import Changes, Entry, Image, Item, Published, PublishReport, is_failure
from .outbox import Outbox, release_of_outbound
from .pages import Pages
from .sitemap import Sitemap
from .writer import Output, Writer

# Bumped when the code changes what pages, feeds or lists hold: every output is republished once.
LAYOUT_VERSION = "4"

__all__ = ["publish", "on_progress", "PublishReport", "Item", "Entry", "Site", "is_failure", "as_utc"]


def as_utc(now: dt.datetime | None) -> dt.datetime:
    """`now` in UTC; a naive time is refused, because an embargo needs to know its zone."""
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None or now.utcoffset() is None:
        raise PublishError(f"publish time {now.isoformat()} has no time zone; give one, e.g. {now.isoformat()}+00:00")
    return now.astimezone(dt.timezone.utc)


def _event(record: dict | None) -> Event | None:
    """A stored record as the typed `Event`; None for a release stored without one."""
    try:
        return Event.model_validate(record or {})
    except ValidationError:
        return None


def _release_image(source_file: str | None, event: Event | None) -> tuple[Path | str | None, str | None]:
    """The release's image and its alt text: a web address as the record gives it, or a file
    when it is inside the record's folder."""
    image = event.image if event else None
    if image is None:
        return None, None
    if image.url.startswith(("http://", "https://")):
        return image.url, image.alt
    if not source_file:
        return None, image.alt
    try:  # a symlink out of the record's folder is refused like a '..' path
        path = inside(Path(source_file).parent, image.url)
    except PublishError:
        return None, image.alt
    return (path if path.is_file() else None), image.alt


def _record_caption(event: Event | None) -> str | None:
    return event.image.caption if event is not None and event.image is not None else None


@dataclasses.dataclass
class ReleaseToPublish:
    """One release's publishable text in every language, and the languages prepare left out."""

    slug: str
    items: list[Item]
    skipped: dict[str, str]  # lang -> why prepare left it out of this version of the release
    held: list[str] = dataclasses.field(default_factory=list)  # posts held back, one line each


def collect(session, now: dt.datetime, slugs: list[str], batch: int = 200) -> Iterator[list[ReleaseToPublish]]:
    """The publishable text of these releases (embargo lifted), `batch` releases at a time, each
    with its approved text per language: a few queries a batch, not a release."""
    for chunk in db.in_batches(slugs, batch):
        before = {key: Published(*value) for key, value in ledger.publications(session, chunk).items()}
        releases = store.release_rows(session, chunk)
        drafts_of = store.publishable_drafts_of(session, chunk)
        versions = store.record_versions(session, [(slug, drafts[RELEASE].fingerprint)
                                                   for slug, languages in drafts_of.items()
                                                   for drafts in languages.values()])
        skipped = store.skipped_languages_of(session, {r.slug: r.fingerprint for r in releases})
        found = []
        for release in releases:
            held: list[str] = []
            items = _items(release, drafts_of.get(release.slug, {}), versions, before, now, held)
            if items or held:  # a release held back whole still says why
                found.append(ReleaseToPublish(release.slug, items, skipped.get(release.slug, {}), held))
        yield found


def _items(release: store.Release, drafts_of: dict, versions: dict, before: dict, now: dt.datetime,
           held: list[str]) -> list[Item]:
    """A release's items, one per language with an approved press release, each written from the
    documents of its approved revisions (what the reviewers approved, field by field) and the
    record version they were made from: one version per page."""
    items = []
    for lang, drafts in sorted(drafts_of.items()):
        document = load_document(drafts[RELEASE].document)
        if not isinstance(document, ReleaseDocument):
            held.append(f"{release.slug}: {lang}: not published: the approved revision of draft {drafts[RELEASE].id} "
                        "has no release document (its text lost a release's structure); edit it and approve it again")
            continue
        version = versions.get((release.slug, drafts[RELEASE].fingerprint))
        event = _event(version.record if version else None)
        image, alt = _release_image(version.source_file if version else None, event)
        posts = _posts_within_limits(release.slug, lang, drafts, held)
        content_hash = db.text_hash(drafts[RELEASE].text + "".join(f"\0{c}\0{t}" for c, t in sorted(posts.items())))
        previous = before.get((release.slug, lang))
        # `updated` moves only when the text changed, so re-publishing unchanged text changes nothing.
        if previous is None:
            published = updated = _release_time(drafts.values(), release.publish_at, now)
        elif previous.content_hash != content_hash:
            published, updated = previous.published_at, _release_time(drafts.values(), release.publish_at, now)
        else:
            published, updated = previous.published_at, previous.updated_at
        reviewed = document.image
        items.append(Item(release.slug, lang, document.title, document.summary,
                          release_markdown(document, image_lines=False), posts, document.dateline.date, published,
                          updated, image, (reviewed.alt if reviewed else None) or alt,
                          [d.id for d in drafts.values()], list(event.tags if event else []),
                          previous, event, content_hash, reviewed.caption if reviewed else None, document,
                          release.publish_at))
    return items


def _posts_within_limits(slug: str, lang: str, drafts: dict, held: list[str]) -> dict[str, str]:
    """The approved posts' texts, from their documents, less any over its platform's limit
    (approval refuses those; a post approved under an older limit or counting is held back,
    never cut or sent)."""
    posts = {}
    for channel, draft in drafts.items():
        if channel not in PLATFORMS:
            continue
        platform, document = PLATFORMS[channel], load_document(draft.document)
        text = document.text if isinstance(document, PostDocument) else draft.text  # a post's document is its text
        if platform.fits(text):
            posts[channel] = text
        else:
            held.append(f"{slug}: {lang}: {platform.title} post (draft {draft.id}) not published: "
                        f"{platform.count(text)} of {platform.limit} ({platform.title} counting); "
                        f"shorten it and approve it again")
    return posts


def _release_time(drafts, publish_at: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """When a release's text in one language went out: when its newest approved text was
    approved, or its embargo lifted if that was later, and never later than this run.

    Each release's own time, not the run's: releases published together in one run keep apart
    in feeds (and in the order readers show them) instead of all sharing the run's instant.
    Used only for a first publication and for changed text (see `_items`).
    """
    approved = [d.updated_at for d in drafts if d.status == store.APPROVED and d.updated_at is not None]
    when = max(approved, default=now)
    if publish_at is not None:
        when = max(when, publish_at)
    return min(when, now)


def site_fingerprint(settings: Settings) -> str:
    """What every page depends on besides its release: templates, site URL, organization, the
    glossary, the feed settings, and the layout's version. A change republishes everything, once."""
    digest = hashlib.sha256(f"{LAYOUT_VERSION}\0{settings.site_url}\0{settings.organization}\0"
                            f"{settings.tag_authority}\0{settings.source_language}\0{settings.feed_limit}\0"
                            f"{getattr(settings, 'websub_hub', None)}".encode())
    templates = settings.templates_dir
    for path in sorted(p for p in templates.rglob("*") if p.is_file() and "review" not in p.relative_to(templates).parts):
        digest.update(f"\0{path.relative_to(templates)}\0".encode() + path.read_bytes())
    glossary = settings.glossary_file or Path(__file__).resolve().parents[1] / "data" / "glossary.yaml"
    if glossary.is_file():
        digest.update(b"\0glossary\0" + glossary.read_bytes())
    places = getattr(settings, "places_file", None) or Path(__file__).resolve().parents[1] / "data" / "places.yaml"
    if places.is_file():  # the city names of datelines and pages
        digest.update(b"\0places\0" + places.read_bytes())
    return digest.hexdigest()


# The CLI registers a listener to draw a progress bar; flows log instead.
_progress_listeners: list[Callable[[str], None]] = []


def on_progress(listener: Callable[[str], None]) -> None:
    """Call `listener(slug)` as each release starts publishing, in every later publish here."""
    _progress_listeners.append(listener)


def writers(output: Output) -> list[Writer]:
    """Every output, in the order its files go into place: pages before what links to them."""
    return [Pages(output), Outbox(output), Feeds(output), JsonFeed(output), Sitemap(output)]


def publish(settings: Settings, *, now: dt.datetime | None = None,
            progress: Callable[[str], None] | None = None) -> PublishReport:
    """Publish every approved release whose time has come; safe to run at any time, any number of times."""
    now = as_utc(now)
    report = PublishReport()
    if warning := settings.site_url_warning():  # once a run, before anything is written with it
        report.warnings.append(warning)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    lock = inside(settings.out_dir, "state", "publish.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock), timeout=600):
        remove_stale_temp_files(settings.out_dir)  # left by a publisher that was killed mid-write
        output = Output(settings, report)
        try:
            with db.session_scope(settings.db_url) as session:
                output.session = session  # read for related releases only
                _publish(session, settings, now, report, output, progress)
        finally:
            output.staging.discard()  # what a failed run staged; nothing once committed
    if settings.websub_hub and report.feeds_changed:
        websub.notify(settings.websub_hub, report)
    return report


def _publish(session, settings: Settings, now: dt.datetime, report: PublishReport, output: Output,
             progress: Callable[[str], None] | None) -> None:
    """Render and write what changed since the last run, known from the store: releases with
    approved text not yet published, releases under embargo again, and, when the fingerprint of
    what every page depends on changed, everything, once. The store's bookkeeping changes in
    this run's transaction, committed only after every file is in place: a run killed at any
    point leaves the store as it was, and the next run does the same work again."""
    fingerprint = site_fingerprint(settings)
    changes = Changes(everything=ledger.publish_state(session, "fingerprint") != fingerprint)
    report.embargoed = store.embargoed_releases(session, now)
    todo = store.releases_to_publish(session, now, everything=changes.everything)
    outputs = writers(output)
    report.waiting = ledger.awaiting_review(session)
    if not (changes.everything or todo or ledger.entry_languages_of(session, report.embargoed)):
        _withdraw(outputs, report)  # pages a run killed after its renames left behind, if any
        _unpublish_embargoed(session, report.embargoed, now)
        return  # nothing changed: nothing to render, list or compare
    releases = Releases(output, outputs)
    sitemap = next(w for w in outputs if isinstance(w, Sitemap))
    languages_before = ledger.entry_languages(session)
    changes.counts_before = {lang: ledger.count_entries(session, lang) for lang in languages_before}
    published_ids: list[int] = []
    for batch in collect(session, now, todo):
        entries: dict[str, list[Entry]] = {}
        publications: list[dict] = []
        for release in batch:
            if not release.items:
                report.warnings += release.held
                continue
            for listener in ([progress] if progress else []) + _progress_listeners:
                listener(release.slug)
            written, kept = releases.publish(release.items, release.skipped)
            published_ids += [draft_id for item in written for draft_id in item.draft_ids]
            publications += [_publication(item) for item in written if item.previous is None
                             or item.previous.content_hash != item.content_hash]
            entries[release.slug] = [output.entry(i) for i in sorted(written + kept, key=lambda i: i.lang)]
            _report(report, release, written, kept, releases.failed.get(release.slug, {}))
        ledger.save_publications(session, publications)  # a language that failed keeps its last one
        _record_entries(session, entries, changes, sitemap)
    _remove_entries(session, report.embargoed, changes, sitemap)
    session.flush()
    _place_changes(session, changes)
    languages_after = ledger.entry_languages(session)
    if languages_after != languages_before:  # every front index page names the other languages
        changes.languages |= languages_after | languages_before
    if changes.everything:
        # Languages that had feeds before are rewritten even when nothing is left in them.
        changes.languages |= languages_after | output.site.feed_languages() | languages_before
    catalog = StoreCatalog(session)
    for lang in sorted(changes.languages):
        for writer in outputs:
            writer.language(lang, catalog, changes)
    if changes.languages or changes.slugs or changes.removed:
        for writer in outputs:
            writer.everything(catalog, changes)
    output.staging.commit()
    # Only now that no feed, index or sitemap lists them: a crash between the two leaves
    # pages nobody links to, which the next run removes (it looks on disk, not in the store).
    _withdraw(outputs, report)
    _unpublish_embargoed(session, report.embargoed, now)
    _mark_published(session, published_ids, now)
    ledger.set_publish_state(session, "fingerprint", fingerprint)


def _publication(item: Item) -> dict:
    return {"release_slug": item.slug, "lang": item.lang, "content_hash": item.content_hash,
            "published_at": item.published, "updated_at": item.updated, "first": item.previous is None}


def _report(report: PublishReport, release: ReleaseToPublish, written: list[Item], kept: list[Item],
            failed_now: dict[str, str]) -> None:
    report.releases[release.slug] = [i.lang for i in written]
    if kept:
        report.kept[release.slug] = [i.lang for i in kept]
    # `skipped`: every language prepare left out, as before; `failed`: those that failed,
    # in prepare or in this run's rendering.
    failed = {**{lang: r for lang, r in release.skipped.items() if is_failure(r)}, **failed_now}
    if release.skipped:
        report.skipped[release.slug] = release.skipped
    report.warnings += release.held
    if failed:
        report.failed[release.slug] = failed


def _record_entries(session, entries: dict[str, list[Entry]], changes: Changes, sitemap: Sitemap) -> None:
    """Keep these releases' entries as lists show them (slug -> entries), noting which
    languages' lists change."""
    before = ledger.entry_languages_of(session, list(entries))
    for slug, listed in entries.items():
        after = {entry.lang for entry in listed}
        changes.slugs.add(slug)
        for lang in before.get(slug, set()) - after:  # no longer listed in that language: later ones move up
            changes.removed_from[lang] = min(changes.removed_from.get(lang, 1 << 62),
                                             ledger.entry_positions(session, [(slug, lang)])[(slug, lang)])
        changes.languages |= before.get(slug, set()) | after
    ledger.save_entries(session, {slug: [entry_columns(e) for e in listed] for slug, listed in entries.items()})
    sitemap.releases(session, entries)


def _remove_entries(session, slugs: list[str], changes: Changes, sitemap: Sitemap) -> None:
    """Releases under embargo again leave every list."""
    for slug, languages in ledger.entry_languages_of(session, slugs).items():
        for (_, lang), position in ledger.entry_positions(session, [(slug, lang) for lang in languages]).items():
            changes.removed_from[lang] = min(changes.removed_from.get(lang, 1 << 62), position)
        changes.languages |= languages
        changes.removed.add(slug)
    sitemap.releases(session, {slug: [] for slug in sorted(changes.removed)})
    ledger.remove_entries(session, sorted(changes.removed))


def _place_changes(session, changes: Changes) -> None:
    """Where the entries this run published now stand in their language (oldest first)."""
    if changes.everything:
        return
    keys = [(slug, lang) for slug, languages in ledger.entry_languages_of(session, sorted(changes.slugs)).items()
            for lang in languages]
    for (slug, lang), position in ledger.entry_positions(session, keys).items():
        changes.positions.setdefault(lang, set()).add(position)


class Releases:
    """Publishes releases one at a time through every writer, one language failing alone."""

    def __init__(self, output: Output, outputs: list[Writer]):
        self.output, self.writers = output, outputs
        self.outbox = next(w for w in outputs if isinstance(w, Outbox))
        self.failed: dict[str, dict[str, str]] = {}  # slug -> lang -> why rendering it failed in this run

    def files(self, item: Item, siblings: list[Item], image: Image | None) -> dict[Path, str]:
        files: dict[Path, str] = {}
        for writer in self.writers:
            files.update(writer.release_files(item, siblings, image))
        return files

    def publish(self, items: list[Item], previous: dict[str, str]) -> tuple[list[Item], list[Item]]:
        """The files of one release in every language, and its manifest.

        A language that fails to render writes nothing and is named in the manifest; the other
        languages still publish. If an earlier run published it, that version stays, in the
        feeds as on its pages, so subscribers see one consistent version rather than a feed
        entry gone while its page lingers. Returns the items written and the items kept.
        """
        slug = items[0].slug
        image = self.output.image(items[0])
        rendered: list[tuple[Item, dict[Path, str]]] = []
        kept: list[Item] = []
        for item in items:
            try:  # render everything first: a failing language writes nothing at all
                rendered.append((item, self.files(item, items, image)))
            except PressflowError as exc:
                reason = f"rendering failed: {exc}"
                if (earlier := self._previous_version(item)) is not None:
                    kept.append(earlier)
                    reason += f"; the version published {earlier.updated.isoformat()} stays"
                self.failed.setdefault(slug, {})[item.lang] = reason
        written = [item for item, _ in rendered]
        live = sorted(written + kept, key=lambda i: i.lang)  # `items` are in this order too
        files: list[Path] = []
        if image and image.path and live:
            files.append(image.path)  # the copied image is the release's too, and its preview
            files += [image.social_path] if image.social_path else []
        for item, outputs in rendered:
            # Pages link only to translations that exist: re-render when a sibling failed.
            if len(live) != len(items):
                outputs = self.files(item, live, image)
            files += [self.output.write(path, text) for path, text in outputs.items()]
        for item in kept:
            files += [self.output.site.page_path(item.lang, item.slug), *self.outbox.files_on_disk(item)]
        if live:
            self.outbox.manifest(slug, live, files, {**previous, **self.failed.get(slug, {})})
        return written, kept

    def _previous_version(self, item: Item) -> Item | None:
        """`item` as an earlier run published it, read back from its outbound files; None when
        it was never published or its files are gone."""
        site = self.output.site
        if item.previous is None or not site.page_path(item.lang, item.slug).is_file():
            return None
        folder = site.outbox_path(item.slug, item.lang)
        entry = ledger.published_entry(self.output.session, item.slug, item.lang)
        try:
            markdown = release_of_outbound((folder / "press-release.md").read_text(encoding="utf-8"))
            posts = {p.stem: p.read_text(encoding="utf-8") for p in sorted((folder / "posts").glob("*.txt"))}
        except (OSError, UnicodeDecodeError):
            return None
        if entry is None:
            return None
        # Its title and summary as the lists showed them, its text as its outbound file holds it.
        return dataclasses.replace(item, title=entry.title, summary=entry.summary, markdown=markdown,
                                   posts=posts, published=item.previous.published_at,
                                   updated=item.previous.updated_at, draft_ids=[])


def _withdraw(outputs: list[Writer], report: PublishReport) -> None:
    """Remove what earlier runs published of releases under embargo again (their `publish_at`
    moved into the future). Each file goes in one step (unlink); a folder is renamed out of the
    way before it is deleted, so nobody sees part of it."""
    for slug in report.embargoed:
        removed = False
        for writer in outputs:
            for path in writer.withdraw(slug):
                if path.is_dir():
                    remove_tree(path, writer.settings.out_dir)
                elif path.is_file():
                    path.unlink()
                else:
                    continue
                removed = True
        if removed:
            report.withdrawn.append(slug)


def _unpublish_embargoed(session, slugs: list[str], now: dt.datetime) -> None:
    """Releases under embargo again are no longer published: when the embargo lifts they go out
    anew, with that time as their publication time, and their drafts wait as approved."""
    ledger.remove_publications(session, slugs)
    store.mark_unpublished(session, slugs, now)


def _mark_published(session, ids: list[int], now: dt.datetime) -> None:
    store.mark_published(session, ids, now)
