"""The channels file, facets' byte offsets, idempotency keys and the message hash (no server)."""

from __future__ import annotations

import pytest

from pressflow.deliver import ledger as L
from pressflow.deliver.base import Message
from pressflow.deliver.bluesky import facets, tid, tid_time
from pressflow.deliver.config import load_channels
from pressflow.deliver.due import split_parts
from pressflow.core.errors import ConfigError

GOOD = """
- channel: bluesky
  languages: [en, zh]
  service: https://bsky.social
  handle: press.example.org
  password_env: BSKY_PASSWORD
- channel: email
  languages: "*"
  smtp: mail.example.org:587
  from: press@example.org
  to: [list-en@example.org]
  unsubscribe: https://example.org/unsubscribe
- channel: x
  languages: [en]
  token_env: X_TOKEN
"""


def test_good_file_resolves_secrets(tmp_path, monkeypatch):
    path = tmp_path / "channels.yaml"
    path.write_text(GOOD)
    monkeypatch.setenv("BSKY_PASSWORD", "s3cret")
    accounts = load_channels(path)
    assert [a.key for a in accounts] == ["bluesky:press.example.org", "email:press@example.org", "x:?"]
    assert accounts[0].secret == "s3cret" and accounts[0].serves("zh") and not accounts[0].serves("fr")
    assert accounts[1].serves("ar")
    assert not accounts[2].is_enabled and accounts[2].secret is None  # X is off by default: not read


@pytest.mark.parametrize("entry, message", [
    ("- channel: bluesky\n  languages: [en]\n  service: https://bsky.social\n  password_env: P\n",
     "entry 1 (bluesky): handle: required for bluesky"),
    ("- channel: myspace\n  languages: [en]\n", "entry 1 (myspace): channel:"),
    ("- channel: email\n  languages: [en]\n  smtp: nohost\n  from: a@b.c\n  to: [d@e.f]\n  unsubscribe: https://u.example\n",
     "entry 1 (email): smtp: 'nohost' is not host:port"),
    ("- channel: mastodon\n  languages: []\n  instance: https://m.social\n  token_env: T\n",
     "entry 1 (mastodon): languages:"),
    ("- channel: mastodon\n  languages: [en]\n  instance: https://m.social\n  token: abc\n",
     "entry 1 (mastodon): token: secrets are not written in the file"),
    ("- channel: mastodon\n  languages: [en]\n  instance: https://m.social\n  token_env: T\n  colour: red\n",
     "entry 1 (mastodon): colour: unknown field"),
    ("channel: bluesky\n", "the top level must be a list"),
    ("- channel: bluesky\n  languages: [en]\n  service: https://bsky.social\n  handle: a.b\n  password_env: NOPE_UNSET\n",
     "entry 1 (bluesky): password_env: the environment variable NOPE_UNSET is not set"),
])
def test_bad_file_is_refused_in_one_line(tmp_path, entry, message):
    path = tmp_path / "channels.yaml"
    path.write_text(entry)
    with pytest.raises(ConfigError) as caught:
        load_channels(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def spans(text: str) -> list[tuple[str, str]]:
    data = text.encode()
    return [(f["features"][0]["$type"].split("#")[1], data[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode())
            for f in facets(text)]


def test_facets_count_utf8_bytes_in_chinese_and_arabic():
    zh = "亚洲科学论坛开幕 #气候变化 https://press.example.org/zh/forum.html 欢迎"
    assert spans(zh) == [("tag", "#气候变化"), ("link", "https://press.example.org/zh/forum.html")]
    assert facets(zh)[0]["index"] == {"byteStart": 25, "byteEnd": 38}
    ar = "افتتاح منتدى العلوم #المناخ https://press.example.org/ar/forum.html."
    assert spans(ar) == [("tag", "#المناخ"), ("link", "https://press.example.org/ar/forum.html")]
    assert facets(ar)[0]["index"]["byteStart"] == len("افتتاح منتدى العلوم ".encode())
    assert spans("issue#3 and #2024 and https://x.org/#frag") == [("link", "https://x.org/#frag")]


def test_keys_are_deterministic_and_tids_valid():
    key = L.idempotency_key("r", "en", "bluesky", "acct", "post", 0, "h")
    assert key == L.idempotency_key("r", "en", "bluesky", "acct", "post", 0, "h")
    assert key != L.idempotency_key("r", "en", "bluesky", "acct", "post", 0, "h", generation=1)
    rkey = tid(1_700_000_000_000_000, 5)
    assert len(rkey) == 13 and rkey[0] in "234567abcdefghij"
    assert tid_time(rkey).year == 2023


def test_content_hash_covers_what_is_sent_not_the_reply_target():
    m = Message("r", "en", "post", "text", None, "T", "https://x/en/r.html", None)
    assert m.content_hash() == Message("r", "en", "post", "text", None, "T", "https://x/en/r.html", None,
                                       reply_to="at://x").content_hash()
    assert m.content_hash() != Message("r", "en", "post", "text!", None, "T", "https://x/en/r.html", None).content_hash()


def test_thread_parts():
    assert split_parts("one\n---\ntwo\n") == ["one", "two"]
    assert split_parts("just one\n") == ["just one"]
