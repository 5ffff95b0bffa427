"""Bluesky (AT Protocol): posts as `app.bsky.feed.post` records in the account's repository.

Exactly once: the record key (a TID) is chosen and committed before sending; after a crash,
`com.atproto.repo.getRecord` with that key says whether the post exists. Repeating a create
with the same key is refused by the PDS and changes nothing, so a send can never make two posts.
The session is kept in the ledger's session store and refreshed, not re-created per post.

Content: `langs` is the post's language; links and hashtags become facets with UTF-8 byte
offsets; the release image is attached with its alt text (Bluesky shows one embed: with no
image, a link card to the release page instead); thread parts reply to the previous part.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from typing import Any

import regex

from .base import Capabilities, ChannelError, Message, RateLimited, Sent, SessionStore, Unconfirmable
from .config import Account

COLLECTION = "app.bsky.feed.post"
_B32 = "234567abcdefghijklmnopqrstuvwxyz"
# Links as Bluesky's own apps find them (http(s) only), and hashtags: '#' then letters/digits/_
# in any script, not all digits, not glued to a preceding word.
_LINK = regex.compile(r"https?://[^\s<>\"'()\[\]{}]+[^\s<>\"'()\[\]{}.,;:!?]")
_TAG = regex.compile(r"(?<![\p{L}\p{N}_#&/])#([\p{L}\p{M}\p{N}_]*[\p{L}\p{M}_][\p{L}\p{M}\p{N}_]*)")


def tid(micros: int, clock: int) -> str:
    """A record key in the TID format: 53 bits of microseconds, 10 of clock id, base32-sortable."""
    value = ((micros & ((1 << 53) - 1)) << 10) | (clock & 0x3FF)
    return "".join(_B32[(value >> (60 - 5 * i)) & 31] for i in range(13))


def tid_time(key: str) -> dt.datetime:
    value = 0
    for char in key:
        value = value * 32 + _B32.index(char)
    return dt.datetime.fromtimestamp((value >> 10) / 1e6, dt.timezone.utc)


def facets(text: str) -> list[dict]:
    """Link and hashtag facets of `text`, their offsets in UTF-8 bytes (as the protocol counts)."""
    found: list[dict] = []

    def span(start: int, end: int) -> dict:
        return {"byteStart": len(text[:start].encode()), "byteEnd": len(text[:end].encode())}

    for match in _LINK.finditer(text):
        found.append({"index": span(match.start(), match.end()),
                      "features": [{"$type": "app.bsky.richtext.facet#link", "uri": match.group()}]})
    links = [(f["index"]["byteStart"], f["index"]["byteEnd"]) for f in found]
    for match in _TAG.finditer(text):
        index = span(match.start(), match.end())
        if any(s <= index["byteStart"] < e for s, e in links) or len(match.group(1)) > 64:
            continue
        found.append({"index": index, "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": match.group(1)}]})
    return sorted(found, key=lambda f: f["index"]["byteStart"])


class Bluesky:
    name = "bluesky"
    capabilities = Capabilities(edit=False, delete=True, threads=True, alt_text=True, language_tag=True,
                                limit=300, counts="graphemes")

    def __init__(self, account: Account, sessions: SessionStore):
        self.account, self.sessions = account, sessions
        self._client = None

    # --- session ------------------------------------------------------------------------------

    @property
    def client(self):
        if self._client is None:
            from atproto import Client, SessionEvent
            from atproto import exceptions as ex

            client = Client(base_url=self.account.service.rstrip("/"))
            stored = self.sessions.load(self.account.key)
            logged_in = False
            if stored and stored.get("session"):
                try:
                    client.login(session_string=stored["session"], fetch_bsky_profile=False)
                    client.com.atproto.server.get_session()  # refreshes an expired access token
                    logged_in = True
                except ex.AtProtocolError:
                    client = Client(base_url=self.account.service.rstrip("/"))
            if not logged_in:
                try:
                    client.login(self.account.handle, self.account.secret, fetch_bsky_profile=False)
                except ex.RateLimitExceededError as exc:
                    raise RateLimited(_retry_at(exc), "Bluesky sign-in rate limited") from exc
                except (ex.UnauthorizedError, ex.BadRequestError) as exc:
                    raise ChannelError(f"bluesky {self.account.handle}: sign-in refused ({_detail(exc)})") from exc
                self._save(client)

            def on_change(event, session) -> None:
                if event in (SessionEvent.CREATE, SessionEvent.REFRESH):
                    self._save(client)

            client.on_session_change(on_change)
            self._client = client
        return self._client

    def _save(self, client) -> None:
        self.sessions.save(self.account.key, {"session": client.export_session_string()})

    @property
    def did(self) -> str:
        return self.client._session.did

    # --- the interface ------------------------------------------------------------------------

    def plan(self, key: str) -> str | None:
        """A TID record key: now, with a clock id from the idempotency key."""
        clock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:2], "big") & 0x3FF
        return tid(time.time_ns() // 1000, clock)

    def send(self, message: Message, *, key: str, planned: str | None) -> Sent:
        if planned is None:
            raise ChannelError("bluesky: no record key planned")
        record = self.record(message, created=tid_time(planned))
        try:
            self._call(lambda: self.client.com.atproto.repo.create_record(
                {"repo": self.did, "collection": COLLECTION, "rkey": planned, "record": record, "validate": True}))
        except _ServerError:
            # The PDS refuses a second create with the same key (500): the post may be ours already.
            if (found := self.confirm(message, key=key, planned=planned)) is not None:
                return found
            raise
        return self._sent(planned)

    def confirm(self, message: Message, *, key: str, planned: str | None) -> Sent | None:
        if planned is None:
            raise Unconfirmable("bluesky: no record key was planned; look for the post by hand")
        from atproto import exceptions as ex

        try:
            self._call(lambda: self.client.com.atproto.repo.get_record(
                {"repo": self.did, "collection": COLLECTION, "rkey": planned}))
        except ex.BadRequestError as exc:
            if "RecordNotFound" in _detail(exc) or "Could not locate record" in _detail(exc):
                return None
            raise Unconfirmable(f"bluesky getRecord: {_detail(exc)}") from exc
        return self._sent(planned)

    def delete(self, remote_id: str) -> None:
        rkey = remote_id.rstrip("/").rsplit("/", 1)[-1]
        self._call(lambda: self.client.com.atproto.repo.delete_record(
            {"repo": self.did, "collection": COLLECTION, "rkey": rkey}))

    def update(self, remote_id: str, message: Message) -> Sent:
        raise ChannelError("bluesky does not show edits: a correction deletes the post and posts again")

    # --- content ------------------------------------------------------------------------------

    def record(self, message: Message, *, created: dt.datetime) -> dict[str, Any]:
        record: dict[str, Any] = {
            "$type": COLLECTION, "text": message.text,
            "createdAt": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "langs": [message.language],
        }
        if found := facets(message.text):
            record["facets"] = found
        if message.reply_to:
            record["reply"] = self._reply(message.reply_to)
        if message.image is not None and message.part == 0:
            blob = self._upload(message.image.path.read_bytes(), message.image.mime)
            record["embed"] = {"$type": "app.bsky.embed.images",
                               "images": [{"image": blob, "alt": message.image.alt[:2000]}]}
        elif message.part == 0 and message.url:
            record["embed"] = {"$type": "app.bsky.embed.external",
                               "external": {"uri": message.url, "title": message.title[:300], "description": ""}}
        return record

    def _upload(self, data: bytes, mime: str) -> dict:
        response = self._call(lambda: self.client.com.atproto.repo.upload_blob(data, headers={"Content-Type": mime}))
        blob = response.blob
        return {"$type": "blob", "ref": {"$link": str(blob.ref.link)}, "mimeType": blob.mime_type, "size": blob.size}

    def _reply(self, parent_uri: str) -> dict:
        rkey = parent_uri.rstrip("/").rsplit("/", 1)[-1]
        parent = self._call(lambda: self.client.com.atproto.repo.get_record(
            {"repo": self.did, "collection": COLLECTION, "rkey": rkey}))
        ref = {"uri": parent.uri, "cid": parent.cid}
        reply = getattr(parent.value, "reply", None)
        root = {"uri": reply.root.uri, "cid": reply.root.cid} if reply else ref
        return {"root": root, "parent": ref}

    def _sent(self, rkey: str) -> Sent:
        handle = self.account.handle
        return Sent(f"at://{self.did}/{COLLECTION}/{rkey}", f"https://bsky.app/profile/{handle}/post/{rkey}")

    def _call(self, request):
        from atproto import exceptions as ex

        try:
            return request()
        except ex.RateLimitExceededError as exc:
            raise RateLimited(_retry_at(exc), "Bluesky rate limit") from exc
        except ex.UnauthorizedError as exc:
            raise ChannelError(f"bluesky {self.account.handle}: not allowed ({_detail(exc)})") from exc
        except ex.RequestException as exc:
            if exc.response is not None and exc.response.status_code >= 500:
                raise _ServerError(f"bluesky: server error {exc.response.status_code} ({_detail(exc)})") from exc
            raise


class _ServerError(Exception):
    """A 5xx: transient (the runner confirms, then sends again)."""


def _detail(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    content = getattr(response, "content", None)
    if content is not None and hasattr(content, "error"):
        return f"{content.error}: {content.message}" if content.message else str(content.error)
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _retry_at(exc: Exception) -> dt.datetime:
    """When Bluesky lets us try again: `ratelimit-reset` (epoch seconds), else `retry-after`, else a minute."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    now = dt.datetime.now(dt.timezone.utc)
    try:
        if "ratelimit-reset" in headers:
            return dt.datetime.fromtimestamp(int(headers["ratelimit-reset"]), dt.timezone.utc)
        if "retry-after" in headers:
            return now + dt.timedelta(seconds=int(headers["retry-after"]))
    except (TypeError, ValueError):
        pass
    return now + dt.timedelta(minutes=1)
