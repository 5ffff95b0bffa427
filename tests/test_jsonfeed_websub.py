"""JSON Feed 1.1 read back against the specification's fields, and WebSub against a real HTTP
receiver on loopback (a stand-in hub that records what it is told)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import feedparser
import pytest

from pressflow.core import db
from pressflow.drafts import store
from pressflow.prepare import pipeline
from pressflow.core.config import Settings
from pressflow.publish import publish
from pressflow.records import validate_record


@pytest.fixture(autouse=True)
def _source_drafts_approved_as_prepared(monkeypatch):
    """What is under test here is publishing, not review (tests/test_gate.py has the gate's
    tests): source drafts are approved as they are prepared, the setting an office may choose."""
    monkeypatch.setenv("PRESSFLOW_AUTO_APPROVE_SOURCE", "1")


# Every top-level and item key JSON Feed 1.1 defines.
TOP_LEVEL = {"version", "title", "home_page_url", "feed_url", "description", "user_comment", "next_url", "icon",
             "favicon", "authors", "language", "expired", "hubs", "items"}
ITEM = {"id", "url", "external_url", "title", "content_html", "content_text", "summary", "image", "banner_image",
        "date_published", "date_modified", "authors", "tags", "language", "attachments"}
T0 = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
IMAGE = {"url": "https://media.example.org/forum.jpg", "alt": "The forum hall"}


def prepare(settings: Settings, *records: dict) -> None:
    report = pipeline.prepare([(None, validate_record(r)) for r in records], settings)
    assert not report.failed


def record(i: int, **extra) -> dict:
    return {"id": f"release-{i}", "title": f"Forum {i} <on> water & energy", "date": "2021-09-01",
            "summary": f"Delegates met for session {i}.", "languages": [], "tags": ["water", "energy"], **extra}


def rfc3339(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text)
    assert parsed.tzinfo is not None, text
    return parsed


@pytest.fixture
def settings(tmp_path) -> Settings:
    # A public address: publishing warns about a loopback one, and these tests count warnings.
    return Settings(out_dir=tmp_path / "out", site_url="https://press.example.org")


def test_json_feed_has_the_specifications_fields_and_the_atom_entries(settings):
    prepare(settings, record(1, image=IMAGE), record(2),
            record(3, publish_at=(T0 + dt.timedelta(days=1)).isoformat()))
    publish(settings, now=T0)
    for name in ("en", "all"):
        path = settings.out_dir / "feeds" / name / "feed.json"
        feed = json.loads(path.read_text(encoding="utf-8"))
        # Required by JSON Feed 1.1: version, title, items; each item an id (a string) and content.
        assert feed["version"] == "https://jsonfeed.org/version/1.1"
        assert feed["title"] and isinstance(feed["items"], list)
        assert feed["home_page_url"] == f"{settings.site_url}/site/en/index.html"
        assert feed["feed_url"] == f"{settings.site_url}/feeds/{name}/feed.json"
        assert feed.get("language") == ("en" if name == "en" else None)
        assert "hubs" not in feed  # no hub configured
        ids = [item["id"] for item in feed["items"]]
        assert ids == [f"tag:{settings.tag_authority}:release-{i}/en" for i in (2, 1)]  # newest first, no embargoed
        atom = {e.id for e in feedparser.parse(str(settings.out_dir / "feeds" / name / "atom.xml")).entries}
        assert set(ids) == atom
        for item in feed["items"]:
            assert isinstance(item["id"], str) and item["content_html"]
            assert item["url"] == f"{settings.site_url}/site/en/{item['id'].split(':')[-1].split('/')[0]}.html"
            assert item["title"].endswith("<on> water & energy")  # plain text, as JSON carries it
            assert "Delegates met for session" in item["summary"]
            assert rfc3339(item["date_modified"]) >= rfc3339(item["date_published"])
            assert item["tags"] == ["water", "energy"] and item["language"] == "en"
        [with_image] = [i for i in feed["items"] if i["id"].endswith("release-1/en")]
        assert with_image["image"] == IMAGE["url"]
        # Only the specification's own keys (a reader may reject others; extensions start with "_").
        assert set(feed) <= TOP_LEVEL and all(set(item) <= ITEM for item in feed["items"])

    # The embargo lifts: in the feed; moved under embargo again: out of it, as in Atom.
    publish(settings, now=T0 + dt.timedelta(days=2))
    ids = [i["id"] for i in json.loads((settings.out_dir / "feeds/en/feed.json").read_text())["items"]]
    assert ids[0].endswith("release-3/en")
    with db.session_scope(settings.db_url) as session:
        session.get(store.Release, "release-1").publish_at = T0 + dt.timedelta(days=30)
    assert publish(settings, now=T0 + dt.timedelta(days=3)).withdrawn == ["release-1"]
    ids = [i["id"] for i in json.loads((settings.out_dir / "feeds/en/feed.json").read_text())["items"]]
    assert not any("release-1/" in i for i in ids) and len(ids) == 2


class Hub:
    """A WebSub hub stand-in on a free loopback port: records every POST, answers `status`."""

    def __init__(self, status: int = 202):
        self.posts: list[dict[str, list[str]]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                hub.posts.append(parse_qs(self.rfile.read(length).decode()))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()



def test_a_feed_reader_reads_the_json_feed_as_the_atom_feed(settings):
    """reader (a feed reader library nobody here wrote, with its own JSON Feed parser) fetches
    feed.json over HTTP and finds the Atom feed's entries: same ids, titles, links and times."""
    from reader import make_reader

    prepare(settings, record(1, image=IMAGE), record(2), record(3))
    publish(settings, now=T0)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(settings.out_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name in ("en", "all"):
            url = f"http://127.0.0.1:{server.server_address[1]}/feeds/{name}/feed.json"
            subscriber = make_reader(":memory:")
            subscriber.add_feed(url)
            subscriber.update_feeds()
            feed = subscriber.get_feed(url)
            assert feed.last_exception is None and feed.version == "json11"
            read = {e.id: e for e in subscriber.get_entries(feed=url)}
            atom = {e.id: e for e in feedparser.parse(str(settings.out_dir / "feeds" / name / "atom.xml")).entries}
            assert read.keys() == atom.keys() and len(read) == 3
            for entry_id, entry in read.items():
                assert entry.title == atom[entry_id].title and entry.link == atom[entry_id].link
                assert entry.published.timetuple()[:6] == atom[entry_id].published_parsed[:6]
                assert entry.updated.timetuple()[:6] == atom[entry_id].updated_parsed[:6]
                assert "Delegates met for session" in entry.content[0].value
    finally:
        server.shutdown()
        server.server_close()

def test_feeds_name_the_hub_and_a_publish_that_changed_them_tells_it(settings):
    with Hub() as hub:
        hubbed = settings.model_copy(update={"websub_hub": hub.url})
        prepare(hubbed, record(1))
        report = publish(hubbed, now=T0)
        assert not report.warnings
        feeds = {f"{settings.site_url}/feeds/{name}/{file}" for name in ("en", "all")
                 for file in ("atom.xml", "rss.xml", "feed.json")}
        told = [post["hub.url"][0] for post in hub.posts]
        assert all(post["hub.mode"] == ["publish"] for post in hub.posts)
        assert sorted(told) == sorted(feeds)
        out = settings.out_dir / "feeds" / "en"
        for kind in ("atom.xml", "rss.xml"):
            parsed = feedparser.parse(str(out / kind))
            assert not parsed.bozo, parsed.get("bozo_exception")
            assert hub.url in [link.href for link in parsed.feed.links if link.rel == "hub"], kind
        assert json.loads((out / "feed.json").read_text())["hubs"] == [{"type": "WebSub", "url": hub.url}]

        hub.posts.clear()
        assert publish(hubbed, now=T0 + dt.timedelta(minutes=1)).releases == {}
        assert hub.posts == []  # nothing changed: nothing to tell

        prepare(hubbed, record(2))
        publish(hubbed, now=T0 + dt.timedelta(minutes=2))
        assert sorted(post["hub.url"][0] for post in hub.posts) == sorted(feeds)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_hub_that_is_down_or_refuses_is_a_warning_not_a_failure(settings):
    down = settings.model_copy(update={"websub_hub": f"http://127.0.0.1:{free_port()}/hub"})
    prepare(down, record(1))
    report = publish(down, now=T0)
    assert report.releases == {"release-1": ["en"]}
    assert report.warnings and all("did not answer" in w for w in report.warnings)
    assert (settings.out_dir / "feeds" / "en" / "feed.json").is_file()
    with Hub(status=500) as hub:
        refusing = settings.model_copy(update={"websub_hub": hub.url})
        report = publish(refusing, now=T0 + dt.timedelta(minutes=1))  # the hub changed: every feed names the new one
        assert hub.posts and report.warnings and all("answered 500" in w for w in report.warnings)
