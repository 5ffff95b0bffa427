"""The draft store: releases, every record version drafts were made from, their drafts in every
language and channel, each draft's revisions, the languages a release was skipped in, and every
query against them.

Drafts are never overwritten: a changed record adds new drafts (older pending ones become
'superseded') and every edit adds a revision. Migrations 2, 3 and 7 are these tables'.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    event,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from ..core.db import Base, UTCDateTime, in_batches, migration, table_columns, utcnow, valid_name
from ..core.errors import ReviewError

PENDING, APPROVED, REJECTED, PUBLISHED, SUPERSEDED = "draft", "approved", "rejected", "published", "superseded"
STATUSES = (PENDING, APPROVED, REJECTED, PUBLISHED, SUPERSEDED)


class Release(Base):
    """One event, under its stable slug; `record` is the latest validated record."""

    __tablename__ = "releases"
    __table_args__ = (Index("ix_releases_publish_at", "publish_at"),)  # publishing asks for embargoed releases
    slug: Mapped[str] = mapped_column(String(100), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    date: Mapped[dt.date]
    publish_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    fingerprint: Mapped[str] = mapped_column(String(32))
    record: Mapped[dict] = mapped_column(JSON)
    source_file: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    drafts: Mapped[list["Draft"]] = relationship(back_populates="release", order_by="Draft.id")


class RecordVersion(Base):
    """Every version of a release's record that drafts were made from: a page is assembled from
    the version its approved text was rendered from, never from a newer record awaiting review."""

    __tablename__ = "record_versions"
    release_slug: Mapped[str] = mapped_column(ForeignKey("releases.slug"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    record: Mapped[dict] = mapped_column(JSON)
    source_file: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Draft(Base):
    """A text for one release, language and channel, from one version of the record."""

    __tablename__ = "drafts"
    __table_args__ = (
        UniqueConstraint("release_slug", "lang", "channel", "fingerprint"),
        Index("ix_drafts_status", "status"),
        # Without it SQLite answers "this release's pending drafts in a language" through the
        # status index, i.e. by reading every pending draft: prepare grew with the square of N.
        Index("ix_drafts_slot_status", "release_slug", "lang", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_slug: Mapped[str] = mapped_column(ForeignKey("releases.slug"))
    lang: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    fingerprint: Mapped[str] = mapped_column(String(32))
    source_text: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    variant: Mapped[str | None] = mapped_column(String(20))
    qa: Mapped[list] = mapped_column(JSON, default=list)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    reviewer: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    # The revision a reviewer approved: what publishing reads. An edit after approval waits for
    # review as a new revision while this one stays published.
    approved_revision: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    release: Mapped[Release] = relationship(back_populates="drafts")
    revisions: Mapped[list["Revision"]] = relationship(back_populates="draft", order_by="Revision.number")


# One row per revision number of a draft: whatever a caller checked, the database itself refuses
# a second "revision 3". An index rather than a table constraint, so that get_engine adds it to
# stores created before it (SQLite cannot add a constraint to an existing table).
REVISION_NUMBER_UNIQUE = Index("uq_revisions_draft_number", "draft_id", "number", unique=True)


class Revision(Base):
    """Every text a draft has had: who wrote it, when, and why."""

    __tablename__ = "revisions"
    __table_args__ = (REVISION_NUMBER_UNIQUE,)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id"))
    number: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    # The text as typed fields (render.document): what publishing reads of an approved revision.
    # None only for a text that does not hold a release's structure, which cannot be approved.
    document: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    draft: Mapped[Draft] = relationship(back_populates="revisions")


@event.listens_for(REVISION_NUMBER_UNIQUE, "before_create")
def _renumber_duplicate_revisions(_index, connection, **_kw) -> None:
    """Before the unique index exists, two saves that raced may have left two revisions with one
    number: number such a draft's revisions again in the order they were written (no text is lost),
    so that the index can be created and the store opens."""
    revisions, drafts = Revision.__table__, Draft.__table__
    duplicated = connection.execute(select(revisions.c.draft_id).group_by(revisions.c.draft_id, revisions.c.number)
                                    .having(func.count() > 1)).scalars()
    for draft_id in set(duplicated):
        ids = connection.execute(select(revisions.c.id).where(revisions.c.draft_id == draft_id)
                                 .order_by(revisions.c.number, revisions.c.id)).scalars().all()
        for number, revision_id in enumerate(ids, start=1):
            connection.execute(update(revisions).where(revisions.c.id == revision_id).values(number=number))
        latest_text = select(revisions.c.text).where(revisions.c.id == ids[-1]).scalar_subquery()
        connection.execute(update(drafts).where(drafts.c.id == draft_id).values(revision=len(ids), text=latest_text))


class SkippedLanguage(Base):
    """A target language a release could not be prepared in, and why (shown in manifests)."""

    __tablename__ = "skipped_languages"
    __table_args__ = (UniqueConstraint("release_slug", "lang", "fingerprint"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_slug: Mapped[str] = mapped_column(ForeignKey("releases.slug"))
    lang: Mapped[str] = mapped_column(String(20))
    fingerprint: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


@migration(2)
def _approved_revisions(connection: Connection) -> None:
    """Drafts remember the revision a reviewer approved; releases keep every record version
    their drafts were made from. Before, an approved draft's current text was its approved one,
    and only the latest record was kept."""
    drafts = Draft.__table__
    if "approved_revision" not in table_columns(connection, "drafts"):
        connection.exec_driver_sql("ALTER TABLE drafts ADD COLUMN approved_revision INTEGER")
    connection.execute(update(drafts).where(drafts.c.status.in_((APPROVED, PUBLISHED)),
                                            drafts.c.approved_revision.is_(None))
                       .values(approved_revision=drafts.c.revision))
    releases, versions = Release.__table__, RecordVersion.__table__
    known = set(connection.execute(select(versions.c.release_slug, versions.c.fingerprint)))
    rows = [{"release_slug": r.slug, "fingerprint": r.fingerprint, "record": r.record, "source_file": r.source_file,
             "created_at": r.updated_at}
            for r in connection.execute(select(releases)) if (r.slug, r.fingerprint) not in known]
    if rows:
        connection.execute(insert(versions), rows)
    connection.exec_driver_sql("DROP TABLE IF EXISTS store_schema")  # the fingerprint numbering replaced


@migration(3)
def _fingerprints_without_defaults(connection: Connection) -> None:
    """Record fingerprints leave out fields at their defaults, so that a field added to the
    record model changes no stored record's fingerprint. Stored fingerprints of every known
    record version are recomputed, so no release is prepared again for it."""
    from ..records import record_fingerprint

    tables = [Release.__table__, RecordVersion.__table__, Draft.__table__, SkippedLanguage.__table__]
    versions = RecordVersion.__table__
    for slug, old, record in connection.execute(select(versions.c.release_slug, versions.c.fingerprint,
                                                       versions.c.record)).all():
        new = record_fingerprint(record)
        if new is None or new == old:
            continue
        for table in tables:
            slug_column = table.c.slug if table is Release.__table__ else table.c.release_slug
            connection.execute(update(table).where(slug_column == slug, table.c.fingerprint == old)
                               .values(fingerprint=new))


@migration(7)
def _revision_documents(connection: Connection) -> None:
    """Every revision keeps its text as a document (render.document), what publishing reads.
    Revisions stored before get theirs here, parsed once from their text against the record
    version their draft was made from; a text that does not parse keeps none (publishing and
    approval then say so)."""
    if "document" not in table_columns(connection, "revisions"):
        connection.exec_driver_sql("ALTER TABLE revisions ADD COLUMN document JSON")
    revisions, drafts, versions = Revision.__table__, Draft.__table__, RecordVersion.__table__
    query = (select(revisions.c.id, revisions.c.text, drafts.c.lang, drafts.c.channel, drafts.c.source_text,
                    versions.c.record)
             .join(drafts, drafts.c.id == revisions.c.draft_id)
             .join(versions, (versions.c.release_slug == drafts.c.release_slug)
                   & (versions.c.fingerprint == drafts.c.fingerprint), isouter=True)
             .where(revisions.c.document.is_(None)))
    shapes: dict[str, Any] = {}
    for row in connection.execute(query).all():
        found = revision_document(row.channel, row.lang, row.text, row.record, row.source_text, shapes)
        if found is not None:
            connection.execute(update(revisions).where(revisions.c.id == row.id).values(document=found))


def revision_document(channel: str, lang: str, text: str, record: dict | None, source_text: str,
                      shapes: dict | None = None) -> dict | None:
    """A stored revision's document, from the record version its draft was made from (None when
    that version is unknown or the text does not hold a release's structure)."""
    from ..records import Event
    from ..render.document import stored_document

    try:
        event = Event.model_validate(record) if record is not None else None
    except ValueError:
        event = None
    return stored_document(channel, lang, text, event, source_text, shapes) if event is not None else None


# --- releases and drafts -------------------------------------------------------------------


def upsert_release(session: Session, *, slug: str, title: str, date: dt.date, publish_at: dt.datetime | None,
                   fingerprint: str, record: dict[str, Any], source_file: str | None) -> tuple[Release, bool]:
    """Create or update a release; returns it and whether its record changed."""
    release = session.get(Release, slug)
    if release is None:
        release = Release(slug=slug, title=title, date=date, publish_at=publish_at, fingerprint=fingerprint,
                          record=record, source_file=source_file)
        session.add(release)
        return release, True
    changed = release.fingerprint != fingerprint
    if changed:
        release.title, release.date, release.publish_at = title, date, publish_at
        release.fingerprint, release.record, release.source_file = fingerprint, record, source_file
        release.updated_at = utcnow()
    return release, changed


def keep_record_version(session: Session, *, slug: str, fingerprint: str, record: dict[str, Any],
                        source_file: str | None) -> None:
    """Remember the record version drafts are about to be made from (once per version)."""
    if session.get(RecordVersion, (slug, fingerprint)) is None:
        session.add(RecordVersion(release_slug=slug, fingerprint=fingerprint, record=record, source_file=source_file))


def record_versions(session: Session, keys: list[tuple[str, str]]) -> dict[tuple[str, str], RecordVersion]:
    """(slug, fingerprint) -> the record version, for these keys."""
    found: dict[tuple[str, str], RecordVersion] = {}
    for chunk in in_batches(sorted(set(keys))):
        query = select(RecordVersion).where(tuple_(RecordVersion.release_slug, RecordVersion.fingerprint).in_(chunk))
        found.update({(v.release_slug, v.fingerprint): v for v in session.scalars(query)})
    return found


def has_drafts(session: Session, slug: str, lang: str, fingerprint: str) -> bool:
    """Whether this version of the record was already prepared in `lang`.

    A skipped language does not count: once its model is installed, the next prepare does it.
    """
    query = select(Draft.id).where(Draft.release_slug == slug, Draft.lang == lang, Draft.fingerprint == fingerprint)
    return session.execute(query.limit(1)).first() is not None


def begin_drafts(session: Session, slug: str, lang: str, fingerprint: str, channel: str | None = None) -> None:
    """Make room for a record version's new drafts in `lang` (one `channel`, or all): pending
    drafts of other versions are superseded, and the language is no longer skipped."""
    # Plain UPDATE/DELETE statements without an autoflush: the new drafts of a whole prepare are
    # then inserted in one batch at commit instead of one flush per draft.
    slot = [Draft.release_slug == slug, Draft.lang == lang] + ([Draft.channel == channel] if channel else [])
    with session.no_autoflush:
        session.execute(
            update(Draft).where(*slot, Draft.fingerprint != fingerprint, Draft.status == PENDING)
            .values(status=SUPERSEDED, updated_at=utcnow()),
            execution_options={"synchronize_session": False},
        )
        session.execute(
            delete(SkippedLanguage).where(SkippedLanguage.release_slug == slug, SkippedLanguage.lang == lang,
                                          SkippedLanguage.fingerprint == fingerprint),
            execution_options={"synchronize_session": False},
        )


def add_draft(session: Session, *, slug: str, lang: str, channel: str, fingerprint: str, source_text: str, text: str,
              variant: str | None = None, qa: list | None = None, meta: dict | None = None,
              status: str = PENDING, author: str = "pressflow", begun: bool = False,
              document: dict | None = None) -> Draft:
    """Store a new draft (first revision); older pending drafts of the same slot are superseded
    (here, unless the caller did it for the whole language with `begin_drafts`: `begun`)."""
    if not begun:
        begin_drafts(session, slug, lang, fingerprint, channel)
    draft = Draft(release_slug=slug, lang=lang, channel=channel, fingerprint=fingerprint, source_text=source_text,
                  text=text, variant=variant, qa=qa or [], meta=meta or {}, status=status,
                  approved_revision=1 if status == APPROVED else None)
    draft.revisions.append(Revision(number=1, text=text, author=author, note="prepared", document=document))
    session.add(draft)
    return draft


def record_skip(session: Session, *, slug: str, lang: str, fingerprint: str, reason: str) -> None:
    """Remember why a language is missing from this version of a release (latest reason wins)."""
    skip = session.scalar(select(SkippedLanguage).where(
        SkippedLanguage.release_slug == slug, SkippedLanguage.lang == lang, SkippedLanguage.fingerprint == fingerprint))
    if skip is None:
        session.add(SkippedLanguage(release_slug=slug, lang=lang, fingerprint=fingerprint, reason=reason))
    else:
        skip.reason, skip.created_at = reason, utcnow()


def skipped_languages(session: Session, slug: str, fingerprint: str) -> dict[str, str]:
    return skipped_languages_of(session, {slug: fingerprint}).get(slug, {})


def _drafts_query(*, status: str | None = None, lang: str | None = None, channel: str | None = None,
                  slug: str | None = None):
    query = select(Draft).order_by(Draft.created_at, Draft.id)
    if status:
        query = query.where(Draft.status == status)
    if lang:
        query = query.where(Draft.lang == lang)
    if channel:
        query = query.where(Draft.channel == channel)
    if slug:
        query = query.where(Draft.release_slug == slug)
    return query


def list_drafts(session: Session, **filters: str | None) -> list[Draft]:
    """Drafts, oldest first, optionally filtered (status, lang, channel, slug)."""
    return list(session.scalars(_drafts_query(**filters)))


def draft_ids(session: Session, **filters: str | None) -> list[int]:
    """The ids of `list_drafts`, without loading the drafts: for queues too long to hold."""
    return list(session.scalars(_drafts_query(**filters).with_only_columns(Draft.id)))


def draft_summaries(session: Session, **filters: str | None) -> list:
    """(id, status, lang, release_slug, qa) rows of `list_drafts`, oldest first: enough to filter
    and count a queue of tens of thousands of drafts without loading their texts."""
    columns = (Draft.id, Draft.status, Draft.lang, Draft.release_slug, Draft.qa)
    return list(session.execute(_drafts_query(**filters).with_only_columns(*columns)))


def draft_languages(session: Session) -> list[str]:
    """Every language that has drafts, without loading them."""
    return sorted(session.scalars(select(Draft.lang).distinct()))


def drafts_by_id(session: Session, ids: list[int], *, status: str | None = None) -> list[Draft]:
    """These drafts (at most one `in_batches` slice), oldest first; with `status`, only those still in it."""
    query = select(Draft).where(Draft.id.in_(ids)).order_by(Draft.created_at, Draft.id)
    if status:
        query = query.where(Draft.status == status)
    return list(session.scalars(query))


class NoSuchDraft(ReviewError):
    """No draft has this id."""


# Ids are 64-bit signed integers in both databases: a larger number names no draft (and would
# overflow SQLite's driver or PostgreSQL's bigint instead of simply matching nothing).
MAX_ID = 2**63 - 1


def get_draft(session: Session, draft_id: int) -> Draft:
    draft = session.get(Draft, draft_id) if 0 < draft_id <= MAX_ID else None
    if draft is None:
        raise NoSuchDraft(f"no draft with id {draft_id}; see `pressflow review list`")
    return draft


class DraftChanged(ReviewError):
    """The draft changed (a save, a decision) after the caller read it; nothing was written."""

    def __init__(self, message: str, *, draft_id: int, seen_revision: int, revision: int, status: str,
                 author: str, reviewer: str | None):
        super().__init__(message)
        self.draft_id, self.seen_revision, self.revision = draft_id, seen_revision, revision
        self.status, self.author, self.reviewer = status, author, reviewer


def _claim(session: Session, draft: Draft, seen_revision: int, **values: Any) -> bool:
    """Compare-and-set: write `values` only while the draft is still at the revision and status
    the caller read. Of two requests made at once, the database lets exactly one match."""
    if seen_revision != draft.revision:
        return False  # the loaded draft is already newer: no need to take the write lock
    result = session.execute(
        update(Draft).where(Draft.id == draft.id, Draft.revision == seen_revision, Draft.status == draft.status)
        .values(updated_at=utcnow(), **values),
        # "fetch" refreshes the loaded draft only when its row really changed
        execution_options={"synchronize_session": "fetch"},
    )
    return result.rowcount == 1


def _changed(session: Session, draft_id: int, seen_revision: int, then: str) -> DraftChanged:
    """Say who changed the draft since the caller read it, and what to do `then`."""
    current = session.execute(select(Draft.revision, Draft.status, Draft.reviewer).where(Draft.id == draft_id)).one()
    author = session.scalar(select(Revision.author).where(Revision.draft_id == draft_id)
                            .order_by(Revision.number.desc()).limit(1))
    if current.revision != seen_revision:
        message = (f"draft {draft_id} was changed by {author} (revision {current.revision}) "
                   f"after you opened it (revision {seen_revision}); reload and {then}")
    else:
        by = f" by {current.reviewer}" if current.reviewer else ""
        message = f"draft {draft_id} became {current.status}{by} after you opened it; reload and {then}"
    return DraftChanged(message, draft_id=draft_id, seen_revision=seen_revision, revision=current.revision,
                        status=current.status, author=author, reviewer=current.reviewer)


def set_status(session: Session, draft: Draft, status: str, *, reviewer: str, reason: str | None = None,
               expected_revision: int | None = None, expected_status: str | None = None) -> None:
    """Approve or reject a pending draft (approving an approved one is a no-op).

    With `expected_revision`, only that revision is decided on: a reviewer approves the text they
    read, not one saved meanwhile. With `expected_status`, only a draft still in the status the
    reviewer saw is decided on: a decision made meanwhile, even in an earlier request, is not
    replaced (the same decision by the same reviewer, a form sent twice, is a no-op). Either way a
    decision made meanwhile is not silently replaced.
    """
    valid_name(reviewer)
    if status == draft.status and expected_revision in (None, draft.revision) and (
            expected_status in (None, draft.status) or (draft.reviewer, draft.reason) == (reviewer, reason)):
        return
    seen = draft.revision if expected_revision is None else expected_revision
    if expected_status is not None and expected_status != draft.status:
        raise _changed(session, draft.id, seen, "decide again")
    if draft.status not in (PENDING, APPROVED, REJECTED):
        raise ReviewError(f"draft {draft.id} is {draft.status}; only pending drafts can be reviewed")
    # Approving publishes exactly the revision approved. Rejecting withdraws that approval when
    # it is the revision rejected; rejecting a later edit leaves the earlier approval standing.
    approved_revision = seen if status == APPROVED else (
        None if draft.approved_revision == seen else draft.approved_revision)
    if not _claim(session, draft, seen, status=status, reviewer=reviewer, reason=reason,
                  approved_revision=approved_revision):
        raise _changed(session, draft.id, seen, "decide again")


def edit_draft(session: Session, draft: Draft, text: str, *, author: str, expected_revision: int | None = None,
               note: str | None = None, qa: list | None = None, meta: dict | None = None,
               document: dict | None = None) -> Revision:
    """Save a text as a new revision awaiting review; refuse it if someone saved in between.

    An edit never approves, whoever makes it and however it came (the review page, the CLI, an
    XLIFF file): the new revision waits for a reviewer's approval, and the revision approved
    before, if any, stays published until then.
    """
    valid_name(author, "author's name")
    seen = draft.revision if expected_revision is None else expected_revision
    if seen == draft.revision and draft.status not in (PENDING, APPROVED, REJECTED, PUBLISHED):
        raise ReviewError(f"draft {draft.id} is {draft.status} and can no longer be edited")
    checked = {key: value for key, value in (("qa", qa), ("meta", meta)) if value is not None}
    if not _claim(session, draft, seen, revision=seen + 1, text=text, status=PENDING, reviewer=None, reason=None,
                  **checked):
        raise _changed(session, draft.id, seen, "apply your edit again")
    revision = Revision(number=seen + 1, text=text, author=author, note=note, document=document)
    draft.revisions.append(revision)
    return revision


def document_of(session: Session, draft_id: int, number: int) -> dict | None:
    """The document of one revision of a draft (None: it has none)."""
    return session.scalar(select(Revision.document).where(Revision.draft_id == draft_id, Revision.number == number))


def set_document(session: Session, draft_id: int, number: int, document: dict) -> None:
    """Give a revision stored without a document its document."""
    session.execute(update(Revision).where(Revision.draft_id == draft_id, Revision.number == number)
                    .values(document=document), execution_options={"synchronize_session": False})


def keep_meta(session: Session, draft: Draft, meta: dict) -> None:
    """Store what was derived from the draft's current revision (its sentence layout), unless
    the draft moved on meanwhile: a cache, so losing the race loses nothing."""
    session.execute(update(Draft).where(Draft.id == draft.id, Draft.revision == draft.revision).values(meta=meta),
                    execution_options={"synchronize_session": False})


def publishable_drafts(session: Session, slug: str) -> dict[str, dict[str, Any]]:
    """For each language, the approved revision of each channel (see `publishable_drafts_of`)."""
    return publishable_drafts_of(session, [slug]).get(slug, {})


def publishable_drafts_of(session: Session, slugs: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """slug -> language -> channel -> the approved revision to publish (id, text, document, status,
    updated_at, fingerprint), one query per 500 releases.

    One version of the record per language: the newest version whose press release has an
    approved revision, with the approved posts of that same version only. A newer version
    awaiting review leaves the approved one published; a post approved for a version whose
    release is not approved yet waits with it.

    Only what publishing reads is loaded, as plain rows: a first publish reads every release's
    drafts, and their review data (segments, source text, QA) would make its memory grow with
    the archive.
    """
    candidates: dict[str, dict[str, list]] = {}
    for chunk in in_batches(slugs):
        query = (select(Draft.release_slug, Draft.lang, Draft.channel, Draft.id, Revision.text, Revision.document,
                        Draft.status, Draft.updated_at, Draft.fingerprint, Draft.created_at)
                 .join(Revision, (Revision.draft_id == Draft.id) & (Revision.number == Draft.approved_revision))
                 .where(Draft.release_slug.in_(chunk), Draft.approved_revision.is_not(None))
                 .order_by(Draft.created_at.desc(), Draft.id.desc()))
        for row in session.execute(query):
            candidates.setdefault(row.release_slug, {}).setdefault(row.lang, []).append(row)
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for slug, languages in candidates.items():
        for lang, rows in languages.items():
            version = next((r.fingerprint for r in rows if r.channel == "release"), None)
            if version is None:
                continue  # no approved press release in this language: nothing of it goes out
            chosen: dict[str, Any] = {}
            for row in rows:  # newest first: the newest approved draft of each channel of that version
                if row.fingerprint == version:
                    chosen.setdefault(row.channel, row)
            result.setdefault(slug, {})[lang] = chosen
    return result


def skipped_languages_of(session: Session, fingerprints: dict[str, str]) -> dict[str, dict[str, str]]:
    """slug -> language -> why it is missing, for these releases as they stand (slug -> fingerprint)."""
    S = SkippedLanguage
    found: dict[str, dict[str, str]] = {}
    for chunk in in_batches(list(fingerprints)):
        rows = session.execute(select(S.release_slug, S.lang, S.fingerprint, S.reason).where(S.release_slug.in_(chunk)))
        for slug, lang, fingerprint, reason in rows:
            if fingerprints[slug] == fingerprint:
                found.setdefault(slug, {})[lang] = reason
    return found


def embargoed_releases(session: Session, now: dt.datetime) -> list[str]:
    # Sorted here: asked to sort, SQLite walks every release in slug order instead of the
    # few in the embargo index.
    return sorted(session.scalars(select(Release.slug).where(Release.publish_at > now)))


def releases_to_publish(session: Session, now: dt.datetime, *, everything: bool) -> list[str]:
    """Releases past their embargo with approved text not yet published (`everything`: with any
    approved or published text), in date order."""
    # Through the drafts' status index: the approved drafts are few, the releases many.
    approved = Draft.approved_revision.is_not(None) if everything else Draft.status == APPROVED
    with_text = select(Draft.release_slug).where(approved).distinct()
    query = (select(Release.slug).where(Release.slug.in_(with_text),
                                        (Release.publish_at.is_(None)) | (Release.publish_at <= now))
             .order_by(Release.date, Release.slug))
    return list(session.scalars(query))


def release_rows(session: Session, slugs: list[str]) -> list[Release]:
    rows: list[Release] = []
    for chunk in in_batches(slugs):
        rows += session.scalars(select(Release).where(Release.slug.in_(chunk)))
    order = {slug: i for i, slug in enumerate(slugs)}
    return sorted(rows, key=lambda r: order[r.slug])



def get_release(session: Session, slug: str) -> Release | None:
    return session.get(Release, slug)


def past_embargo(session: Session, slug: str, now: dt.datetime) -> bool:
    """Whether the release exists and its embargo (if any) has passed `now`."""
    release = session.get(Release, slug)
    return release is not None and (release.publish_at is None or release.publish_at <= now)


def pending_languages(session: Session) -> dict[str, list[str]]:
    """slug -> languages with a draft waiting for review, both sorted."""
    found: dict[str, list[str]] = {}
    query = select(Draft.release_slug, Draft.lang).where(Draft.status == PENDING).distinct()
    for slug, lang in session.execute(query.order_by(Draft.release_slug, Draft.lang)):
        found.setdefault(slug, []).append(lang)
    return found


def all_releases(session: Session) -> list[Release]:
    return list(session.scalars(select(Release)))


def release_titles(session: Session, slugs: list[str]) -> dict[str, str]:
    """slug -> title, of these releases."""
    return {slug: title for batch in in_batches(slugs)
            for slug, title in session.execute(select(Release.slug, Release.title).where(Release.slug.in_(batch)))}


def mark_published(session: Session, ids: list[int], now: dt.datetime) -> None:
    """These approved drafts went out."""
    for batch in in_batches(ids):  # one UPDATE per 500 drafts
        session.execute(
            update(Draft)
            .where(Draft.id.in_(batch), Draft.status == APPROVED)
            .values(status=PUBLISHED, updated_at=now),
            execution_options={"synchronize_session": "fetch"},
        )


def mark_unpublished(session: Session, slugs: list[str], now: dt.datetime) -> None:
    """The published drafts of these releases wait as approved again (they are under embargo anew)."""
    for chunk in in_batches(slugs):
        session.execute(
            update(Draft)
            .where(Draft.release_slug.in_(chunk), Draft.status == PUBLISHED)
            .values(status=APPROVED, updated_at=now),
            execution_options={"synchronize_session": "fetch"},
        )
