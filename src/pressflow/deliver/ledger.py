"""The deliveries table: what was sent where, and the exactly-once state machine.

One row is one send of one message (a post part, a release by e-mail, a withdrawal notice) to
one account, for one content hash. Its idempotency key is derived from the row's slot and
content, so a retry reuses it; its planned remote id (a Bluesky record key, an e-mail
Message-ID) is chosen and committed before anything is sent.

States (docs/channels.md):
  pending   -> sending (claimed and committed before the network call)
  sending   -> sent | failed | unknown | postponed | pending (confirmed absent: sent again)
  postponed -> sending once `retry_at` has passed (rate limits postpone, they do not fail)
  unknown   -> sent | pending, by a person (`pressflow channels resolve`)
  sent      -> deleting -> deleted (withdrawn, or replaced by a correction that deletes)
  sent      -> superseded (a correction edited it in place, or sent a new one beside it)
  sent      -> withdrawn (no delete on that channel: a withdrawal notice was sent instead)

The tables are the store's (`core.db.Base`'s metadata): a new store gets them with the rest, and
migration 6 adds them to a store made before delivery's tables were numbered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import JSON, Column, Index, Integer, String, Table, Text, and_, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine

from ..core import db
from ..core.db import UTCDateTime, utcnow

PENDING, SENDING, SENT, FAILED, UNKNOWN, POSTPONED = "pending", "sending", "sent", "failed", "unknown", "postponed"
DELETING, DELETED, SUPERSEDED, WITHDRAWN = "deleting", "deleted", "superseded", "withdrawn"
STATES = (PENDING, SENDING, SENT, FAILED, UNKNOWN, POSTPONED, DELETING, DELETED, SUPERSEDED, WITHDRAWN)
# Rows that no longer stand for what is on the platform (the slot may be sent again).
GONE = (DELETED, SUPERSEDED, WITHDRAWN)

metadata = db.Base.metadata

deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True),
    Column("release", String(100), nullable=False),
    Column("language", String(20), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("account", String(200), nullable=False),
    Column("kind", String(20), nullable=False),  # post | release | briefing | withdrawal
    Column("part", Integer, nullable=False, default=0),
    Column("content_hash", String(64), nullable=False),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("planned", String(300)),  # remote id chosen before sending
    Column("state", String(20), nullable=False),
    Column("remote_id", String(500)),
    Column("url", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("retry_at", UTCDateTime()),
    Column("replaces", Integer),  # the sent row a correction replaces
    Column("message", JSON, nullable=False),  # exactly what is sent, to send it again or confirm it
    Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    Column("updated_at", UTCDateTime(), nullable=False, default=utcnow),
    Index("ix_deliveries_slot", "release", "language", "account", "kind", "part"),
    Index("ix_deliveries_state", "state"),
)

channel_sessions = Table(
    "channel_sessions", metadata,
    Column("account", String(200), primary_key=True),
    Column("data", JSON, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False, default=utcnow),
)


@db.migration(6)
def _deliveries_in_the_store(connection: Connection) -> None:
    """Delivery's tables, in a store that lacks them (they used to be made on first use)."""
    for table in (deliveries, channel_sessions):
        table.create(connection, checkfirst=True)
        for index in table.indexes:
            index.create(connection, checkfirst=True)


def idempotency_key(release: str, language: str, channel: str, account: str, kind: str, part: int,
                    content_hash: str, generation: int = 0) -> str:
    """Deterministic in the slot and the content: a retry reuses it. `generation` counts earlier
    rows of the same slot and content taken back (deleted), so a release withdrawn and published
    again is a new send, not a replay of the first one."""
    text = "\0".join([release, language, channel, account, kind, str(part), content_hash, str(generation)])
    return hashlib.sha256(text.encode()).hexdigest()[:40]


@dataclass
class Row:
    id: int
    release: str
    language: str
    channel: str
    account: str
    kind: str
    part: int
    content_hash: str
    idempotency_key: str
    planned: str | None
    state: str
    remote_id: str | None
    url: str | None
    attempts: int
    last_error: str | None
    retry_at: dt.datetime | None
    replaces: int | None
    message: dict
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def slot(self) -> tuple[str, str, str, str, int]:
        return (self.release, self.language, self.account, self.kind, self.part)


class Ledger:
    """The deliveries table and channel sessions of one store."""

    def __init__(self, url: str):
        self.url = url
        self.engine: Engine = db.get_engine(url)  # with the store's tables, delivery's among them

    # --- rows ---------------------------------------------------------------------------------

    def rows(self, *, release: str | None = None, states: Iterable[str] | None = None,
             account: str | None = None) -> list[Row]:
        query = select(deliveries).order_by(deliveries.c.id)
        if release is not None:
            query = query.where(deliveries.c.release == release)
        if states is not None:
            query = query.where(deliveries.c.state.in_(list(states)))
        if account is not None:
            query = query.where(deliveries.c.account == account)
        with self.engine.connect() as connection:
            return [Row(**row._mapping) for row in connection.execute(query)]

    def get(self, row_id: int) -> Row | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(deliveries).where(deliveries.c.id == row_id)).first()
        return Row(**row._mapping) if row else None

    def add(self, *, release: str, language: str, channel: str, account: str, kind: str, part: int,
            content_hash: str, key: str, planned: str | None, message: dict, replaces: int | None = None,
            state: str = PENDING, last_error: str | None = None) -> Row:
        now = utcnow()
        with self.engine.begin() as connection:
            row_id = connection.execute(insert(deliveries).values(
                release=release, language=language, channel=channel, account=account, kind=kind, part=part,
                content_hash=content_hash, idempotency_key=key, planned=planned, state=state, attempts=0,
                message=message, replaces=replaces, last_error=last_error, created_at=now, updated_at=now,
            )).inserted_primary_key[0]
        return self.get(row_id)

    def claim(self, row: Row, *, from_states: Iterable[str], to: str = SENDING) -> bool:
        """Move `row` to `to` (committed) if it is still in one of `from_states`; count the attempt.
        False when another process got there first."""
        with self.engine.begin() as connection:
            done = connection.execute(
                update(deliveries)
                .where(and_(deliveries.c.id == row.id, deliveries.c.state.in_(list(from_states))))
                .values(state=to, attempts=deliveries.c.attempts + (1 if to == SENDING else 0),
                        updated_at=utcnow(), retry_at=None)
            ).rowcount
        return bool(done)

    def set(self, row_id: int, state: str, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(deliveries).where(deliveries.c.id == row_id)
                               .values(state=state, updated_at=utcnow(), **values))

    # --- sessions (base.SessionStore) ---------------------------------------------------------

    def sessions(self) -> "Sessions":
        return Sessions(self.engine)


class Sessions:
    """Channel sessions and tokens per account, reused across posts and processes."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def load(self, account: str) -> dict | None:
        with self.engine.connect() as connection:
            return connection.scalar(select(channel_sessions.c.data).where(channel_sessions.c.account == account))

    def save(self, account: str, data: dict) -> None:
        with self.engine.begin() as connection:
            done = connection.execute(update(channel_sessions).where(channel_sessions.c.account == account)
                                      .values(data=data, updated_at=utcnow())).rowcount
            if not done:
                connection.execute(insert(channel_sessions).values(account=account, data=data, updated_at=utcnow()))


# --- what the review page shows ----------------------------------------------------------------

# The delivery channel a draft's text goes out on: a press release by e-mail, a post on its platform.
DRAFT_CHANNELS = {"release": "email"}


def draft_deliveries(session, drafts: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], list[Row]]:
    """(release, language, draft channel) -> the deliveries of that text, for the review page:
    the newest row of each slot (account, kind, part), in the order they were made. A post
    draft's are its platform's posts; a press release's, its e-mails (briefings, releases and
    withdrawal notices). Read in the caller's session."""
    wanted = {(slug, lang, DRAFT_CHANNELS.get(channel, channel)): (slug, lang, channel)
              for slug, lang, channel in drafts}
    connection = session.connection() if hasattr(session, "connection") else session
    if not wanted:
        return {}
    latest: dict[tuple, Row] = {}
    for chunk in db.in_batches(sorted({slug for slug, _, _ in wanted})):
        query = select(deliveries).where(deliveries.c.release.in_(chunk)).order_by(deliveries.c.id)
        for mapping in connection.execute(query).mappings():
            row = Row(**mapping)
            key = wanted.get((row.release, row.language, row.channel))
            if key is not None:
                latest[(key, row.account, row.kind, row.part)] = row  # later ids replace earlier ones
    found: dict[tuple[str, str, str], list[Row]] = {}
    for (key, *_), row in sorted(latest.items(), key=lambda item: item[1].id):
        found.setdefault(key, []).append(row)
    return found
