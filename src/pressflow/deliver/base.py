"""The one interface every delivery channel implements.

Adding a channel:
1. Write `deliver/<name>.py` with a class that has `name` (the `channel:` value in the channels
   file) and `capabilities`, is constructed as `Cls(account, sessions)` from its validated entry
   (`config.Account`, its secret already resolved in `account.secret`) and the ledger's session
   store (`sessions.load(account_id)` / `sessions.save(account_id, data)` for tokens that should
   outlive a process), and implements the methods of `Channel` below.
2. Register it in `config.CHANNELS` (name -> "module:Class") and document it in docs/channels.md.
3. Exactly once is the runner's job, not the channel's: it claims the delivery row and commits
   before `send`; after a crash it calls `confirm` with the same `key` and `planned` id. A channel
   only has to make `send` repeatable-safe (a record key chosen before sending, an
   Idempotency-Key, a Message-ID) and `confirm` honest: found -> Sent, surely absent -> None,
   cannot tell -> raise Unconfirmable.
4. Errors: RateLimited(retry_at) postpones; ChannelError is permanent with a one-line message;
   anything else (network errors) is a retry after confirmation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable


@dataclass(frozen=True)
class Capabilities:
    edit: bool
    delete: bool
    threads: bool
    alt_text: bool
    language_tag: bool
    limit: int | None  # per post part, in the platform's own unit
    counts: str  # "graphemes", "characters", "weighted (URLs 23)" ...


@dataclass(frozen=True)
class Image:
    path: Path
    alt: str
    mime: str


@dataclass(frozen=True)
class Message:
    """Exactly what one delivery row sends."""

    release: str
    language: str
    kind: str  # "post" | "release" | "briefing" | "withdrawal"
    text: str  # the post part text, or the release as plain text
    html: str | None  # the release as HTML (e-mail)
    title: str
    url: str  # canonical page URL
    image: Image | None
    part: int = 0  # thread part number
    reply_to: str | None = None  # remote id of the previous part, filled by the runner
    embargo: datetime | None = None

    def content_hash(self) -> str:
        """sha256 over what is sent: text, HTML, title, URL, kind, part and the image's bytes and
        alt text. `reply_to` is left out (the runner fills it in; it is not content)."""
        h = hashlib.sha256()
        head = {"release": self.release, "language": self.language, "kind": self.kind,
                "text": self.text, "html": self.html, "title": self.title, "url": self.url,
                "part": self.part, "embargo": self.embargo.isoformat() if self.embargo else None,
                "image": {"alt": self.image.alt, "mime": self.image.mime} if self.image else None}
        h.update(json.dumps(head, sort_keys=True, ensure_ascii=False).encode())
        if self.image is not None:
            h.update(b"\0image\0")
            h.update(Path(self.image.path).read_bytes())
        return h.hexdigest()


@dataclass(frozen=True)
class Sent:
    remote_id: str
    url: str | None


class RateLimited(Exception):
    """The platform asked us to wait: the delivery is postponed to `retry_at` (UTC), not failed."""

    def __init__(self, retry_at: datetime, message: str = "rate limited"):
        super().__init__(f"{message} until {retry_at.isoformat()}")
        self.retry_at = retry_at


class ChannelError(Exception):
    """Permanent: the message is one readable line."""


class Unconfirmable(ChannelError):
    """Cannot tell whether a send happened: the delivery becomes `unknown` for a person to settle."""


@runtime_checkable
class Channel(Protocol):
    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def plan(self, key: str) -> str | None:
        """The remote id chosen before sending (Bluesky record key, e-mail Message-ID), else None.
        Deterministic in `key`."""

    def send(self, message: Message, *, key: str, planned: str | None) -> Sent: ...

    def confirm(self, message: Message, *, key: str, planned: str | None) -> Sent | None:
        """After a send whose outcome is unknown: found -> Sent; surely absent -> None;
        cannot tell -> raise Unconfirmable."""

    def delete(self, remote_id: str) -> None:
        """A missing post counts as deleted."""

    def update(self, remote_id: str, message: Message) -> Sent:
        """Only where capabilities.edit."""


class SessionStore(Protocol):
    """Where a channel keeps its session or tokens between processes (the ledger implements it)."""

    def load(self, account: str) -> dict | None: ...

    def save(self, account: str, data: dict) -> None: ...
