"""The Mastodon channel against mastodon_mock (a Mastodon REST API mock run as a real HTTP server
on loopback, see docs/channels.md for where it differs from Mastodon) through Mastodon.py."""

from __future__ import annotations

import os
import struct
import time
import zlib
from datetime import datetime, timedelta, timezone

import httpx
import pytest

try:
    import mastodon_mock  # noqa: F401
except ImportError:
    if os.environ.get("CI"):  # CI installs the test extra: a missing mock is a failure there
        raise
    pytest.skip("mastodon_mock is not installed (pip install -e '.[test]')", allow_module_level=True)

from mastodon_mock.testing.server import MockServer  # noqa: E402

from lossy_proxy import LossyProxy  # noqa: E402
from pressflow.deliver.base import ChannelError, Image, Message, RateLimited, Unconfirmable  # noqa: E402
from pressflow.deliver.config import Account  # noqa: E402
from pressflow.deliver.mastodon import MastodonChannel, idempotency_key, language_tag, mastodon_length  # noqa: E402


class Sessions:
    """The ledger's session store, in memory."""

    def __init__(self):
        self.data: dict = {}

    def load(self, account):
        return self.data.get(account)

    def save(self, account, data):
        self.data[account] = data


class Clock:
    def __init__(self):
        self.now = datetime.now(timezone.utc)

    def __call__(self):
        return self.now


def png(path):
    """A real 2x2 PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\0" + b"\xff\x00\x00" * 2 for _ in range(2))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def server():
    with MockServer() as s:
        yield s


@pytest.fixture
def mock(server):
    httpx.post(f"{server.base_url}/api/v1/_mock/reset").raise_for_status()
    httpx.delete(f"{server.base_url}/api/v1/_mock/faults")
    return server


def account(url, key="mastodon:test"):
    return Account(channel="mastodon", languages="*", instance=url, token_env="MASTODON_TOKEN",
                   id=key).model_copy(update={"secret": "alice_token"})


def statuses(mock):
    client = mock.client("alice")
    return client.account_statuses(client.me()["id"], limit=40)


def message(text="Hello from the press office https://example.org/releases/one", **kw):
    fields = dict(release="one", language="en", kind="post", text=text, html=None, title="One",
                  url="https://example.org/releases/one", image=None)
    fields.update(kw)
    return Message(**fields)


def test_length_counts_graphemes_urls_and_mentions():
    assert mastodon_length("👩‍👩‍👧‍👦" * 3) == 3  # a family emoji is 7 code points, one grapheme
    assert mastodon_length("see https://example.org/" + "a" * 200) == 4 + 23
    assert mastodon_length("@press@very.long.example.social hi") == len("@press hi")
    assert mastodon_length("مرحبا بالعالم") == 13
    assert language_tag("zh-TW") == "zh-TW" and language_tag("zh-Hans") == "zh" and language_tag("AR") == "ar"


def test_over_the_limit_is_refused_before_sending(mock):
    channel = MastodonChannel(account(mock.base_url), Sessions())
    with pytest.raises(ChannelError, match="501 characters"):
        channel.send(message("x" * 501), key="k-long", planned=None)
    assert statuses(mock) == []


def test_language_tag_alt_text_and_thread(mock, tmp_path):
    channel = MastodonChannel(account(mock.base_url), Sessions())
    image = Image(path=png(tmp_path / "poster.png"), alt="海报：新闻发布会", mime="image/png")
    first = channel.send(message("新闻稿：第一部分 https://example.org/zh/one", language="zh", image=image),
                         key="k-zh-0", planned=None)
    second = channel.send(message("第二部分", language="zh", part=1, reply_to=first.remote_id),
                          key="k-zh-1", planned=None)
    client = mock.client("alice")
    one, two = client.status(first.remote_id), client.status(second.remote_id)
    assert one["language"] == "zh"
    assert [m["description"] for m in one["media_attachments"]] == ["海报：新闻发布会"]
    assert str(two["in_reply_to_id"]) == first.remote_id and two["language"] == "zh"
    assert first.url and first.url.startswith("http")


def test_lost_answer_is_confirmed_by_the_same_idempotency_key(mock, tmp_path):
    sessions = Sessions()
    with LossyProxy("127.0.0.1", mock.port) as proxy:
        channel = MastodonChannel(account(f"http://{proxy.address}"), sessions, timeout=10)
        image = Image(path=png(tmp_path / "p.png"), alt="The poster", mime="image/png")
        proxy.lose_answer_after(b"POST /api/v1/statuses HTTP")
        with pytest.raises(Exception) as lost:
            channel.send(message(image=image), key="k-lost", planned=None)
        assert not isinstance(lost.value, (ChannelError, RateLimited)), lost.value  # a retry, not a failure
        assert proxy.lost == 1
        # The status exists, but the channel never heard its id.
        [made] = statuses(mock)
        # A later process (a new channel, the same session store) confirms it.
        again = MastodonChannel(account(f"http://{proxy.address}"), sessions)
        sent = again.confirm(message(image=image), key="k-lost", planned=None)
    assert sent is not None and sent.remote_id == str(made["id"])
    [still] = statuses(mock)  # no duplicate
    assert still["id"] == made["id"] and len(still["media_attachments"]) == 1


def test_lost_answer_past_the_hour_cannot_be_confirmed(mock):
    sessions, clock = Sessions(), Clock()
    with LossyProxy("127.0.0.1", mock.port) as proxy:
        channel = MastodonChannel(account(f"http://{proxy.address}"), sessions, clock=clock, timeout=10)
        proxy.lose_answer_after(b"POST /api/v1/statuses HTTP")
        with pytest.raises(Exception):
            channel.send(message(), key="k-late", planned=None)
    clock.now += timedelta(minutes=61)
    with pytest.raises(Unconfirmable, match="Idempotency-Key"):
        MastodonChannel(account(mock.base_url), sessions, clock=clock).confirm(message(), key="k-late", planned=None)
    assert len(statuses(mock)) == 1  # nothing posted a second time


def test_confirm_of_a_send_that_never_began_is_none(mock):
    channel = MastodonChannel(account(mock.base_url), Sessions())
    assert channel.confirm(message(), key="k-never", planned=None) is None
    assert statuses(mock) == []
    with pytest.raises(Unconfirmable):  # without a session store nothing can be told
        MastodonChannel(account(mock.base_url), None).confirm(message(), key="k-never", planned=None)


def test_rate_limit_postpones_until_the_reset(mock):
    reset = int(time.time()) + 600
    httpx.post(f"{mock.base_url}/api/v1/_mock/faults", json={
        "match": {"methods": ["POST"], "path": "/api/v1/statuses"},
        "effect": {"type": "ratelimit", "headers": {"X-RateLimit-Reset": str(reset)}},
        "count": 1}).raise_for_status()
    channel = MastodonChannel(account(mock.base_url), Sessions())
    with pytest.raises(RateLimited) as limited:
        channel.send(message(), key="k-rl", planned=None)
    assert abs(limited.value.retry_at.timestamp() - reset) < 5
    assert statuses(mock) == []
    sent = channel.send(message(), key="k-rl", planned=None)  # when the time comes
    assert [str(s["id"]) for s in statuses(mock)] == [sent.remote_id]


def test_correction_edits_in_place(mock):
    channel = MastodonChannel(account(mock.base_url), Sessions())
    sent = channel.send(message("Launch on Monday https://example.org/one"), key="k-c", planned=None)
    fixed = channel.update(sent.remote_id, message("Launch on Tuesday https://example.org/one"))
    assert fixed.remote_id == sent.remote_id
    [status] = statuses(mock)
    assert "Tuesday" in status["content"] and status["edited_at"] is not None


def test_withdrawal_deletes_and_a_missing_status_counts_as_deleted(mock):
    channel = MastodonChannel(account(mock.base_url), Sessions())
    sent = channel.send(message(), key="k-w", planned=None)
    channel.delete(sent.remote_id)
    assert statuses(mock) == []
    channel.delete(sent.remote_id)  # 404: already deleted
    channel.delete("999999999")


def test_the_idempotency_key_is_stable_and_header_safe():
    assert idempotency_key("release/one:en:mastodon:0") == idempotency_key("release/one:en:mastodon:0")
    assert idempotency_key("a").isascii() and len(idempotency_key("a")) < 64
