"""What publishing passes between its reader and its writers: typed, never the record as a dict."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

# Reasons the pipeline records for a language that failed (rather than was skipped on purpose).
FAILURE_PREFIXES = ("translation failed", "rendering failed")


def is_failure(reason: str) -> bool:
    """Whether a skipped language's reason is a failure (as opposed to, say, a missing model)."""
    return reason.startswith(FAILURE_PREFIXES)


class Published(NamedTuple):
    """A release's publication in one language as it stood before this run."""

    content_hash: str
    published_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class Image:
    """A release's image as pages and feeds show it. `length` and `path` are None for a web
    address (publishing never fetches it), `type` too when its name says nothing."""

    url: str
    type: str | None
    length: int | None
    alt: str
    path: Path | None = None  # the local copy under site/media/
    # A PNG drawn from an SVG for social previews (og:image): X, Facebook and LinkedIn show none
    # for an SVG. None for a raster image, which is its own preview.
    social_url: str | None = None
    social_path: Path | None = None
    social_size: tuple[int, int] | None = None

    @property
    def preview_url(self) -> str:
        return self.social_url or self.url

    @property
    def preview_type(self) -> str | None:
        return "image/png" if self.social_url else self.type

    @property
    def enclosure(self) -> bool:
        """Whether feeds may carry it as an enclosure: RSS requires a size and a type.

        The RSS Board's profile allows length 0 for an unknown size, but that 0 reads as a wrong
        size to readers, and the real size would mean fetching a third party's file at publish
        time. So a web image gets no enclosure; its pages still show it and name it in og:image.
        """
        return self.length is not None and bool(self.type)


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
    event: Any = None  # the release's record (a records.Event), for the page's structured data
    content_hash: str = ""  # of its text and posts: a change moves `updated`
    image_caption: str | None = None  # translated and reviewed with the release, like the alt text
    document: Any = None  # the approved revision's render.document.ReleaseDocument: every field shown comes from it
    publish_at: dt.datetime | None = None  # the embargo publishing held it to: the release's current one

    @property
    def html(self):
        """The release's text as safe HTML, converted once however many outputs show it."""
        if getattr(self, "_html", None) is None or self._html_of != self.markdown:
            from ..render import markdown_to_html  # the model stays free of rendering's imports

            self._html, self._html_of = markdown_to_html(self.markdown), self.markdown
        return self._html


@dataclass(frozen=True)
class Entry:
    """A published release in one language, as lists of releases show it (feeds, index pages,
    sitemap). Kept in the store at publication, so those lists are rebuilt without rendering."""

    slug: str
    lang: str
    title: str
    summary: str
    content_html: str
    date: dt.date
    published: dt.datetime
    updated: dt.datetime
    tags: tuple[str, ...] = ()
    image: Image | None = None
    languages: tuple[str, ...] = ()  # the languages the release is published in, this one included


@dataclass
class Changes:
    """What a run changed, for the writers that list releases to rewrite only what shows it."""

    everything: bool = False  # a full republish: every list is rewritten
    slugs: set[str] = field(default_factory=set)  # releases published (again) in this run
    removed: set[str] = field(default_factory=set)  # releases no longer published (withdrawn)
    languages: set[str] = field(default_factory=set)  # languages whose lists changed
    positions: dict[str, set[int]] = field(default_factory=dict)  # lang -> places (oldest first) of changed entries
    removed_from: dict[str, int] = field(default_factory=dict)  # lang -> first place an entry was removed from
    counts_before: dict[str, int] = field(default_factory=dict)  # lang -> entries before this run


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
    # Feeds whose content changed in this run (their URLs): what a WebSub hub is told about.
    feeds_changed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. a WebSub hub that did not answer
    # slug -> languages whose newer text (a changed record, an edit) awaits review: the approved
    # version stays published meanwhile.
    waiting: dict[str, list[str]] = field(default_factory=dict)

    def count(self, changed: bool) -> None:
        if changed:
            self.files_written += 1
        else:
            self.files_unchanged += 1


def newest_first(items: list) -> list:
    """Items (or entries) as feeds and indexes list them: newest publication first."""
    return sorted(items, key=lambda i: (i.published, i.date, i.slug, i.lang), reverse=True)
