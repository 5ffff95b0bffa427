"""The database every stage keeps its tables in: engines, sessions, locks, and the numbered
migrations that make and upgrade a store.

A real database, because reviewers, flows and the web page touch it at once: SQLite by default,
any SQLAlchemy URL (PostgreSQL) for a team. Each stage owns its tables and the queries against
them (`drafts.store`, `drafts.reviewers`, `memory.store`, `publish.ledger`); this module owns
none. They share `Base`, and their migrations register here; the schema is created and upgraded
in one place (`create_schema`, under a lock on the store), whichever process opens the store first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import filelock

from sqlalchemy import DateTime, Integer, TypeDecorator, create_engine, event, func, insert, inspect, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from .errors import LockWaitTimeout, ReviewError
from .files import private_file
from .text_rules import name_problem


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


# Reviewer names are written into drafts, revisions and the memory: one limit for all of them,
# checked where a name enters (accounts, sign-in, the CLI's --reviewer), never left to a
# database that would either cut it (PostgreSQL refuses it mid-transaction) or accept it (SQLite).
NAME_LIMIT = 100


def valid_name(name: str, what: str = "reviewer name") -> str:
    """`name` if it fits the store's name columns and is one line of visible characters (the
    audit trail's rule, text_rules.name_problem), else a one-line ReviewError."""
    if found := name_problem(name):
        raise ReviewError(f"the {what} {name[:20]!r}{'...' if len(name) > 20 else ''} {found}")
    return name


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
# Every table is a `Base` subclass defined in a module of the stage that owns it, named in
# SCHEMA_MODULES: the core imports them by name before it makes the schema, so it imports no
# stage. A store records, in `schema_migrations`, the number of every migration it has run;
# opening a store that ran every number up to this code's LATEST_MIGRATION does nothing more than
# read that (without importing the stages). Otherwise the migrations it has not run
# run in order, under one lock on the store (a PostgreSQL advisory lock, a lock file beside a
# SQLite file), so two processes opening an empty database at once cannot both run one.
#
# Migrations run by number, each one a store lacks, so that a migration merged in with a lower
# number than one a store already ran (parallel branches number theirs apart) still runs.
#
# Migration 1 is the baseline: it creates what a store lacks and runs the idempotent upgrade
# steps (@schema_upgrade) that stores made before numbering may need. Each later migration
# changes the schema or its data once, and is written so that running it on a store that
# already has its change is harmless (a new store gets new tables and columns from the baseline).

# The modules that define tables or register migrations and upgrades, in the order their
# upgrades of stores made before numbering run.
SCHEMA_MODULES: list[str] = [
    "pressflow.drafts.store",  # releases, record versions, drafts, revisions, skipped languages
    "pressflow.drafts.reviewers",  # review page accounts and sign-ins
    "pressflow.drafts.notices",  # the notices outbox (migration 5)
    "pressflow.publish.ledger",  # publications, published entries, sitemap lines, publish state
    "pressflow.memory.store",  # translation memory, suggestion cache, sentence splits
    "pressflow.memory.fuzzy",  # the memory's trigram index (FTS5 / pg_trgm)
    "pressflow.deliver.ledger",  # deliveries and channel sessions
]
# The last migration's number, known without importing the stages (opening a current store
# stays cheap); a test checks it against the migrations the stages register.
LATEST_MIGRATION = 7
SCHEMA_UPGRADES: list[Callable[[Connection], None]] = []
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}
# PostgreSQL advisory lock keys (64-bit): any fixed numbers nobody else on the server uses.
_SCHEMA_LOCK_KEY = 0x7072_6573_7366_0001
PREPARE_LOCK_KEY = 0x7072_6573_7366_0002


def schema_upgrade(step: Callable[[Connection], None]) -> Callable[[Connection], None]:
    """Register `step(connection)`, an idempotent upgrade of stores made before numbered
    migrations, to run in the baseline migration: in the order of SCHEMA_MODULES, then of registration."""
    SCHEMA_UPGRADES.append(step)
    return step


def _module_order(module: str) -> int:
    return SCHEMA_MODULES.index(module) if module in SCHEMA_MODULES else len(SCHEMA_MODULES)


def migration(number: int) -> Callable[[Callable[[Connection], None]], Callable[[Connection], None]]:
    """Register a numbered migration; numbers are never reused. A store runs each number it has
    not run, in order, so a number registered after a higher one (work merged later) still runs."""
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
    return max([LATEST_MIGRATION, *MIGRATIONS])


def applied_migrations(connection: Connection) -> set[int]:
    """The numbers of the migrations this store ran (none for a new store or one made before numbering)."""
    if not inspect(connection).has_table(SchemaMigration.__tablename__):
        return set()
    return set(connection.scalars(select(SchemaMigration.number)))


def schema_is_current(engine: Engine) -> bool:
    """Whether the store ran every migration from 1 to the latest: two numbers read, no stage imported."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(SchemaMigration.__tablename__):
            return False
        highest, count = connection.execute(select(func.max(SchemaMigration.number), func.count())).one()
    latest = latest_migration()
    return highest == latest and count == latest


def import_schema() -> None:
    """Import every module that owns tables or migrations (once a process: imports are cached)."""
    for module in SCHEMA_MODULES:
        importlib.import_module(module)
    missing = sorted(set(range(1, LATEST_MIGRATION + 1)) - MIGRATIONS.keys())
    if missing:
        raise RuntimeError(f"migrations {missing} are registered by no module of SCHEMA_MODULES")


def store_identity(url: str) -> str:
    """This store and no other: its URL and when its first migration ran. A store deleted and
    made again at the same URL is another store (what a cache keyed on "done in this store" needs)."""
    with get_engine(url).connect() as connection:
        born = connection.scalar(select(SchemaMigration.applied_at).where(SchemaMigration.number == 1))
    return f"{url}#{born.isoformat() if born else ''}"


def create_schema(engine: Engine, url: str) -> None:
    """Run the migrations this store has not run, in order, under the schema lock."""
    import_schema()
    with _schema_lock(engine, url) as connection:
        done = applied_migrations(connection)  # again under the lock: another process may have run them
        for number in sorted(MIGRATIONS.keys() - done):
            MIGRATIONS[number](connection)
            connection.execute(insert(SchemaMigration).values(number=number, applied_at=utcnow()))


@migration(1)
def _baseline(connection: Connection) -> None:
    """Every table and index of this code, and the upgrades of stores made before numbering."""
    Base.metadata.create_all(connection)
    # columns first: an index added since may use one; in the order of SCHEMA_MODULES
    for step in sorted(SCHEMA_UPGRADES, key=lambda step: _module_order(step.__module__)):
        step(connection)
    for table in Base.metadata.sorted_tables:  # indexes added since a store was created
        for index in table.indexes:
            index.create(connection, checkfirst=True)


def table_columns(connection: Connection, table: str) -> set[str]:
    """The column names a store's table has (for migrations that add one)."""
    return {column["name"] for column in inspect(connection).get_columns(table)}


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
def exclusive(url: str, purpose: str, key: int, on_wait: Callable[[], None] | None = None,
              timeout: float | None = None) -> Iterator[None]:
    """Run the block while no other process holds this store's `purpose` lock; if one does, call
    `on_wait` once, then wait for it, at most `timeout` seconds (None: for ever), then raise
    LockWaitTimeout. PostgreSQL: an advisory lock (`key`) on a connection of its own, released
    if the process dies; SQLite: a lock file beside the database file."""
    engine, path = get_engine(url), sqlite_path(url)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if not connection.scalar(select(func.pg_try_advisory_lock(key))):
                if on_wait:
                    on_wait()
                _wait_for_advisory_lock(connection, key, purpose, timeout)
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
            try:
                lock.acquire(timeout=-1 if timeout is None else timeout)
            except filelock.Timeout:
                raise _waited_too_long(purpose, timeout) from None
        try:
            yield
        finally:
            lock.release()
    else:  # an in-memory database belongs to one process anyway
        yield


def _wait_for_advisory_lock(connection: Connection, key: int, purpose: str, timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    while not connection.scalar(select(func.pg_try_advisory_lock(key))):
        if deadline is not None and time.monotonic() >= deadline:
            raise _waited_too_long(purpose, timeout)
        time.sleep(min(1.0, timeout or 1.0))


def _waited_too_long(purpose: str, timeout: float | None) -> LockWaitTimeout:
    return LockWaitTimeout(f"another {purpose} held this store for more than {timeout / 60:g} minutes; gave up waiting "
                           "(PRESSFLOW_LOCK_WAIT_MINUTES); check that run, then start this one again")


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

