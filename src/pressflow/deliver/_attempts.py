"""When each send began, kept in the account's session store, so that `confirm` in a later process
knows how old an unanswered send is (Mastodon keeps an Idempotency-Key an hour; mail may still be
on its way) and which uploads it already made.

An entry is written before the first request of a send goes out, so a key without an entry has
sent nothing. Entries are kept a week (a delivery left in flight longer is settled by a person).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

KEPT = timedelta(days=7)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Attempts:
    def __init__(self, sessions, account: str, clock: Callable[[], datetime] | None = None):
        self.sessions = sessions
        self.account = account
        self.clock = clock or utcnow
        self._memory: dict = {}

    @property
    def durable(self) -> bool:
        """Whether entries outlive this process (no store: a missing entry proves nothing)."""
        return self.sessions is not None

    def _load(self) -> dict:
        if self.sessions is None:
            return self._memory
        return dict(self.sessions.load(self.account) or {})

    def _save(self, data: dict) -> None:
        if self.sessions is None:
            self._memory = data
        else:
            self.sessions.save(self.account, data)

    def get(self, key: str) -> dict | None:
        entry = self._load().get("attempts", {}).get(key)
        if entry is None:
            return None
        return {**entry, "at": datetime.fromisoformat(entry["at"])}

    def begin(self, key: str) -> dict:
        """The entry of `key`, written now if there is none (the first attempt's time is kept)."""
        data = self._load()
        attempts = dict(data.get("attempts", {}))
        now = self.clock()
        attempts = {k: v for k, v in attempts.items()
                    if now - datetime.fromisoformat(v["at"]) < KEPT}
        if key not in attempts:
            attempts[key] = {"at": now.isoformat()}
            self._save({**data, "attempts": attempts})
        return self.get(key)

    def note(self, key: str, **values) -> None:
        data = self._load()
        attempts = dict(data.get("attempts", {}))
        attempts[key] = {**attempts.get(key, {"at": self.clock().isoformat()}), **values}
        self._save({**data, "attempts": attempts})

    def age(self, key: str) -> timedelta | None:
        entry = self.get(key)
        return None if entry is None else self.clock() - entry["at"]
