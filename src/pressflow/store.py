"""The draft store: releases, their drafts in every language, reviews and translation memory.

A real database, because reviewers, flows and the web page touch it at once: SQLite by default,
any SQLAlchemy URL (PostgreSQL) for a team. Drafts are never overwritten: a changed record adds
new drafts (older pending ones become 'superseded') and every edit adds a revision.

Every table is defined here, and the schema is created and upgraded in one place
(`create_schema`, under a lock on the store), whichever process opens the store first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import filelock

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, load_only, mapped_column, relationship, sessionmaker

from .core.errors import ReviewError
from .core.files import private_file

PENDING, APPROVED, REJECTED, PUBLISHED, SUPERSEDED = "draft", "approved", "rejected", "published", "superseded"
STATUSES = (PENDING, APPROVED, REJECTED, PUBLISHED, SUPERSEDED)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def in_batches(items: list, size: int = 500) -> Iterator[list]:
    """`items` in slices small enough for one `IN (...)`: SQLite bounds bound parameters."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes stored as UTC: SQLite forgets zones, so we restore UTC on reading."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime: pressflow stores timezone-aware times only")
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=dt.timezone.utc) if value is not None else None


class Base(DeclarativeBase):
    pass


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


class MemoryEntry(Base):
    """Translation memory: one translated segment. Human entries win over machine ones."""

    __tablename__ = "translation_memory"
    __table_args__ = (
        UniqueConstraint("source_hash", "source_lang", "target_lang", "engine", "origin"),
        Index("ix_tm_lookup", "source_lang", "target_lang", "source_hash"),
        # max(created_at) says whether the memory changed since suggestions were cached
        Index("ix_tm_created", "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_hash: Mapped[str] = mapped_column(String(64))
    source_text: Mapped[str] = mapped_column(Text)
    source_lang: Mapped[str] = mapped_column(String(20))
    target_lang: Mapped[str] = mapped_column(String(20))
    engine: Mapped[str] = mapped_column(String(200))  # model id and version, or "human"
    origin: Mapped[str] = mapped_column(String(10))  # "machine" or "human"
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MemorySource(Base):
    """A distinct source sentence of the memory, as fuzzy matching finds it (`pressflow.fuzzy`):
    folded (numbers as ⟦#⟧, lower case) under a trigram index: FTS5 on SQLite, pg_trgm on PostgreSQL."""

    __tablename__ = "memory_sources"
    __table_args__ = (UniqueConstraint("source_lang", "source_hash"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_lang: Mapped[str] = mapped_column(String(20))
    source_hash: Mapped[str] = mapped_column(String(64))
    folded: Mapped[str] = mapped_column(Text)
    length: Mapped[int] = mapped_column(Integer)


class MemoryGram(Base):
    """How many memory sources of a language hold a trigram: the candidate search reads the
    index for a sentence's rarest trigrams only (common ones would list most of the memory)."""

    __tablename__ = "memory_grams"
    source_lang: Mapped[str] = mapped_column(String(20), primary_key=True)
    gram: Mapped[str] = mapped_column(String(16), primary_key=True)
    docs: Mapped[int] = mapped_column(Integer)


class SuggestionCache(Base):
    """A draft revision's memory suggestions, as computed when it was first shown; `stamp` is the
    memory's state then (a newer entry anywhere makes them be computed again)."""

    __tablename__ = "suggestion_cache"
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id"), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    stamp: Mapped[str] = mapped_column(String(100))
    suggestions: Mapped[dict] = mapped_column(JSON)


class SentenceSplit(Base):
    """Where a line of source prose splits into sentences (pysbd's answer, kept: it is slow)."""

    __tablename__ = "sentence_splits"
    __table_args__ = (UniqueConstraint("line_hash", "language"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_hash: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(20))
    spans: Mapped[str] = mapped_column(Text)  # JSON [[start, end], ...]


# Reviewer names are written into drafts, revisions and the memory: one limit for all of them,
# checked where a name enters (accounts, sign-in, the CLI's --reviewer), never left to a
# database that would either cut it (PostgreSQL refuses it mid-transaction) or accept it (SQLite).
NAME_LIMIT = 100


def valid_name(name: str, what: str = "reviewer name") -> str:
    """`name` if it fits the store's name columns, else a one-line ReviewError."""
    if not name.strip():
        raise ReviewError(f"the {what} is empty")
    if len(name) > NAME_LIMIT:
        raise ReviewError(f"the {what} {name[:20]!r}... is {len(name)} characters long; at most {NAME_LIMIT}")
    return name


class Reviewer(Base):
    """A review page account; an empty `languages` list means every language."""

    __tablename__ = "reviewers"
    name: Mapped[str] = mapped_column(String(NAME_LIMIT), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    languages: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ReviewSession(Base):
    """A review page sign-in, checked on every request: signing out deletes it, and a password
    change or an account's removal deletes all of that name's. The cookie holds the session id;
    only its SHA-256 is stored, so reading the database does not let anyone sign in."""

    __tablename__ = "review_sessions"
    __table_args__ = (Index("ix_review_sessions_name", "name"),)
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LIMIT))
    kind: Mapped[str] = mapped_column(String(20))  # "account", or the tag of the shared token used
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets reviewers read while a flow writes; the busy timeout makes concurrent writers
    # wait for each other instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# --- the schema: numbered migrations, run in one place ---------------------------------------
#
# Every table is a `Base` subclass defined in this module (or in a module named in
# SCHEMA_MODULES, imported before the schema is made). A store records, in `schema_migrations`,
# the number of every migration it has run; opening a store whose last number is this code's
# LATEST_MIGRATION does nothing more than read that number. Otherwise the missing migrations
# run in order, under one lock on the store (a PostgreSQL advisory lock, a lock file beside a
# SQLite file), so two processes opening an empty database at once cannot both run one.
#
# Migration 1 is the baseline: it creates what a store lacks and runs the idempotent upgrade
# steps (@schema_upgrade) that stores made before numbering may need. Each later migration
# changes the schema or its data once, and is written so that running it on a store that
# already has its change is harmless (a new store gets new tables and columns from the baseline).

SCHEMA_MODULES: list[str] = ["pressflow.fuzzy"]  # the memory's trigram index (FTS5 / pg_trgm)
SCHEMA_UPGRADES: list[Callable[[Connection], None]] = []
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}
# PostgreSQL advisory lock keys (64-bit): any fixed numbers nobody else on the server uses.
_SCHEMA_LOCK_KEY = 0x7072_6573_7366_0001
PREPARE_LOCK_KEY = 0x7072_6573_7366_0002


def schema_upgrade(step: Callable[[Connection], None]) -> Callable[[Connection], None]:
    """Register `step(connection)`, an idempotent upgrade of stores made before numbered
    migrations, to run in the baseline migration, in registration order."""
    SCHEMA_UPGRADES.append(step)
    return step


def migration(number: int) -> Callable[[Callable[[Connection], None]], Callable[[Connection], None]]:
    """Register a numbered migration; numbers are consecutive and never reused."""
    def register(step: Callable[[Connection], None]) -> Callable[[Connection], None]:
        assert number not in MIGRATIONS, f"migration {number} is defined twice"
        MIGRATIONS[number] = step
        return step
    return register


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite:///") or url.removeprefix("sqlite:///") in ("", ":memory:"):
        return None
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0])


def lock_file(path: Path, purpose: str) -> filelock.FileLock:
    """A lock file beside the SQLite file `path`, readable by its owner only."""
    return filelock.FileLock(f"{path}.{purpose}-lock", mode=0o600)


@contextmanager
def _schema_lock(engine: Engine, url: str) -> Iterator[Connection]:
    """A transaction that no other process making the schema runs at the same time."""
    path = sqlite_path(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:  # PostgreSQL's DDL is transactional: all or nothing
            connection.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            yield connection
    elif path is not None:
        with lock_file(path, "schema"), engine.begin() as connection:
            yield connection
    else:
        with engine.begin() as connection:
            yield connection


class SchemaMigration(Base):
    """One numbered migration this store has run."""

    __tablename__ = "schema_migrations"
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


def latest_migration() -> int:
    return max(MIGRATIONS)


def schema_version(connection: Connection) -> int:
    """The last migration this store ran; 0 for a new store or one made before numbering."""
    if not inspect(connection).has_table(SchemaMigration.__tablename__):
        return 0
    return connection.scalar(select(func.max(SchemaMigration.number))) or 0


def schema_is_current(engine: Engine) -> bool:
    with engine.connect() as connection:
        return schema_version(connection) == latest_migration()


def create_schema(engine: Engine, url: str) -> None:
    """Run the migrations this store has not run, in order, under the schema lock."""
    for module in SCHEMA_MODULES:
        importlib.import_module(module)
    with _schema_lock(engine, url) as connection:
        done = schema_version(connection)  # again under the lock: another process may have run them
        for number in sorted(n for n in MIGRATIONS if n > done):
            MIGRATIONS[number](connection)
            connection.execute(insert(SchemaMigration).values(number=number, applied_at=utcnow()))


@migration(1)
def _baseline(connection: Connection) -> None:
    """Every table and index of this code, and the upgrades of stores made before numbering."""
    Base.metadata.create_all(connection)
    for step in SCHEMA_UPGRADES:  # columns first: an index added since may use one
        step(connection)
    for table in Base.metadata.sorted_tables:  # indexes added since a store was created
        for index in table.indexes:
            index.create(connection, checkfirst=True)


def _columns(connection: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns(table)}


@migration(2)
def _approved_revisions(connection: Connection) -> None:
    """Drafts remember the revision a reviewer approved; releases keep every record version
    their drafts were made from. Before, an approved draft's current text was its approved one,
    and only the latest record was kept."""
    drafts = Draft.__table__
    if "approved_revision" not in _columns(connection, "drafts"):
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
    from .records import record_fingerprint

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


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(url: str) -> Engine:
    """One engine per database URL per process, with its schema created and upgraded."""
    with _engines_lock:
        if url not in _engines:
            path = sqlite_path(url)
            if path is not None:
                private_file(path)
            engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
            if url.startswith("sqlite"):
                event.listen(engine, "connect", _sqlite_pragmas)
            if not schema_is_current(engine):
                create_schema(engine, url)
            _engines[url] = engine
        return _engines[url]


@contextmanager
def exclusive(url: str, purpose: str, key: int, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Run the block while no other process holds this store's `purpose` lock; if one does, call
    `on_wait` once, then wait for it. PostgreSQL: an advisory lock (`key`) on a connection of its
    own, released if the process dies; SQLite: a lock file beside the database file."""
    engine, path = get_engine(url), sqlite_path(url)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if not connection.scalar(select(func.pg_try_advisory_lock(key))):
                if on_wait:
                    on_wait()
                connection.execute(select(func.pg_advisory_lock(key)))
            try:
                yield
            finally:
                connection.execute(select(func.pg_advisory_unlock(key)))
    elif path is not None:
        lock = lock_file(path, purpose)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            if on_wait:
                on_wait()
            lock.acquire()
        try:
            yield
        finally:
            lock.release()
    else:  # an in-memory database belongs to one process anyway
        yield


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A transaction: committed when the block ends, rolled back on error."""
    session = sessionmaker(get_engine(url), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


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
              status: str = PENDING, author: str = "pressflow", begun: bool = False) -> Draft:
    """Store a new draft (first revision); older pending drafts of the same slot are superseded
    (here, unless the caller did it for the whole language with `begin_drafts`: `begun`)."""
    if not begun:
        begin_drafts(session, slug, lang, fingerprint, channel)
    draft = Draft(release_slug=slug, lang=lang, channel=channel, fingerprint=fingerprint, source_text=source_text,
                  text=text, variant=variant, qa=qa or [], meta=meta or {}, status=status)
    draft.revisions.append(Revision(number=1, text=text, author=author, note="prepared"))
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
               note: str | None = None, qa: list | None = None, meta: dict | None = None) -> Revision:
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
    if not _claim(session, draft, seen, revision=seen + 1, text=text, status=PENDING, reason=None, **checked):
        raise _changed(session, draft.id, seen, "apply your edit again")
    revision = Revision(number=seen + 1, text=text, author=author, note=note)
    draft.revisions.append(revision)
    return revision


def keep_meta(session: Session, draft: Draft, meta: dict) -> None:
    """Store what was derived from the draft's current revision (its sentence layout), unless
    the draft moved on meanwhile: a cache, so losing the race loses nothing."""
    session.execute(update(Draft).where(Draft.id == draft.id, Draft.revision == draft.revision).values(meta=meta),
                    execution_options={"synchronize_session": False})


def publishable_drafts(session: Session, slug: str) -> dict[str, dict[str, Any]]:
    """For each language, the approved revision of each channel (see `publishable_drafts_of`)."""
    return publishable_drafts_of(session, [slug]).get(slug, {})


def publishable_drafts_of(session: Session, slugs: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """slug -> language -> channel -> the approved revision to publish (id, text, status,
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
        query = (select(Draft.release_slug, Draft.lang, Draft.channel, Draft.id, Revision.text, Draft.status,
                        Draft.updated_at, Draft.fingerprint, Draft.created_at)
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


def awaiting_review(session: Session) -> dict[str, list[str]]:
    """slug -> published languages with newer text waiting for review (a changed record's new
    drafts, or an edit of an approved one): the approved version stays published meanwhile."""
    published = select(Publication.id).where(Publication.release_slug == Draft.release_slug,
                                             Publication.lang == Draft.lang).exists()
    found: dict[str, list[str]] = {}
    query = select(Draft.release_slug, Draft.lang).where(Draft.status == PENDING, published).distinct()
    for slug, lang in session.execute(query.order_by(Draft.release_slug, Draft.lang)):
        found.setdefault(slug, []).append(lang)
    return found


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


# --- publication bookkeeping ---------------------------------------------------------------
#
# What publishing keeps so that a run costs what changed, not the archive: each published
# release-language as lists of releases show it (feeds, index pages), each published release's
# sitemap lines and the sitemap part they are in, and the fingerprint of what every page
# depends on (templates, site URL, ...). Publishing reads and writes these only through the
# functions below.


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


def publications(session: Session, slugs: list[str]) -> dict[tuple[str, str], tuple]:
    """(content_hash, published_at, updated_at) per (slug, lang) of these releases."""
    P = Publication
    found: dict[tuple[str, str], tuple] = {}
    for chunk in in_batches(slugs):
        rows = session.execute(select(P.release_slug, P.lang, P.content_hash, P.published_at, P.updated_at)
                               .where(P.release_slug.in_(chunk)))
        found.update(((slug, lang), tuple(rest)) for slug, lang, *rest in rows)
    return found


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


class SqlMemory:
    """The translation memory in the store, as the translation stage wants it."""

    def __init__(self, url: str, author: str | None = None):
        self.url, self.author = url, author if author is None else valid_name(author, "author's name")

    def lookup(self, source: str, target: str, engine: str, segments: list[str]) -> dict[str, str]:
        """Known translations of `segments` by `engine` ("human" for reviewers' edits)."""
        found: dict[str, str] = {}
        by_hash = {text_hash(s): s for s in segments}
        hashes = list(by_hash)
        with session_scope(self.url) as session:
            for batch in in_batches(hashes):
                rows = session.execute(
                    select(MemoryEntry.source_hash, MemoryEntry.text)
                    .where(MemoryEntry.source_lang == source, MemoryEntry.target_lang == target,
                           MemoryEntry.engine == engine, MemoryEntry.source_hash.in_(batch))
                    .order_by(MemoryEntry.created_at)
                )
                for digest, text in rows:
                    found[by_hash[digest]] = text
        return found

    def save(self, source: str, target: str, engine: str, pairs: dict[str, str]) -> None:
        """Remember translations; a human entry replaces an earlier human entry for the segment."""
        origin = "human" if engine == "human" else "machine"
        by_hash = {text_hash(segment): (segment, text) for segment, text in pairs.items()}
        hashes = list(by_hash)
        with session_scope(self.url) as session, session.no_autoflush:
            for batch in in_batches(hashes):  # existing entries are updated, in bulk lookups
                for entry in session.scalars(select(MemoryEntry).where(
                        MemoryEntry.source_hash.in_(batch), MemoryEntry.source_lang == source,
                        MemoryEntry.target_lang == target, MemoryEntry.engine == engine,
                        MemoryEntry.origin == origin)):
                    _, text = by_hash.pop(entry.source_hash)
                    entry.text, entry.author, entry.created_at = text, self.author, utcnow()
            if by_hash:  # new ones in one multi-row INSERT
                session.execute(insert(MemoryEntry), [
                    {"source_hash": digest, "source_text": segment, "source_lang": source, "target_lang": target,
                     "engine": engine, "origin": origin, "text": text, "author": self.author, "created_at": utcnow()}
                    for digest, (segment, text) in by_hash.items()])
                from . import fuzzy

                fuzzy.add_sources(session, source, [segment for segment, _ in by_hash.values()])

    def suggest(self, source: str, target: str, keys: list[str]) -> dict[str, list]:
        """Fuzzy matches (>= 75%) of protected sentences, best first (see `pressflow.fuzzy`)."""
        from . import fuzzy

        with session_scope(self.url) as session:
            return fuzzy.suggest(session, source, target, keys)

    def spans(self, language: str, lines: list[str]) -> dict[str, list[list[int]]]:
        """Sentence spans of `lines` found by an earlier run."""
        by_hash = {text_hash(line): line for line in lines}
        hashes = list(by_hash)
        found: dict[str, list[list[int]]] = {}
        with session_scope(self.url) as session:
            for batch in in_batches(hashes):
                rows = session.execute(select(SentenceSplit.line_hash, SentenceSplit.spans).where(
                    SentenceSplit.language == language, SentenceSplit.line_hash.in_(batch)))
                found.update((by_hash[digest], json.loads(spans)) for digest, spans in rows)
        return found

    def save_spans(self, language: str, spans: dict[str, Any]) -> None:
        """Keep sentence spans for the next run; lines already kept are left alone."""
        rows = [{"line_hash": text_hash(line), "language": language, "spans": json.dumps(found)}
                for line, found in spans.items()]
        try:
            with session_scope(self.url) as session:
                for chunk in in_batches(rows):
                    known = set(session.scalars(select(SentenceSplit.line_hash).where(
                        SentenceSplit.language == language,
                        SentenceSplit.line_hash.in_([row["line_hash"] for row in chunk]))))
                    new = [row for row in chunk if row["line_hash"] not in known]
                    if new:
                        session.execute(insert(SentenceSplit), new)
        except IntegrityError:
            pass  # a concurrent run kept the same lines first: they are kept, which is all this is for


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
