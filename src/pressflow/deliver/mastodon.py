"""Mastodon: one status per post part, through Mastodon.py (docs/channels.md, "Mastodon").

What Mastodon documents, and this channel relies on:
- `language` tags each status (ISO 639; a few regional codes such as zh-TW are kept whole);
- an image goes up first (`POST /api/v2/media`) with its alt text as `description`;
- a thread is each part posted `in_reply_to_id` the previous one;
- `Idempotency-Key`: the same key within an hour returns the status the first request made
  instead of posting again. The key is derived from the delivery key, so a send whose answer was
  lost is confirmed by sending again with the same key within the hour; later it cannot be
  told, and the delivery is left for a person (Unconfirmable);
- corrections edit the status in place (`PUT /api/v1/statuses/:id`), a withdrawal deletes it
  (404: already gone);
- 429 with `X-RateLimit-Reset` postpones the delivery to that time;
- length: 500 grapheme clusters, a URL counting 23 and `@user@domain` counting as `@user`.
"""

from __future__ import annotations

import hashlib
import warnings
from datetime import datetime, timedelta, timezone
from typing import Callable, ClassVar

import regex

from ._attempts import Attempts
from .base import Capabilities, ChannelError, Message, RateLimited, Sent, Unconfirmable

LIMIT = 500
URL_WEIGHT = 23
# Mastodon keeps an Idempotency-Key an hour from when the status was made; the first attempt's
# start (recorded before the request) is earlier than that, and a margin covers clock skew.
KEY_KEPT = timedelta(hours=1)
KEY_MARGIN = timedelta(minutes=5)
DEFAULT_WAIT = timedelta(minutes=5)  # a 429 without a usable X-RateLimit-Reset
# Regional codes Mastodon accepts as such (LanguagesHelper::ISO_639_1_REGIONAL); others are cut
# to their language.
REGIONAL = {"es-ar", "es-mx", "pt-br", "pt-pt", "sr-latn", "zh-cn", "zh-hk", "zh-tw"}
_MENTION = regex.compile(r"(?<![\p{L}\p{N}_/])@(\p{L}[\p{L}\p{N}_.-]*)@[\p{L}\p{N}.-]+\.\p{L}+")


def mastodon_length(text: str) -> int:
    """The length Mastodon's StatusLengthValidator counts: grapheme clusters, after every URL is
    replaced by 23 characters and every `@user@domain` by `@user`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # twitter-text imports pkg_resources, which warns
        from twitter_text.extract_urls import extract_urls_with_indices

    urls = extract_urls_with_indices(text, extract_urls_without_protocol=False)
    pieces, at = [], 0
    for start, end in sorted(tuple(u["indices"]) for u in urls):
        pieces.append(text[at:start])
        pieces.append("x" * URL_WEIGHT)
        at = end
    pieces.append(text[at:])
    countable = _MENTION.sub(lambda m: "@" + m.group(1), "".join(pieces))
    return len(regex.findall(r"\X", countable))


def language_tag(language: str) -> str:
    code = language.replace("_", "-").lower()
    if code in REGIONAL:
        return code[:3] + code[3:].upper() if code != "sr-latn" else "sr-Latn"
    return code.split("-")[0]


def idempotency_key(key: str) -> str:
    return "pressflow-" + hashlib.sha256(key.encode()).hexdigest()[:40]


class MastodonChannel:
    name: ClassVar[str] = "mastodon"
    capabilities: ClassVar[Capabilities] = Capabilities(
        edit=True, delete=True, threads=True, alt_text=True, language_tag=True, limit=LIMIT,
        counts="grapheme clusters, a URL as 23, @user@domain as @user")

    def __init__(self, account, sessions=None, *, clock: Callable[[], datetime] | None = None,
                 timeout: float = 30.0, client=None):
        from mastodon import Mastodon

        self.account = account
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.attempts = Attempts(sessions, account.key, self.clock)
        # "throw": a 429 raises at once (the default "wait" would sleep in the flow).
        self.client = client or Mastodon(
            access_token=account.secret, api_base_url=account.instance.rstrip("/"),
            ratelimit_method="throw", request_timeout=timeout, version_check_mode="none",
            user_agent="pressflow")

    # -- the interface ----------------------------------------------------------------------

    def plan(self, key: str) -> str | None:
        return None  # Mastodon chooses the id; the Idempotency-Key stands for it

    def send(self, message: Message, *, key: str, planned: str | None) -> Sent:
        self._check_length(message)
        self.attempts.begin(key)
        return self._post(message, key)

    def confirm(self, message: Message, *, key: str, planned: str | None) -> Sent | None:
        age = self.attempts.age(key)
        if age is None:
            if not self.attempts.durable:
                raise Unconfirmable("mastodon: no record of when this send began (no session store)")
            return None  # nothing was sent: the attempt is recorded before any request
        if age >= KEY_KEPT - KEY_MARGIN:
            raise Unconfirmable(
                f"mastodon: the send began {_minutes(age)} ago; Mastodon keeps an Idempotency-Key "
                f"an hour, so sending again could post it twice. Check the account and settle it")
        # Within the hour the same key returns the status the first request made, or makes it
        # now if that request never arrived: either way exactly one status.
        return self._post(message, key)

    def delete(self, remote_id: str) -> None:
        from mastodon.errors import MastodonNotFoundError

        try:
            self._call(self.client.status_delete, remote_id)
        except ChannelError as exc:
            if isinstance(exc.__cause__, MastodonNotFoundError):
                return  # already gone
            raise

    def update(self, remote_id: str, message: Message) -> Sent:
        self._check_length(message)
        media_ids = [self._upload(message)] if message.image else None
        status = self._call(self.client.status_update, remote_id, status=message.text, media_ids=media_ids)
        return Sent(str(status["id"]), status.get("url"))

    # -- the work ---------------------------------------------------------------------------

    def _post(self, message: Message, key: str) -> Sent:
        media_ids = None
        if message.image is not None:
            entry = self.attempts.get(key) or {}
            media_id = entry.get("media_id")
            if media_id is None:
                media_id = self._upload(message)
                self.attempts.note(key, media_id=media_id)
            media_ids = [media_id]
        status = self._call(
            self.client.status_post, message.text, in_reply_to_id=message.reply_to, media_ids=media_ids,
            language=language_tag(message.language), visibility="public",
            idempotency_key=idempotency_key(key))
        return Sent(str(status["id"]), status.get("url"))

    def _upload(self, message: Message) -> str:
        image = message.image
        media = self._call(self.client.media_post, str(image.path), mime_type=image.mime,
                           description=image.alt or None, synchronous=True)
        return str(media["id"])

    def _check_length(self, message: Message) -> None:
        length = mastodon_length(message.text)
        if length > LIMIT:
            raise ChannelError(f"mastodon: the post is {length} characters as Mastodon counts them; "
                               f"the limit is {LIMIT}")

    def _call(self, method, *args, **kwargs):
        from mastodon.errors import (MastodonAPIError, MastodonNotFoundError, MastodonRatelimitError,
                                     MastodonServerError, MastodonUnauthorizedError)

        try:
            return method(*args, **kwargs)
        except MastodonRatelimitError as exc:
            reset = getattr(self.client, "ratelimit_reset", None)
            now = datetime.now(timezone.utc)
            retry_at = datetime.fromtimestamp(reset, timezone.utc) if reset else now + DEFAULT_WAIT
            raise RateLimited(max(retry_at, now), "mastodon: rate limited") from exc
        except MastodonServerError:
            raise  # 5xx: the status may or may not exist; retried after confirmation
        except MastodonNotFoundError as exc:
            raise ChannelError(f"mastodon: not found ({_reason(exc)})") from exc
        except MastodonUnauthorizedError as exc:
            raise ChannelError(f"mastodon: the instance refused the access token ({_reason(exc)})") from exc
        except MastodonAPIError as exc:
            raise ChannelError(f"mastodon: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    # Mastodon.py's args: (prefix, status code, reason, error text)
    args = [a for a in exc.args if a not in (None, "")]
    return " ".join(str(a) for a in args[1:]) if len(args) > 1 else str(exc)


def _minutes(age: timedelta) -> str:
    return f"{int(age.total_seconds() // 60)} minutes"
