"""X and LinkedIn against a real HTTP server on loopback that checks each request's shape exactly
as the platforms document it and answers as their documentation shows. These are the documented
shapes, not the live services (docs/channels.md)."""

from __future__ import annotations

import json
import re
import struct
import threading
import time
import zlib
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from lossy_proxy import LossyProxy
from pressflow.deliver.base import ChannelError, Image, Message, RateLimited, Unconfirmable
from pressflow.deliver.config import Account, load_channels
from pressflow.deliver.linkedin import LinkedInChannel, little_text
from pressflow.deliver.x import XChannel

TOKEN = "test-access-token"
AUTHOR = "urn:li:organization:5515715"


class Platform(ThreadingHTTPServer):
    """Both APIs on one loopback server: X under /2/, LinkedIn under /rest/."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.tweets: dict[str, dict] = {}
        self.media: dict[str, dict] = {}
        self.posts: dict[str, dict] = {}
        self.images: dict[str, bytes | None] = {}
        self.rate_limit_next = 0
        self.problems: list[str] = []  # requests that broke the documented shape
        self.next_id = 1445880548472328192
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # -- plumbing -------------------------------------------------------------------------------

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, data=None, headers: dict | None = None):
        body = b"" if data is None else json.dumps(data).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if data is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, why: str):
        self.server.problems.append(f"{self.command} {self.path}: {why}")
        self._answer(400, {"title": "Invalid Request", "detail": why, "status": 400})

    def _common(self, linkedin: bool) -> str | None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return "Authorization: Bearer token missing"
        if linkedin:
            if not re.fullmatch(r"\d{6}", self.headers.get("LinkedIn-Version", "")):
                return "LinkedIn-Version: YYYYMM required"
            if self.headers.get("X-Restli-Protocol-Version") != "2.0.0":
                return "X-Restli-Protocol-Version: 2.0.0 required"
        return None

    def _rate_limited(self, linkedin: bool) -> bool:
        if self.server.rate_limit_next <= 0:
            return False
        self.server.rate_limit_next -= 1
        self._body()
        if linkedin:  # LinkedIn documents the 429 status; its limits reset daily
            self._answer(429, {"status": 429, "message": "Resource level throttle limit reached"})
        else:
            reset = int(time.time()) + 900
            self._answer(429, {"title": "Too Many Requests", "detail": "Too Many Requests",
                               "type": "about:blank", "status": 429},
                         {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                          "x-rate-limit-reset": str(reset)})
        return True

    # -- routes ---------------------------------------------------------------------------------

    def do_POST(self):
        url = urlsplit(self.path)
        linkedin = url.path.startswith("/rest/")
        if (why := self._common(linkedin)) is not None:
            self._body()
            return self._refuse(why)
        if self._rate_limited(linkedin):
            return None
        if url.path == "/2/tweets":
            return self._x_post()
        if url.path == "/2/media/upload":
            return self._x_media_upload()
        if url.path == "/2/media/metadata":
            return self._x_media_metadata()
        if url.path == "/rest/posts":
            return self._li_post()
        if url.path.startswith("/rest/posts/"):
            return self._li_update(unquote(url.path.removeprefix("/rest/posts/")))
        if url.path == "/rest/images" and parse_qs(url.query) == {"action": ["initializeUpload"]}:
            return self._li_images()
        self._body()
        self._answer(404, {"title": "Not Found"})

    def do_PUT(self):
        url = urlsplit(self.path)
        if url.path.startswith("/dms-uploads/"):
            urn = unquote(url.path.removeprefix("/dms-uploads/"))
            if urn not in self.server.images:
                return self._refuse("unknown upload URL")
            self.server.images[urn] = self._body()
            return self._answer(201)
        self._body()
        self._answer(404, {"title": "Not Found"})

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/rest/posts":
            if (why := self._common(True)) is not None:
                return self._refuse(why)
            query = parse_qs(url.query)
            if query.get("q") != ["author"] or self.headers.get("X-RestLi-Method") != "FINDER":
                return self._refuse("the author finder is q=author with X-RestLi-Method: FINDER")
            author = query["author"][0]
            elements = [p for p in self.server.posts.values() if p["author"] == author]
            return self._answer(200, {"paging": {"start": 0, "count": len(elements), "links": []},
                                      "elements": list(reversed(elements))})
        self._answer(404, {"title": "Not Found"})

    def do_DELETE(self):
        url = urlsplit(self.path)
        linkedin = url.path.startswith("/rest/")
        if (why := self._common(linkedin)) is not None:
            return self._refuse(why)
        if url.path.startswith("/2/tweets/"):
            tweet_id = url.path.removeprefix("/2/tweets/")
            if tweet_id not in self.server.tweets:
                return self._answer(404, {"title": "Not Found Error", "status": 404,
                                          "detail": f"Could not find tweet with id: [{tweet_id}]."})
            del self.server.tweets[tweet_id]
            return self._answer(200, {"data": {"deleted": True}})
        if url.path.startswith("/rest/posts/"):
            urn = unquote(url.path.removeprefix("/rest/posts/"))
            if self.server.posts.pop(urn, None) is None:
                return self._answer(404, {"status": 404, "message": "Not Found"})
            return self._answer(204)
        self._answer(404, {"title": "Not Found"})

    # X API v2 ----------------------------------------------------------------------------------

    def _json_body(self):
        if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
            return None
        return json.loads(self._body())

    def _x_post(self):
        body = self._json_body()
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return self._refuse("a JSON body with text")
        if set(body) - {"text", "reply", "media"}:
            return self._refuse(f"unexpected fields {sorted(set(body) - {'text', 'reply', 'media'})}")
        if "reply" in body:
            if set(body["reply"]) != {"in_reply_to_tweet_id"} or body["reply"]["in_reply_to_tweet_id"] not in self.server.tweets:
                return self._refuse("reply.in_reply_to_tweet_id: an existing post")
        if "media" in body:
            ids = body["media"].get("media_ids")
            if set(body["media"]) != {"media_ids"} or not ids or any(i not in self.server.media for i in ids):
                return self._refuse("media.media_ids: uploaded media ids")
        tweet_id = self.server.new_id()
        self.server.tweets[tweet_id] = body
        self._answer(201, {"data": {"id": tweet_id, "text": body["text"], "edit_history_tweet_ids": [tweet_id]}})

    def _x_media_upload(self):
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            self._body()
            return self._refuse("media upload is multipart/form-data")
        form = message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + self._body(), policy=policy.HTTP)
        fields = {part.get_param("name", header="content-disposition"): part for part in form.iter_parts()}
        if "media" not in fields or fields.get("media_category") is None:
            return self._refuse("media and media_category fields")
        if fields["media_category"].get_content().strip() != "tweet_image":
            return self._refuse("media_category=tweet_image")
        media_id = self.server.new_id()
        self.server.media[media_id] = {"bytes": fields["media"].get_payload(decode=True), "alt": None}
        self._answer(200, {"data": {"id": media_id, "media_key": f"3_{media_id}", "size": 120,
                                    "expires_after_secs": 86400,
                                    "image": {"image_type": "image/png", "w": 2, "h": 2}}})

    def _x_media_metadata(self):
        body = self._json_body()
        if not isinstance(body, dict) or body.get("id") not in self.server.media \
                or set(body.get("metadata", {})) != {"alt_text"} or "text" not in body["metadata"]["alt_text"]:
            return self._refuse("{id, metadata: {alt_text: {text}}}")
        self.server.media[body["id"]]["alt"] = body["metadata"]["alt_text"]["text"]
        self._answer(200, {"data": {"id": body["id"], "associated_metadata": body["metadata"]}})

    # LinkedIn Posts API ------------------------------------------------------------------------

    def _li_post(self):
        body = self._json_body()
        required = {"author", "commentary", "visibility", "distribution", "lifecycleState"}
        if not isinstance(body, dict) or required - set(body):
            return self._refuse(f"required: {sorted(required)}")
        if set(body) - required - {"isReshareDisabledByAuthor", "content"}:
            return self._refuse("unexpected fields")
        if body["visibility"] not in ("PUBLIC", "CONNECTIONS", "LOGGED_IN", "CONTAINER_ONLY"):
            return self._refuse("visibility")
        if body["distribution"] != {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                                    "thirdPartyDistributionChannels": []}:
            return self._refuse("distribution")
        if body["lifecycleState"] != "PUBLISHED" or not body["author"].startswith(("urn:li:organization:", "urn:li:person:")):
            return self._refuse("lifecycleState / author")
        if "content" in body:
            media = body["content"].get("media", {})
            if set(media) != {"id", "altText"} or self.server.images.get(media["id"]) is None:
                return self._refuse("content.media: {id: an uploaded image URN, altText}")
        urn = f"urn:li:share:{self.server.new_id()}"
        self.server.posts[urn] = {**body, "id": urn}
        self._answer(201, None, {"x-restli-id": urn})

    def _li_update(self, urn: str):
        body = self._json_body()
        if self.headers.get("X-RestLi-Method") != "PARTIAL_UPDATE":
            return self._refuse("X-RestLi-Method: PARTIAL_UPDATE")
        if not isinstance(body, dict) or set(body) != {"patch"} or set(body["patch"]) != {"$set"}:
            return self._refuse('{"patch": {"$set": {...}}}')
        if urn not in self.server.posts:
            return self._answer(404, {"status": 404, "message": "Not Found"})
        self.server.posts[urn].update(body["patch"]["$set"])
        self._answer(204)

    def _li_images(self):
        body = self._json_body()
        if not isinstance(body, dict) or set(body) != {"initializeUploadRequest"} \
                or not body["initializeUploadRequest"].get("owner", "").startswith("urn:li:"):
            return self._refuse("initializeUploadRequest.owner")
        urn = f"urn:li:image:C4E10AQ{self.server.new_id()}"
        self.server.images[urn] = None
        host = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._answer(200, {"value": {"uploadUrlExpiresAt": int(time.time() * 1000) + 3600_000,
                                     "uploadUrl": f"{host}/dms-uploads/{urn}", "image": urn}})


class Sessions:
    def __init__(self):
        self.data: dict = {}

    def load(self, account):
        return self.data.get(account)

    def save(self, account, data):
        self.data[account] = data


def png(path):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\0" + b"\x00\x80\xff" * 2 for _ in range(2))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def platform():
    server = Platform()
    yield server
    server.shutdown()
    server.server_close()
    assert server.problems == []


def x_account(url, enabled=True):
    return Account(channel="x", languages="*", endpoint=url, handle="pressoffice", token_env="X_TOKEN",
                   enabled=enabled, id="x:press").model_copy(update={"secret": TOKEN})


def li_account(url, enabled=True):
    return Account(channel="linkedin", languages="*", endpoint=url, author=AUTHOR, token_env="LI_TOKEN",
                   enabled=enabled, id="linkedin:press").model_copy(update={"secret": TOKEN})


def message(text="The fund opens in May (applications: https://press.example.org/fund) #research", **kw):
    fields = dict(release="fund", language="en", kind="post", text=text, html=None, title="Fund",
                  url="https://press.example.org/fund", image=None)
    fields.update(kw)
    return Message(**fields)


# -- both -------------------------------------------------------------------------------------


def test_both_are_off_by_default(tmp_path, platform):
    path = tmp_path / "channels.yaml"
    path.write_text(f"- channel: x\n  languages: [en]\n  token_env: X_TOKEN_UNSET\n"
                    f"- channel: linkedin\n  languages: [en]\n  author: {AUTHOR}\n  token_env: LI_TOKEN_UNSET\n")
    accounts = load_channels(path)  # off: their secrets are not even read
    assert [a.is_enabled for a in accounts] == [False, False]
    with pytest.raises(ChannelError, match="off by default"):
        XChannel(x_account(platform.url, enabled=None))
    with pytest.raises(ChannelError, match="off by default"):
        LinkedInChannel(li_account(platform.url, enabled=None))


# -- X ----------------------------------------------------------------------------------------


def test_x_thread_with_an_image_and_alt_text(platform, tmp_path):
    channel = XChannel(x_account(platform.url), Sessions())
    image = Image(png(tmp_path / "p.png"), "A chart of the fund's budget", "image/png")
    first = channel.send(message(image=image), key="x-0", planned=None)
    second = channel.send(message("Part two: 研究基金", part=1, reply_to=first.remote_id), key="x-1", planned=None)
    assert first.url == f"https://x.com/pressoffice/status/{first.remote_id}"
    [media_id] = platform.tweets[first.remote_id]["media"]["media_ids"]
    assert platform.media[media_id]["alt"] == "A chart of the fund's budget"
    assert platform.media[media_id]["bytes"] == (tmp_path / "p.png").read_bytes()
    assert platform.tweets[second.remote_id]["reply"] == {"in_reply_to_tweet_id": first.remote_id}


def test_x_over_the_weighted_limit_is_refused_before_sending(platform):
    channel = XChannel(x_account(platform.url), Sessions())
    with pytest.raises(ChannelError, match="limit is 280"):
        channel.send(message("研" * 141), key="x-long", planned=None)  # CJK weighs 2: 282
    assert platform.tweets == {}


def test_x_lost_answer_is_left_for_a_person_and_never_sent_twice(platform):
    sessions = Sessions()
    with LossyProxy("127.0.0.1", platform.server_address[1]) as proxy:
        channel = XChannel(x_account(f"http://{proxy.address}"), sessions, timeout=10)
        proxy.lose_answer_after(b"POST /2/tweets HTTP")
        with pytest.raises(Exception) as lost:
            channel.send(message(), key="x-lost", planned=None)
        assert not isinstance(lost.value, (ChannelError, RateLimited)), lost.value
    assert len(platform.tweets) == 1
    again = XChannel(x_account(platform.url), sessions)
    with pytest.raises(Unconfirmable, match="no idempotency key"):
        again.confirm(message(), key="x-lost", planned=None)
    assert again.confirm(message(), key="x-never", planned=None) is None  # never began: surely absent
    assert len(platform.tweets) == 1


def test_x_rate_limit_postpones_until_x_rate_limit_reset(platform):
    platform.rate_limit_next = 1
    channel = XChannel(x_account(platform.url), Sessions())
    with pytest.raises(RateLimited) as limited:
        channel.send(message(), key="x-rl", planned=None)
    assert 880 < limited.value.retry_at.timestamp() - time.time() <= 900
    assert platform.tweets == {}
    channel.send(message(), key="x-rl", planned=None)
    assert len(platform.tweets) == 1


def test_x_withdrawal_deletes_and_a_correction_is_not_an_edit(platform):
    channel = XChannel(x_account(platform.url), Sessions())
    sent = channel.send(message(), key="x-w", planned=None)
    with pytest.raises(ChannelError, match="not edited"):
        channel.update(sent.remote_id, message("Corrected"))
    assert not XChannel.capabilities.edit  # the runner sends a correction as a new post
    channel.delete(sent.remote_id)
    assert platform.tweets == {}
    channel.delete(sent.remote_id)  # 404: already deleted


# -- LinkedIn ---------------------------------------------------------------------------------


def test_linkedin_post_with_image_alt_text_and_escaped_commentary(platform, tmp_path):
    channel = LinkedInChannel(li_account(platform.url), Sessions())
    image = Image(png(tmp_path / "p.png"), "The ministers at the signing", "image/png")
    sent = channel.send(message(image=image), key="li-0", planned=None)
    assert sent.remote_id.startswith("urn:li:share:")
    assert sent.url == f"https://www.linkedin.com/feed/update/{sent.remote_id}/"
    post = platform.posts[sent.remote_id]
    assert post["author"] == AUTHOR and post["visibility"] == "PUBLIC" and post["lifecycleState"] == "PUBLISHED"
    assert post["commentary"] == ("The fund opens in May \\(applications: https://press.example.org/fund\\) "
                                  "\\#research")
    assert post["content"]["media"]["altText"] == "The ministers at the signing"
    assert platform.images[post["content"]["media"]["id"]] == (tmp_path / "p.png").read_bytes()
    assert little_text("a_b*c@d") == "a\\_b\\*c\\@d"


def test_linkedin_lost_answer_is_found_among_the_authors_posts(platform):
    sessions = Sessions()
    with LossyProxy("127.0.0.1", platform.server_address[1]) as proxy:
        channel = LinkedInChannel(li_account(f"http://{proxy.address}"), sessions, timeout=10)
        proxy.lose_answer_after(b"POST /rest/posts HTTP")
        with pytest.raises(Exception) as lost:
            channel.send(message(), key="li-lost", planned=None)
        assert not isinstance(lost.value, (ChannelError, RateLimited)), lost.value
    [urn] = platform.posts
    again = LinkedInChannel(li_account(platform.url), sessions)
    found = again.confirm(message(), key="li-lost", planned=None)
    assert found is not None and found.remote_id == urn
    assert list(platform.posts) == [urn]  # no duplicate
    # A send that began but is not on the page cannot be told apart from a lagging list.
    sessions.data["linkedin:press"]["attempts"]["li-other"] = sessions.data["linkedin:press"]["attempts"]["li-lost"]
    with pytest.raises(Unconfirmable, match="not among the author's latest posts"):
        again.confirm(message("Another text"), key="li-other", planned=None)
    assert again.confirm(message(), key="li-never", planned=None) is None


def test_linkedin_rate_limit_postpones(platform):
    platform.rate_limit_next = 1
    channel = LinkedInChannel(li_account(platform.url), Sessions())
    with pytest.raises(RateLimited) as limited:
        channel.send(message(), key="li-rl", planned=None)
    assert limited.value.retry_at.hour == 0 and limited.value.retry_at.minute == 0  # the daily reset
    assert platform.posts == {}
    channel.send(message(), key="li-rl", planned=None)
    assert len(platform.posts) == 1


def test_linkedin_correction_edits_in_place_and_withdrawal_deletes(platform):
    channel = LinkedInChannel(li_account(platform.url), Sessions())
    sent = channel.send(message(), key="li-c", planned=None)
    fixed = channel.update(sent.remote_id, message("The fund opens in June"))
    assert fixed.remote_id == sent.remote_id
    assert [p["commentary"] for p in platform.posts.values()] == ["The fund opens in June"]
    channel.delete(sent.remote_id)
    assert platform.posts == {}
    channel.delete(sent.remote_id)  # 404: already deleted
