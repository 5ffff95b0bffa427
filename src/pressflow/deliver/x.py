"""X (API v2), off by default: an entry needs `enabled: true` (docs/channels.md, "X and LinkedIn").

Tested against the request and response shapes X documents, on a loopback server, not against
the live service:
- `POST /2/tweets` with `text`, `reply.in_reply_to_tweet_id` (threads) and `media.media_ids`;
  201 `{"data": {"id", "text"}}`;
- images: `POST /2/media/upload` (multipart `media`, `media_category=tweet_image`) answering
  `{"data": {"id", "media_key", ...}}`, then `POST /2/media/metadata` with the alt text;
- `DELETE /2/tweets/:id` answering `{"data": {"deleted": true}}`; 404: already gone;
- 429 with `x-rate-limit-reset` (epoch seconds) postpones.
The token is an OAuth 2.0 user-context access token (`token_env` or `secret_block`).

X has no idempotency key, and the text it returns has its links rewritten, so a send whose
answer was lost cannot be looked up: it is left for a person (Unconfirmable), never sent twice.
X posts are not edited through this channel (`edit: false`): a correction is a new post.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable, ClassVar

import httpx

from ._attempts import Attempts
from .base import Capabilities, ChannelError, Message, RateLimited, Sent, Unconfirmable

LIMIT = 280
DEFAULT_WAIT = timedelta(minutes=15)  # X's rate-limit windows are 15 minutes


class XChannel:
    name: ClassVar[str] = "x"
    capabilities: ClassVar[Capabilities] = Capabilities(
        edit=False, delete=True, threads=True, alt_text=True, language_tag=False, limit=LIMIT,
        counts="weighted (twitter-text: CJK 2, a URL 23)")

    def __init__(self, account, sessions=None, *, clock: Callable[[], datetime] | None = None,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None):
        if not account.is_enabled:
            raise ChannelError(f"{account.key}: X is off by default; set enabled: true in its entry")
        self.account = account
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.attempts = Attempts(sessions, account.key, self.clock)
        self.http = httpx.Client(base_url=account.server.rstrip("/"), timeout=timeout, transport=transport,
                                 headers={"Authorization": f"Bearer {account.secret}",
                                          "User-Agent": "pressflow"})

    def plan(self, key: str) -> str | None:
        return None

    def send(self, message: Message, *, key: str, planned: str | None) -> Sent:
        from ..platforms import post_length

        length = post_length("x", message.text)
        if length > LIMIT:
            raise ChannelError(f"x: the post weighs {length} as X counts; the limit is {LIMIT}")
        self.attempts.begin(key)
        body: dict = {"text": message.text}
        if message.reply_to:
            body["reply"] = {"in_reply_to_tweet_id": message.reply_to}
        if message.image is not None:
            body["media"] = {"media_ids": [self._upload(message, key)]}
        data = self._json(self.http.post("/2/tweets", json=body), "post")["data"]
        handle = (self.account.handle or "i").lstrip("@")
        return Sent(str(data["id"]), f"https://x.com/{handle}/status/{data['id']}")

    def confirm(self, message: Message, *, key: str, planned: str | None) -> Sent | None:
        if self.attempts.get(key) is None and self.attempts.durable:
            return None  # the send never began
        raise Unconfirmable("x: X has no idempotency key and no exact lookup of a post's text; "
                            "check the account and settle the delivery")

    def delete(self, remote_id: str) -> None:
        response = self.http.delete(f"/2/tweets/{remote_id}")
        if response.status_code == 404:
            return
        data = self._json(response, "delete")
        if not data.get("data", {}).get("deleted"):
            raise ChannelError(f"x: post {remote_id} was not deleted: {data}")

    def update(self, remote_id: str, message: Message) -> Sent:
        raise ChannelError("x: posts are not edited; a correction is a new post")

    def _upload(self, message: Message, key: str) -> str:
        entry = self.attempts.get(key) or {}
        if entry.get("media_id"):
            return entry["media_id"]
        image = message.image
        files = {"media": (image.path.name, image.path.read_bytes(), image.mime)}
        data = self._json(self.http.post("/2/media/upload", files=files,
                                         data={"media_category": "tweet_image"}), "media upload")["data"]
        media_id = str(data["id"])
        if image.alt:
            self._json(self.http.post("/2/media/metadata", json={
                "id": media_id, "metadata": {"alt_text": {"text": image.alt[:1000]}}}), "alt text")
        self.attempts.note(key, media_id=media_id)
        return media_id

    def _json(self, response: httpx.Response, what: str) -> dict:
        if response.status_code == 429:
            reset = response.headers.get("x-rate-limit-reset")
            now = datetime.now(timezone.utc)
            retry_at = datetime.fromtimestamp(int(reset), timezone.utc) if reset and reset.isdigit() else now + DEFAULT_WAIT
            raise RateLimited(max(retry_at, now), f"x: {what} rate limited")
        if response.status_code >= 500:
            response.raise_for_status()  # the outcome is unknown: confirmed before anything else
        if response.status_code >= 400:
            raise ChannelError(f"x: {what}: {response.status_code} {_problem(response)}")
        return response.json()


def _problem(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    # X's errors are RFC 7807 problems: {"title", "detail", "type", "status"}
    return str(data.get("detail") or data.get("title") or data)[:300]
