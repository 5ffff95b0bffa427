"""LinkedIn (Posts API), off by default: an entry needs `enabled: true` and its `author`
(urn:li:organization:... or urn:li:person:...) (docs/channels.md, "X and LinkedIn").

Tested against the request and response shapes LinkedIn documents, on a loopback server, not
against the live service. Every request carries `LinkedIn-Version` (YYYYMM) and
`X-Restli-Protocol-Version: 2.0.0`.
- `POST /rest/posts` with `author`, `commentary` (LinkedIn's "little text": its reserved
  characters escaped), `visibility`, `distribution`, `lifecycleState`; 201 with the post's URN
  in the `x-restli-id` header;
- images: `POST /rest/images?action=initializeUpload`, the bytes PUT to the `uploadUrl` it
  answers, then `content.media` with the image URN and `altText`;
- corrections edit the commentary in place (`POST /rest/posts/{urn}` with
  `X-RestLi-Method: PARTIAL_UPDATE` and `{"patch": {"$set": {"commentary"}}}`);
- `DELETE /rest/posts/{urn}` (404: already gone);
- 429 postpones (to Retry-After, else LinkedIn's daily reset at midnight UTC).

No idempotency key either: a send whose answer was lost is looked for among the author's latest
posts (`q=author`) by its exact commentary; not found there, it is left for a person.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Callable, ClassVar
from urllib.parse import quote

import httpx

from ._attempts import Attempts
from .base import Capabilities, ChannelError, Message, RateLimited, Sent, Unconfirmable

LIMIT = 3000
# The Posts API is versioned by month and each version is served about a year: update it.
VERSION = os.environ.get("PRESSFLOW_LINKEDIN_VERSION", "202509")
RESERVED = set("\\|{}@[]()<>#*_~")  # "little text" format: escaped with a backslash


def little_text(text: str) -> str:
    return "".join("\\" + c if c in RESERVED else c for c in text)


class LinkedInChannel:
    name: ClassVar[str] = "linkedin"
    capabilities: ClassVar[Capabilities] = Capabilities(
        edit=True, delete=True, threads=False, alt_text=True, language_tag=False, limit=LIMIT,
        counts="characters")

    def __init__(self, account, sessions=None, *, clock: Callable[[], datetime] | None = None,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None):
        if not account.is_enabled:
            raise ChannelError(f"{account.key}: LinkedIn is off by default; set enabled: true in its entry")
        self.account = account
        self.author = account.author
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.attempts = Attempts(sessions, account.key, self.clock)
        self.http = httpx.Client(base_url=account.server.rstrip("/"), timeout=timeout, transport=transport,
                                 headers={"Authorization": f"Bearer {account.secret}",
                                          "LinkedIn-Version": VERSION,
                                          "X-Restli-Protocol-Version": "2.0.0",
                                          "User-Agent": "pressflow"})

    def plan(self, key: str) -> str | None:
        return None

    def send(self, message: Message, *, key: str, planned: str | None) -> Sent:
        self._check_length(message)
        self.attempts.begin(key)
        body = {
            "author": self.author,
            "commentary": little_text(message.text),
            "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                             "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        if message.image is not None:
            body["content"] = {"media": {"id": self._upload(message, key), "altText": message.image.alt}}
        response = self.http.post("/rest/posts", json=body)
        self._check(response, "post")
        urn = response.headers.get("x-restli-id")
        if not urn:
            raise ChannelError("linkedin: LinkedIn answered 201 without the post's x-restli-id")
        return Sent(urn, _url(urn))

    def confirm(self, message: Message, *, key: str, planned: str | None) -> Sent | None:
        if self.attempts.get(key) is None:
            if self.attempts.durable:
                return None  # the send never began
            raise Unconfirmable("linkedin: no record of when this send began (no session store)")
        response = self.http.get("/rest/posts", params={"author": self.author, "q": "author", "count": 20,
                                                        "sortBy": "LAST_MODIFIED"},
                                 headers={"X-RestLi-Method": "FINDER"})
        self._check(response, "finding the author's posts")
        commentary = little_text(message.text)
        for post in response.json().get("elements", []):
            if post.get("commentary") == commentary and post.get("author") == self.author:
                return Sent(post["id"], _url(post["id"]))
        raise Unconfirmable("linkedin: the post is not among the author's latest posts (their list can "
                            "lag behind); check the page and settle the delivery")

    def delete(self, remote_id: str) -> None:
        response = self.http.delete(f"/rest/posts/{quote(remote_id, safe='')}",
                                    headers={"X-RestLi-Method": "DELETE"})
        if response.status_code in (404, 410):
            return
        self._check(response, "delete")

    def update(self, remote_id: str, message: Message) -> Sent:
        self._check_length(message)
        response = self.http.post(f"/rest/posts/{quote(remote_id, safe='')}",
                                  json={"patch": {"$set": {"commentary": little_text(message.text)}}},
                                  headers={"X-RestLi-Method": "PARTIAL_UPDATE"})
        self._check(response, "edit")
        return Sent(remote_id, _url(remote_id))

    def _upload(self, message: Message, key: str) -> str:
        entry = self.attempts.get(key) or {}
        if entry.get("image_urn"):
            return entry["image_urn"]
        response = self.http.post("/rest/images", params={"action": "initializeUpload"},
                                  json={"initializeUploadRequest": {"owner": self.author}})
        self._check(response, "image upload")
        value = response.json()["value"]
        put = self.http.put(value["uploadUrl"], content=message.image.path.read_bytes(),
                            headers={"Content-Type": message.image.mime})
        self._check(put, "image bytes")
        self.attempts.note(key, image_urn=value["image"])
        return value["image"]

    def _check_length(self, message: Message) -> None:
        if len(message.text) > LIMIT:
            raise ChannelError(f"linkedin: the post is {len(message.text)} characters; the limit is {LIMIT}")

    def _check(self, response: httpx.Response, what: str) -> None:
        if response.status_code == 429:
            now = datetime.now(timezone.utc)
            after = response.headers.get("retry-after", "")
            if after.isdigit():
                retry_at = now + timedelta(seconds=int(after))
            else:  # LinkedIn's daily limits reset at midnight UTC
                retry_at = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
            raise RateLimited(retry_at, f"linkedin: {what} rate limited")
        if response.status_code >= 500:
            response.raise_for_status()  # the outcome is unknown: confirmed before anything else
        if response.status_code >= 400:
            raise ChannelError(f"linkedin: {what}: {response.status_code} {_problem(response)}")


def _problem(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    return str(data.get("message") or data)[:300]


def _url(urn: str) -> str:
    return f"https://www.linkedin.com/feed/update/{urn}/"
