"""Reviewer accounts for the review page: names, hashed passwords, the languages they may review.

Accounts live in the draft store's database (table `reviewers`, made with the others in
store.py), so a team sharing a PostgreSQL store shares its accounts too. Passwords are hashed with Argon2id (argon2-cffi, the reference
implementation's bindings); the plain password is never stored or logged.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from . import store
from .errors import PressflowError

_HASHER = PasswordHasher()
# Verified against when the name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("no such reviewer")
_NAME = re.compile(r"^[\w.@-]{1,100}$")
MIN_PASSWORD = 8


class AccountError(PressflowError):
    """A reviewer account cannot be created or changed as asked."""


Reviewer = store.Reviewer  # the table lives with the others, created with them


def parse_languages(value: str | None) -> list[str]:
    """'es, zh' -> ['es', 'zh']; empty -> [] (every language)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def add_user(url: str, name: str, password: str, languages: list[str]) -> bool:
    """Create a reviewer, or replace an existing one's password and languages; True if created."""
    if not _NAME.match(name):
        raise AccountError(f"reviewer name '{name}': use letters, digits, '.', '_', '-' or '@' (at most 100)")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"reviewer {name}: the password needs at least {MIN_PASSWORD} characters")
    with store.session_scope(url) as session:
        account = session.get(Reviewer, name)
        created = account is None
        if created:
            account = Reviewer(name=name)
            session.add(account)
        account.password_hash, account.languages, account.updated_at = _HASHER.hash(password), languages, store.utcnow()
    return created


def remove_user(url: str, name: str) -> None:
    with store.session_scope(url) as session:
        account = session.get(Reviewer, name)
        if account is None:
            raise AccountError(f"no reviewer named '{name}'; see `pressflow users list`")
        session.delete(account)


def list_users(url: str) -> list[tuple[str, list[str]]]:
    with store.session_scope(url) as session:
        return [(a.name, list(a.languages or [])) for a in session.scalars(select(Reviewer).order_by(Reviewer.name))]


def count_users(url: str) -> int:
    return len(list_users(url))


def languages_of(url: str, name: str) -> list[str] | None:
    """The account's languages ([] = all), or None when the account no longer exists."""
    with store.session_scope(url) as session:
        account = session.get(Reviewer, name)
        return None if account is None else list(account.languages or [])


def authenticate(url: str, name: str, password: str) -> list[str] | None:
    """The reviewer's languages if the name and password match, else None."""
    with store.session_scope(url) as session:
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
