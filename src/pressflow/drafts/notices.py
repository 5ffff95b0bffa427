"""The notices outbox: what reviewers and staff must be told, kept with the drafts it is about.

Prepare writes a notice in the same transaction as the drafts (or the failure) it announces,
so a notice exists exactly when its drafts do, whatever happens to the run afterwards. The
flows send waiting notices as Prefect events (`pressflow.flows.events.flush_notices`) when a
server can take them, and mark them sent only once the server accepted them.

Sending is at most one process at a time per notice: a sender first claims rows with one
compare-and-set UPDATE (a row another sender holds, or one already sent, does not match), sends,
then marks its own claim sent. A claim is a lease: a sender that died holding one leaves its
rows to the next sender once the lease ends. Migration 5 made this table.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import JSON, Index, Integer, String, and_, delete, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..core.db import Base, UTCDateTime, migration, utcnow

AWAITING_REVIEW = "awaiting-review"  # drafts of a release wait for review in `lang`
TRANSLATION_FAILED = "translation-failed"  # a language of a release failed; detail: {"reason": ...}
KINDS = (AWAITING_REVIEW, TRANSLATION_FAILED)
# Long enough for a sender to post a batch through a slow or restarting server (the Prefect
# client retries for about a minute); short enough that a crashed sender's notices go out soon.
LEASE = dt.timedelta(minutes=10)
# Notices not sent by then are dropped unsent (the review queue lists the drafts anyway), and
# sent ones are forgotten: a store used without any Prefect server does not grow without end.
KEEP = dt.timedelta(days=7)


class Notice(Base):
    """One thing to tell about a release in one language, waiting to be sent or sent."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_waiting", "sent_at", "claim_until"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    release_slug: Mapped[str] = mapped_column(String(200))
    lang: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(40))
    claim_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


@migration(5)
def _notices_outbox(connection: Connection) -> None:
    """The notices outbox (a new store has it from the baseline already)."""
    Notice.__table__.create(connection, checkfirst=True)
    for index in Notice.__table__.indexes:
        index.create(connection, checkfirst=True)


def record(session: Session, kind: str, slug: str, lang: str, detail: dict | None = None) -> None:
    """Add a notice to the caller's transaction: it is kept if and only if that commits."""
    assert kind in KINDS, kind
    session.add(Notice(kind=kind, release_slug=slug, lang=lang, detail=detail or {}))


def _waiting(now: dt.datetime):
    return and_(Notice.sent_at.is_(None), or_(Notice.claim_until.is_(None), Notice.claim_until < now))


def claim(session: Session, now: dt.datetime | None = None, lease: dt.timedelta = LEASE) -> tuple[str, list[Notice]]:
    """Take every waiting notice nobody holds: one UPDATE, so of two senders at once each row
    goes to one (PostgreSQL re-checks the condition on a row another transaction just claimed;
    SQLite has one writer at a time). Returns the claim's token and its notices, oldest first.
    The caller commits before sending, so that other senders see the claim."""
    now, token = now or utcnow(), uuid.uuid4().hex
    session.execute(update(Notice).where(_waiting(now)).values(claimed_by=token, claim_until=now + lease),
                    execution_options={"synchronize_session": False})
    notices = session.scalars(select(Notice).where(Notice.claimed_by == token, Notice.sent_at.is_(None))
                              .order_by(Notice.id))
    return token, list(notices)


def mark_sent(session: Session, token: str, ids: list[int], now: dt.datetime | None = None) -> int:
    """Mark these notices sent, if this claim still holds them; returns how many."""
    result = session.execute(update(Notice).where(Notice.id.in_(ids), Notice.claimed_by == token,
                                                  Notice.sent_at.is_(None)).values(sent_at=now or utcnow()),
                             execution_options={"synchronize_session": False})
    return result.rowcount


def release(session: Session, token: str, ids: list[int]) -> None:
    """Give notices back unsent (the send failed): the next sender takes them at once."""
    session.execute(update(Notice).where(Notice.id.in_(ids), Notice.claimed_by == token, Notice.sent_at.is_(None))
                    .values(claimed_by=None, claim_until=None), execution_options={"synchronize_session": False})


def unsent(session: Session) -> list[Notice]:
    """Every notice not sent yet, oldest first (held by a sender or not)."""
    return list(session.scalars(select(Notice).where(Notice.sent_at.is_(None)).order_by(Notice.id)))


def waiting_count(session: Session) -> int:
    """How many notices wait to be sent (held by a sender or not)."""
    return session.scalar(select(func.count()).select_from(Notice).where(Notice.sent_at.is_(None))) or 0


def forget_old(session: Session, now: dt.datetime | None = None, keep: dt.timedelta = KEEP) -> int:
    """Drop notices older than `keep`, sent or not (and not held by a sender); returns how many
    unsent ones were dropped."""
    now = now or utcnow()
    old = and_(Notice.created_at < now - keep, or_(Notice.claim_until.is_(None), Notice.claim_until < now))
    unsent = session.scalar(select(func.count()).select_from(Notice).where(old, Notice.sent_at.is_(None))) or 0
    session.execute(delete(Notice).where(old), execution_options={"synchronize_session": False})
    return unsent
