"""Reviewer accounts for the review page: names, hashed passwords, the languages they may review.

Accounts live in the draft store's database (table `reviewers`, defined here and made with the
others by `core.db`), so a team sharing a PostgreSQL store shares its accounts too. Passwords are
hashed with Argon2id (argon2-cffi, the reference implementation's bindings); the plain password is
never stored or logged.

Sign-ins are sessions kept in the store too (`ReviewSession`), checked on each request,
so that signing out, changing a password (`users add` again) or removing an account ends
them at once, on every server sharing the store. A signed cookie alone cannot be revoked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, Index, String, Text, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from ..core import db, text_rules
from ..core.db import NAME_LIMIT, Base, UTCDateTime, utcnow
from ..core.errors import PressflowError

_HASHER = PasswordHasher()
# Verified against when the name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("no such reviewer")
_NAME = re.compile(r"[\w.@-]+")
MIN_PASSWORD = 8


class AccountError(PressflowError):
    """A reviewer account cannot be created or changed as asked."""


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


def check_name(name: str) -> str:
    """An account name: the names' rule (text_rules.check_name: NFKC, one script, not a name the
    system writes), then letters, digits and . _ - @ only. Returns it NFKC-normalised."""
    if len(name) > NAME_LIMIT:
        raise AccountError(f"reviewer name {name[:20]!r}... is {len(name)} characters long; at most {NAME_LIMIT}")
    try:
        name = text_rules.check_name(name, "reviewer name")
    except text_rules.TextRuleError as exc:
        raise AccountError(str(exc)) from None
    if not _NAME.fullmatch(name):
        raise AccountError(f"reviewer name {name!r}: use letters, digits, '.', '_', '-' or '@' "
                           f"(at most {NAME_LIMIT})")
    return name


def new_name(url: str, name: str, what: str = "name") -> str:
    """A name someone gives for the audit trail (an account, `--reviewer`, a TMX creationid, a
    shared-token sign-in): text_rules.check_name against every account's name, so it cannot be a
    look-alike of one ("аlice" for "alice") nor a name the system writes. Raises AccountError."""
    try:
        return text_rules.check_name(name, what, taken=[account for account, _ in list_users(url)])
    except text_rules.TextRuleError as exc:
        raise AccountError(str(exc)) from None


# zxcvbn's score: 3 is "safely unguessable: moderate protection from an offline slow-hash
# scenario" (Argon2 here). Its frequency lists hold the common passwords (password, 12345678),
# and it knows repeats (aaaaaaaa, eight spaces), sequences, dates, keyboard walks and the name.
MIN_SCORE = 3
_SCORED_CHARS = 72  # zxcvbn refuses longer input (its matching grows fast with length): the first 72 are scored


def check_password(name: str, password: str) -> None:
    """Refuse a password shorter than MIN_PASSWORD, or one zxcvbn finds easy to guess."""
    if len(password.strip()) < MIN_PASSWORD:
        raise AccountError(f"reviewer {name}: the password needs at least {MIN_PASSWORD} characters "
                           "(not counting spaces at its ends)")
    from zxcvbn import zxcvbn  # loads its word lists: only when a password is set

    result = zxcvbn(password[:_SCORED_CHARS], user_inputs=[name, *re.split(r"[\W_]+", name), "pressflow"])
    if result["score"] < MIN_SCORE:
        feedback = result["feedback"]
        why = feedback.get("warning") or "It is easy to guess."
        hint = " ".join(feedback.get("suggestions") or []) or "Use a few uncommon words."
        raise AccountError(f"reviewer {name}: that password is too easy to guess. {why} {hint} "
                           "(e.g. four unrelated words)")


def parse_languages(value: str | None) -> list[str]:
    """'es, zh' -> ['es', 'zh']; None or "" (the option left out) -> [] (every language).

    A value that names no language (' , ') is refused: it is a mistake, and reading it as
    "every language" would give a reviewer meant for some languages all of them."""
    if not value:
        return []
    parts = [part.strip() for part in value.split(",")]
    if not any(parts):
        raise AccountError(f"--languages {value!r} names no language; give tags like es,zh "
                           "(or leave --languages out for every language)")
    from ..records import _language  # the records' check: a BCP 47 tag Babel knows

    try:
        return list(dict.fromkeys(_language(part) for part in parts if part))
    except ValueError as exc:
        raise AccountError(f"--languages: {exc}") from None


def add_user(url: str, name: str, password: str, languages: list[str]) -> bool:
    """Create a reviewer, or replace an existing one's password and languages; True if created."""
    name = new_name(url, check_name(name), "reviewer name")
    check_password(name, password)
    with db.session_scope(url) as session:
        account = session.get(Reviewer, name)
        created = account is None
        if created:
            account = Reviewer(name=name)
            session.add(account)
        account.password_hash, account.languages, account.updated_at = _HASHER.hash(password), languages, utcnow()
        _end_sessions_of(session, name)  # whoever signed in with the old password is signed out
    return created


def remove_user(url: str, name: str) -> None:
    with db.session_scope(url) as session:
        account = session.get(Reviewer, name)
        if account is None:
            raise AccountError(f"no reviewer named '{name}'; see `pressflow users list`")
        session.delete(account)
        _end_sessions_of(session, name)


def list_users(url: str) -> list[tuple[str, list[str]]]:
    with db.session_scope(url) as session:
        return [(a.name, list(a.languages or [])) for a in session.scalars(select(Reviewer).order_by(Reviewer.name))]


def count_users(url: str) -> int:
    return len(list_users(url))


def languages_of(url: str, name: str) -> list[str] | None:
    """The account's languages ([] = all), or None when the account no longer exists."""
    with db.session_scope(url) as session:
        account = session.get(Reviewer, name)
        return None if account is None else list(account.languages or [])


def authenticate(url: str, name: str, password: str) -> list[str] | None:
    """The reviewer's languages if the name and password match, else None."""
    with db.session_scope(url) as session:
        account = session.get(Reviewer, name)
        try:
            _HASHER.verify(account.password_hash if account else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if account is None:
            return None
        if _HASHER.check_needs_rehash(account.password_hash):  # parameters were raised since
            account.password_hash = _HASHER.hash(password)
        return list(account.languages or [])


# --- sessions --------------------------------------------------------------------------------


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def _end_sessions_of(session, name: str) -> None:
    session.execute(delete(ReviewSession).where(ReviewSession.name == name))


def start_session(url: str, name: str, kind: str, hours: float, idle_minutes: float | None = None) -> str:
    """A new session for `name` ("account", or the tag of the shared token); returns its id.

    It ends `hours` after it began, or `idle_minutes` after its last request (session_of
    moves that on), whichever comes first."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    lifetime = dt.timedelta(hours=hours)
    first = min(lifetime, dt.timedelta(minutes=idle_minutes)) if idle_minutes else lifetime
    with db.session_scope(url) as session:
        session.execute(delete(ReviewSession).where(ReviewSession.expires_at < now))
        session.add(ReviewSession(id_hash=_digest(session_id), name=name, kind=kind, created_at=now,
                                  expires_at=now + first))
    return session_id


# The idle deadline is moved on at most once a minute: a page's requests do not each write a row.
_SLIDE_STEP = dt.timedelta(minutes=1)


def session_of(url: str, session_id: str, *, hours: float | None = None,
               idle_minutes: float | None = None) -> tuple[str, str, list[str]] | None:
    """(name, kind, languages) of a live session; None if it ended, expired, or its account is gone.

    With `idle_minutes`, a live session's end is moved to that long from now (never past
    `hours` after it began): `expires_at` is the idle deadline and the absolute one at once."""
    with db.session_scope(url) as session:
        row = session.get(ReviewSession, _digest(session_id))
        now = utcnow()
        if row is None or row.expires_at <= now:
            return None
        if idle_minutes and hours:
            until = min(row.created_at + dt.timedelta(hours=hours), now + dt.timedelta(minutes=idle_minutes))
            if until - row.expires_at >= _SLIDE_STEP:
                row.expires_at = until
        if row.kind != "account":
            return row.name, row.kind, []
        account = session.get(Reviewer, row.name)
        return None if account is None else (row.name, row.kind, list(account.languages or []))


def end_session(url: str, session_id: str) -> None:
    with db.session_scope(url) as session:
        session.execute(delete(ReviewSession).where(ReviewSession.id_hash == _digest(session_id)))
