"""Publishing's ledger: what went out, so that a run costs what changed, not the archive.

When each release went out in each language and when its published text last changed
(`Publication`: feeds take `published` and `updated` from here); each published release-language
as lists of releases show it (feeds, index pages); each published release's sitemap lines and the
sitemap part they are in; and the fingerprint of what every page depends on (templates, site
URL, ...). Publishing reads and writes these only through the functions below.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..core.db import Base, UTCDateTime, in_batches, schema_upgrade
from ..drafts import store


class Publication(Base):
    """When a release went out in a language, and when its published text last changed.

    Feeds take `published` and `updated` from here, so re-publishing unchanged text changes
    nothing, and an edit updates the entry in place.
    """

    __tablename__ = "publications"
    __table_args__ = (UniqueConstraint("release_slug", "lang"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_slug: Mapped[str] = mapped_column(ForeignKey("releases.slug"))
    lang: Mapped[str] = mapped_column(String(20))
    content_hash: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class PublishedEntry(Base):
    """A release published in one language, as feeds and index pages list it."""

    __tablename__ = "published_entries"
    __table_args__ = (UniqueConstraint("release_slug", "lang"),
                      Index("ix_published_entries_order", "lang", "published_at", "release_date", "release_slug"),
                      # the feed of every language: its newest entries without sorting them all
                      Index("ix_published_entries_newest", "published_at", "release_date", "release_slug", "lang"),
                      Index("ix_published_entries_updated", "lang", "updated_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_slug: Mapped[str] = mapped_column(String(100))
    lang: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    content_html: Mapped[str] = mapped_column(Text)
    release_date: Mapped[dt.date]
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    tags: Mapped[list] = mapped_column(JSON, default=list)
    image: Mapped[dict | None] = mapped_column(JSON)  # url, type, length, alt


class PublishedRelease(Base):
    """A published release's lines in the sitemap, and which sitemap part holds them."""

    __tablename__ = "published_releases"
    __table_args__ = (Index("ix_published_releases_part", "sitemap_part", "position"),
                      # each part's URLs, size and last change, without reading the lines kept beside them
                      Index("ix_published_releases_sizes", "sitemap_part", "urls", "size", "updated_at"))
    slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)  # order of first publication: new releases go last
    sitemap_part: Mapped[int] = mapped_column(Integer)
    urls: Mapped[int] = mapped_column(Integer)
    sitemap_xml: Mapped[str] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(Integer)  # of sitemap_xml: parts are counted without reading it
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


@schema_upgrade
def _sitemap_sizes(connection: Connection) -> None:
    """Stores from before `published_releases.size` get the column, filled in."""
    if "size" not in {c["name"] for c in inspect(connection).get_columns("published_releases")}:
        connection.exec_driver_sql("ALTER TABLE published_releases ADD COLUMN size INTEGER")
    table = PublishedRelease.__table__
    connection.execute(update(table).where(table.c.size.is_(None)).values(size=func.length(table.c.sitemap_xml)))


class PublishState(Base):
    """Named values publishing keeps between runs (the fingerprint of what every page depends on)."""

    __tablename__ = "publish_state"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


def publish_state(session: Session, name: str) -> str | None:
    return session.scalar(select(PublishState.value).where(PublishState.name == name))


def set_publish_state(session: Session, name: str, value: str) -> None:
    row = session.get(PublishState, name)
    if row is None:
        session.add(PublishState(name=name, value=value))
    else:
        row.value = value


def publications(session: Session, slugs: list[str]) -> dict[tuple[str, str], tuple]:
    """(content_hash, published_at, updated_at) per (slug, lang) of these releases."""
    P = Publication
    found: dict[tuple[str, str], tuple] = {}
    for chunk in in_batches(slugs):
        rows = session.execute(select(P.release_slug, P.lang, P.content_hash, P.published_at, P.updated_at)
                               .where(P.release_slug.in_(chunk)))
        found.update(((slug, lang), tuple(rest)) for slug, lang, *rest in rows)
    return found


def save_publications(session: Session, publications: list[dict[str, Any]]) -> None:
    """Record what a run published (release_slug, lang, content_hash, published_at, updated_at,
    and `first`: never published in that language before). A first publication is inserted;
    another moves its hash and `updated_at`, which feeds show as the entry's update."""
    first = [{k: v for k, v in p.items() if k != "first"} for p in publications if p["first"]]
    again = [{"slug": p["release_slug"], "language": p["lang"], "hash": p["content_hash"], "updated": p["updated_at"]}
             for p in publications if not p["first"]]
    table = Publication.__table__
    if first:
        session.execute(insert(Publication), first)
    if again:  # Core's executemany: the ORM's bulk update allows no WHERE but the primary key
        session.connection().execute(
            update(table).where(table.c.release_slug == bindparam("slug"), table.c.lang == bindparam("language"))
            .values(content_hash=bindparam("hash"), updated_at=bindparam("updated")), again)


def is_published(session: Session, slug: str, lang: str) -> bool:
    query = select(Publication.id).where(Publication.release_slug == slug, Publication.lang == lang)
    return session.execute(query.limit(1)).first() is not None


def awaiting_review(session: Session) -> dict[str, list[str]]:
    """slug -> published languages with newer text waiting for review (a changed record's new
    drafts, or an edit of an approved one): the approved version stays published meanwhile."""
    pending = store.pending_languages(session)
    published = publications(session, list(pending))
    found = {slug: [lang for lang in languages if (slug, lang) in published] for slug, languages in pending.items()}
    return {slug: languages for slug, languages in found.items() if languages}


def entry_languages(session: Session, slugs: list[str] | None = None) -> set[str]:
    """Languages with published entries (of these releases, or of any)."""
    query = select(PublishedEntry.lang).distinct()
    if slugs is None:
        # Language after language through the index, a lookup each, rather than reading every
        # entry of the archive to find the few distinct ones.
        return set(session.scalars(_every_language()))
    found: set[str] = set()
    for chunk in in_batches(slugs):
        found |= set(session.scalars(query.where(PublishedEntry.release_slug.in_(chunk))))
    return found


def _every_language():
    """The distinct languages of the entries by a recursive query: the smallest, then the
    smallest after it, ..., one index lookup each."""
    E = PublishedEntry
    languages = select(func.min(E.lang).label("lang")).cte("languages", recursive=True)
    following = select(select(func.min(E.lang)).where(E.lang > languages.c.lang).scalar_subquery())
    languages = languages.union_all(following.where(languages.c.lang.is_not(None)))
    return select(languages.c.lang).where(languages.c.lang.is_not(None))


def _newest_order():
    E = PublishedEntry
    return (E.published_at.desc(), E.release_date.desc(), E.release_slug.desc(), E.lang.desc())


def newest_entries(session: Session, lang: str | None, limit: int, offset: int = 0) -> list[PublishedEntry]:
    """Published entries of `lang` (None: every language), newest first."""
    query = select(PublishedEntry).order_by(*_newest_order()).offset(offset).limit(limit)
    if lang is not None:
        query = query.where(PublishedEntry.lang == lang)
    return list(session.scalars(query))


def oldest_entries(session: Session, lang: str, offset: int, limit: int) -> list[PublishedEntry]:
    """Published entries of `lang` in order of publication, oldest first, from `offset`."""
    E = PublishedEntry
    order = (E.published_at, E.release_date, E.release_slug)
    return list(session.scalars(select(E).where(E.lang == lang).order_by(*order).offset(offset).limit(limit)))


def count_entries(session: Session, lang: str) -> int:
    return session.scalar(select(func.count()).select_from(PublishedEntry).where(PublishedEntry.lang == lang))


def last_updated(session: Session, lang: str) -> dt.datetime | None:
    return session.scalar(select(func.max(PublishedEntry.updated_at)).where(PublishedEntry.lang == lang))


def entry_positions(session: Session, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Each entry's place in its language, oldest first (0-based): where index pages show it."""
    E = PublishedEntry
    found: dict[tuple[str, str], int] = {}
    for slug, lang in keys:
        row = session.execute(select(E.published_at, E.release_date).where(E.release_slug == slug, E.lang == lang)).first()
        if row is None:
            continue
        # A row-value comparison: a range of the order index, where three ORs read every entry.
        before = tuple_(E.published_at, E.release_date, E.release_slug) < tuple_(row.published_at, row.release_date, slug)
        found[(slug, lang)] = session.scalar(select(func.count()).select_from(E).where(E.lang == lang, before))
    return found


def published_entry(session: Session, slug: str, lang: str) -> PublishedEntry | None:
    """A release's entry in one language as the lists show it."""
    return session.scalar(select(PublishedEntry).where(PublishedEntry.release_slug == slug,
                                                       PublishedEntry.lang == lang))


def entry_languages_of(session: Session, slugs: list[str]) -> dict[str, set[str]]:
    """slug -> the languages it is listed in, for these releases."""
    E = PublishedEntry
    found: dict[str, set[str]] = {}
    for chunk in in_batches(slugs):
        for slug, lang in session.execute(select(E.release_slug, E.lang).where(E.release_slug.in_(chunk))):
            found.setdefault(slug, set()).add(lang)
    return found


def save_entries(session: Session, entries: dict[str, list[dict[str, Any]]]) -> None:
    """Make these (column values) the releases' published entries (slug -> entries), replacing
    the earlier ones."""
    for chunk in in_batches(list(entries)):
        session.execute(delete(PublishedEntry).where(PublishedEntry.release_slug.in_(chunk)))
    rows = [{"release_slug": slug, **entry} for slug, listed in entries.items() for entry in listed]
    if rows:
        session.execute(insert(PublishedEntry), rows)


def remove_entries(session: Session, slugs: list[str]) -> None:
    """These releases leave the lists of published entries."""
    for chunk in in_batches(slugs):
        session.execute(delete(PublishedEntry).where(PublishedEntry.release_slug.in_(chunk)))


def remove_sitemap_lines(session: Session, slugs: list[str]) -> None:
    """These releases leave the sitemap."""
    for chunk in in_batches(slugs):
        session.execute(delete(PublishedRelease).where(PublishedRelease.slug.in_(chunk)))


def sitemap_parts(session: Session) -> dict[int, tuple[int, int]]:
    """Each sitemap part's number of URLs and bytes of lines."""
    rows = session.execute(select(PublishedRelease.sitemap_part, func.sum(PublishedRelease.urls),
                                  func.sum(PublishedRelease.size))
                           .group_by(PublishedRelease.sitemap_part))
    return {part: (int(urls), int(size or 0)) for part, urls, size in rows}


def sitemap_places(session: Session, slugs: list[str]) -> dict[str, tuple[int, int, int]]:
    """slug -> (sitemap part, URLs, bytes of lines) of these published releases."""
    R = PublishedRelease
    found: dict[str, tuple[int, int, int]] = {}
    for chunk in in_batches(slugs):
        rows = session.execute(select(R.slug, R.sitemap_part, R.urls, R.size).where(R.slug.in_(chunk)))
        found.update((slug, (part, urls, size or 0)) for slug, part, urls, size in rows)
    return found


def last_sitemap_position(session: Session) -> int:
    return session.scalar(select(func.max(PublishedRelease.position))) or 0


def save_sitemap_lines(session: Session, rows: list[dict[str, Any]]) -> None:
    """Keep releases' sitemap lines (slug, sitemap_part, urls, sitemap_xml, size, updated_at, and
    `position` for a release published for the first time, None for one already kept)."""
    new = [row for row in rows if row["position"] is not None]
    again = [{**{k: v for k, v in row.items() if k not in ("slug", "position")}, "key": row["slug"]}
             for row in rows if row["position"] is None]
    if new:
        session.execute(insert(PublishedRelease), new)
    if again:
        table = PublishedRelease.__table__
        session.connection().execute(update(table).where(table.c.slug == bindparam("key")), again)


def sitemap_lines(session: Session, part: int | None) -> Iterator[str]:
    """The sitemap lines of the releases in one part (None: all), in order of first publication."""
    query = select(PublishedRelease.sitemap_xml).order_by(PublishedRelease.position)
    if part is not None:
        query = query.where(PublishedRelease.sitemap_part == part)
    yield from session.scalars(query.execution_options(yield_per=1000))


def sitemap_part_updated(session: Session) -> dict[int, dt.datetime]:
    rows = session.execute(select(PublishedRelease.sitemap_part, func.max(PublishedRelease.updated_at))
                           .group_by(PublishedRelease.sitemap_part))
    return {part: updated for part, updated in rows}


def publication_hashes(session: Session) -> dict[tuple[str, str], str]:
    """(slug, language) -> content hash of every publication in the store."""
    P = Publication
    return {(slug, lang): digest for slug, lang, digest in session.execute(select(P.release_slug, P.lang, P.content_hash))}


def remove_publications(session: Session, slugs: list[str]) -> None:
    """These releases were never published, as far as the ledger knows (their next publication is a first)."""
    for chunk in in_batches(slugs):
        session.execute(delete(Publication).where(Publication.release_slug.in_(chunk)))
