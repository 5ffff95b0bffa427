"""Feeds, pages and the sitemap, checked by readers nobody here wrote: feedparser, lxml, newsboat.

One published site (the bundled events in English, Spanish and Chinese with the tiny test
models, plus an embargoed release) is built once per module and read back in many ways.
"""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import json
import os
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path

import feedparser
import pytest
from lxml import etree, html

from pressflow.core import db
from pressflow.drafts import store
from pressflow.prepare import pipeline
from pressflow.core.config import Settings
from pressflow.publish import publish
from pressflow.records import validate_record

from conftest import approve_all, decoding_capped


@pytest.fixture(autouse=True)
def _source_drafts_approved_as_prepared(monkeypatch):
    """What is under test here is publishing, not review (tests/test_gate.py has the gate's
    tests): source drafts are approved as they are prepared, the setting an office may choose."""
    monkeypatch.setenv("PRESSFLOW_AUTO_APPROVE_SOURCE", "1")


LANGS = ("en", "es", "zh")
FEEDS = (*LANGS, "all")
UTC = dt.timezone.utc
# Publishing happens at 08:00 in Beijing: feeds must say 00:00 UTC.
NOW = dt.datetime(2030, 1, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
EMBARGO = dt.datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
EMBARGOED = {"id": "secret-summit", "title": "Embargoed Secret Summit Announcement", "date": "2021-12-01",
             "summary": "Not before June.", "publish_at": EMBARGO.isoformat(), "languages": ["es"],
             "tags": ["embargo"]}


@pytest.fixture(scope="module")
def site(tmp_path_factory, argos_models):
    from conftest import EVENTS
    from pressflow.records import load_records

    events = load_records([EVENTS]).events
    settings = Settings(out_dir=tmp_path_factory.mktemp("site") / "out")
    batch = [(path, event.model_copy(update={"languages": ["es", "zh"]})) for path, event in events]
    batch.append((None, validate_record(EMBARGOED)))
    with decoding_capped():
        report = pipeline.prepare(batch, settings)
    assert not report.failed and not report.skipped
    approve_all(settings)
    result = publish(settings, now=NOW)
    return settings, result, events


def feed_path(settings: Settings, name: str, kind: str) -> Path:
    return settings.out_dir / "feeds" / name / f"{kind}.xml"


def parsed(settings: Settings, name: str, kind: str):
    feed = feedparser.parse(str(feed_path(settings, name, kind)))
    assert feed.bozo == 0, f"{name}/{kind}: {feed.get('bozo_exception')}"
    return feed


@pytest.mark.parametrize("kind", ["atom", "rss"])
@pytest.mark.parametrize("name", FEEDS)
def test_feed_parses_and_carries_every_field(site, name, kind):
    settings, _, events = site
    feed = parsed(settings, name, kind)
    assert feed.version == ("atom10" if kind == "atom" else "rss20")
    assert feed.feed.language == ("mul" if name == "all" else name)
    self_links = [link.href for link in feed.feed.links if link.rel == "self"]
    assert self_links == [f"{settings.site_url}/feeds/{name}/{kind}.xml"]
    expected = len(events) * (len(LANGS) if name == "all" else 1)
    assert len(feed.entries) == expected
    for entry in feed.entries:
        assert entry.id.startswith(f"tag:{settings.tag_authority}:")
        assert entry.title and entry.link.startswith(f"{settings.site_url}/site/")
        assert entry.published_parsed
        if kind == "atom":
            assert entry.updated_parsed
        content = entry.content[0]
        assert content.type == "text/html" and "<p>" in content.value
        assert {tag.term for tag in entry.tags}, entry.id  # every bundled event has tags
    assert len({entry.id for entry in feed.entries}) == len(feed.entries)


def test_entry_ids_are_tag_uris_naming_release_and_language(site):
    settings, _, events = site
    for lang in LANGS:
        ids = {entry.id for entry in parsed(settings, lang, "atom").entries}
        assert ids == {f"tag:{settings.tag_authority}:{event.slug}/{lang}" for _, event in events}
        rss_ids = {entry.id for entry in parsed(settings, lang, "rss").entries}
        assert rss_ids == ids  # RSS guid and Atom id are the same, so readers of both never see duplicates


def test_all_languages_feed_marks_each_entry_with_its_language(site):
    settings, _, _ = site
    for kind in ("atom", "rss"):
        feed = parsed(settings, "all", kind)
        for entry in feed.entries:
            assert entry.language == entry.id.rsplit("/", 1)[1], (kind, entry.id)
    union = set().union(*({e.id for e in parsed(settings, lang, "atom").entries} for lang in LANGS))
    assert {e.id for e in parsed(settings, "all", "atom").entries} == union
    root = etree.parse(str(feed_path(settings, "all", "atom"))).getroot()
    langs = [e.get("{http://www.w3.org/XML/1998/namespace}lang") for e in root.iter("{http://www.w3.org/2005/Atom}entry")]
    assert set(langs) == set(LANGS)


def test_times_are_utc_in_both_formats_and_each_release_keeps_its_own(site):
    """Published at 08:00 in Beijing, approved earlier: each entry says, in UTC, when its own text
    was approved (never the run's one instant, which would give every entry the same time)."""
    settings, _, _ = site
    atom = parsed(settings, "en", "atom").entries
    rss = {e.id: e for e in parsed(settings, "en", "rss").entries}
    text = feed_path(settings, "en", "atom").read_text()
    for entry in atom:
        published = dt.datetime.fromisoformat(entry.published)
        assert published.utcoffset() == dt.timedelta(0) and f"<published>{entry.published}</published>" in text
        # approved while the fixture ran (now-ish), long before NOW
        assert dt.timedelta(0) <= dt.datetime.now(UTC) - published < dt.timedelta(hours=1)
        assert rss[entry.id].published_parsed == entry.published_parsed  # RFC 822 in RSS, same instant
        assert rss[entry.id].published.endswith("+0000")
    for name in FEEDS:
        updated = [e.updated for e in parsed(settings, name, "atom").entries]
        assert len(set(updated)) == len(updated), name


def test_local_image_is_an_enclosure_with_real_type_and_length(site):
    settings, _, events = site
    [(path, event)] = [(p, e) for p, e in events if e.image and not e.image.url.startswith("http")]
    size = (path.parent / event.image.url).stat().st_size
    for name in ("en", "all"):
        for kind in ("atom", "rss"):
            entries = [e for e in parsed(settings, name, kind).entries if f":{event.slug}/" in e.id]
            assert entries
            for entry in entries:
                [enclosure] = entry.enclosures
                assert enclosure.type == "image/svg+xml" and int(enclosure.length) == size
                copied = settings.out_dir / "site" / "media" / enclosure.href.rsplit("/", 1)[1]
                assert copied.stat().st_size == size
    manifest = json.loads((settings.out_dir / "outbox" / event.slug / "manifest.json").read_text())
    # the image, and the PNG drawn of it for social previews
    [listed, preview] = sorted((f for f in manifest["files"] if f["path"].startswith("site/media/")),
                               key=lambda f: f["path"].endswith("-social.png"))
    assert preview["path"].endswith("-social.png")
    assert listed["bytes"] == size and listed["path"] == str(copied.relative_to(settings.out_dir))


def test_feed_content_is_sanitized_html(site):
    settings, _, _ = site
    for entry in parsed(settings, "all", "atom").entries:
        fragment = html.fragment_fromstring(entry.content[0].value, create_parent="div")
        assert not fragment.xpath("//script|//iframe|//@onerror|//@onclick")


def test_pages_link_translations_and_carry_open_graph(site):
    settings, _, events = site
    for _, event in events:
        for lang in LANGS:
            page = html.parse(str(settings.out_dir / "site" / lang / f"{event.slug}.html")).getroot()
            hreflangs = {link.get("hreflang"): link.get("href")
                         for link in page.xpath("//head/link[@rel='alternate'][@hreflang]")}
            assert hreflangs == {**{other: f"{settings.site_url}/site/{other}/{event.slug}.html" for other in LANGS},
                                 "x-default": f"{settings.site_url}/site/en/{event.slug}.html"}
            assert page.get("lang") == lang
            meta = {m.get("property"): m.get("content") for m in page.xpath("//meta[@property]")}
            assert meta["og:url"] == f"{settings.site_url}/site/{lang}/{event.slug}.html"
            assert meta["og:title"] and meta["og:description"] and meta["og:type"] == "article"
            assert meta["og:locale"] == {"en": "en_US", "es": "es_ES", "zh": "zh_CN"}[lang]
            [entry] = [e for e in parsed(settings, lang, "atom").entries if e.link.endswith(f"/{event.slug}.html")]
            assert meta["article:published_time"] == entry.published
            if event.image:  # the bundled image is local: its copy next to the pages
                name = f"{event.slug}-{Path(event.image.url).name}"
                # absolute, for previews, and a PNG drawn of the SVG: previews show no SVG
                assert meta["og:image"] == f"{settings.site_url}/site/media/{Path(name).stem}-social.png"
                assert page.xpath("//article//img/@src") == [f"../media/{name}"]  # relative: works from disk
                # the alt text is translated and reviewed with the release: the page's own language
                [alt] = page.xpath("//article//img/@alt")
                assert meta["og:image:alt"] == alt and alt.strip()
                assert (alt == event.image.alt) == (lang == "en")
            else:
                assert "og:image" not in meta and not page.xpath("//article//img")


def test_each_language_has_an_index_listing_every_release(site):
    settings, _, events = site
    for lang in LANGS:
        index = html.parse(str(settings.out_dir / "site" / lang / "index.html")).getroot()
        links = {a.get("href") for a in index.xpath("//main//a")}
        assert links == {f"{event.slug}.html" for _, event in events}


def test_sitemap_lists_every_page_with_its_alternates(site):
    settings, _, events = site
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9", "x": "http://www.w3.org/1999/xhtml"}
    root = etree.parse(str(settings.out_dir / "sitemap.xml")).getroot()  # strict XML parser
    urls = {u.findtext("s:loc", namespaces=ns): u for u in root.findall("s:url", ns)}
    pages = {f"{settings.site_url}/site/{p.parent.name}/{p.name}"
             for p in (settings.out_dir / "site").glob("*/*.html") if p.parent.name != "media"}
    assert set(urls) == pages
    for _, event in events:
        url = urls[f"{settings.site_url}/site/es/{event.slug}.html"]
        alternates = {a.get("hreflang"): a.get("href") for a in url.findall("x:link", ns)}
        assert alternates == {**{lang: f"{settings.site_url}/site/{lang}/{event.slug}.html" for lang in LANGS},
                              "x-default": f"{settings.site_url}/site/en/{event.slug}.html"}
    # Every page (releases and indexes) declares exactly the alternates the sitemap gives it.
    for loc, url in urls.items():
        page = html.parse(str(settings.out_dir / loc.removeprefix(f"{settings.site_url}/"))).getroot()
        declared = {(link.get("hreflang"), link.get("href"))
                    for link in page.xpath("//head/link[@rel='alternate'][@hreflang]")}
        assert declared == {(a.get("hreflang"), a.get("href")) for a in url.findall("x:link", ns)}, loc


def test_embargoed_release_appears_nowhere_until_its_time(site, tmp_path):
    settings, result, _ = site
    assert result.embargoed == ["secret-summit"]
    for path in settings.out_dir.rglob("*"):
        if path.is_file() and "state" not in path.relative_to(settings.out_dir).parts:
            text = path.read_bytes()
            assert b"secret-summit" not in text and b"Embargoed Secret" not in text, path
    # After the embargo lifts (in a copy, so the other tests keep their site), it is everywhere.
    later = settings.model_copy(update={"out_dir": tmp_path / "out"})
    shutil.copytree(settings.out_dir, later.out_dir)
    db.get_engine(later.db_url)
    publish(later, now=EMBARGO + dt.timedelta(minutes=1))
    assert (later.out_dir / "site" / "en" / "secret-summit.html").is_file()
    assert (later.out_dir / "outbox" / "secret-summit" / "es" / "press-release.md").is_file()
    assert "secret-summit" in (later.out_dir / "sitemap.xml").read_text()
    for name in ("en", "es", "all"):
        assert any(":secret-summit/" in e.id for e in parsed(later, name, "atom").entries)


def test_a_release_under_embargo_again_is_withdrawn_with_its_image(site, tmp_path):
    settings, _, events = site
    [(_, event)] = [(p, e) for p, e in events if e.image]
    later = settings.model_copy(update={"out_dir": tmp_path / "out"})  # a copy: the other tests keep their site
    shutil.copytree(settings.out_dir, later.out_dir)
    with db.session_scope(later.db_url) as session:  # its publish_at moved past NOW
        session.get(store.Release, event.slug).publish_at = EMBARGO
    report = publish(later, now=NOW)
    assert report.withdrawn == [event.slug]
    assert not list(later.out_dir.rglob(f"*{event.slug}*"))  # pages, copied image, outbound folder
    others = {e.slug for _, e in events} - {event.slug}
    for name in FEEDS:
        for kind in ("atom", "rss"):
            slugs = {entry.id.split(":")[-1].split("/")[0] for entry in parsed(later, name, kind).entries}
            assert slugs == others, (name, kind)
    assert event.slug not in (later.out_dir / "sitemap.xml").read_text()


def test_an_edited_release_keeps_its_id_and_moves_updated(tmp_path):
    """`published` is when the first text was approved (here: by prepare, the source language's
    text approves itself), `updated` when the corrected one was."""
    settings = Settings(out_dir=tmp_path / "out")
    record = {"id": "forum", "title": "Forum on water", "date": "2021-06-11", "summary": "First text.", "languages": []}
    before_first = dt.datetime.now(UTC)
    pipeline.prepare([(None, validate_record(record))], settings)
    after_first = dt.datetime.now(UTC)
    publish(settings, now=NOW)
    pipeline.prepare([(None, validate_record({**record, "summary": "Corrected text."}))], settings)
    after_second = dt.datetime.now(UTC)
    publish(settings, now=NOW + dt.timedelta(days=2))
    for kind in ("atom", "rss"):
        [entry] = parsed(settings, "en", kind).entries
        assert entry.id == f"tag:{settings.tag_authority}:forum/en"
        assert "Corrected text." in entry.content[0].value
        published = dt.datetime(*entry.published_parsed[:6], tzinfo=UTC)
        assert before_first.replace(microsecond=0) <= published <= after_first
        if kind == "atom":  # to the microsecond: both may fall in one second
            published, updated = dt.datetime.fromisoformat(entry.published), dt.datetime.fromisoformat(entry.updated)
            assert before_first <= published <= after_first <= updated <= after_second


def test_feeds_hold_at_most_feed_limit_entries_newest_first(tmp_path):
    settings = Settings(out_dir=tmp_path / "out", feed_limit=3)
    for day in range(1, 6):
        record = {"id": f"event-{day}", "title": f"Event {day}", "date": f"2021-06-0{day}", "summary": "Text.",
                  "languages": []}
        pipeline.prepare([(None, validate_record(record))], settings)
        publish(settings, now=NOW + dt.timedelta(hours=day))
    for name in ("en", "all"):
        for kind in ("atom", "rss"):
            titles = [e.title for e in parsed(settings, name, kind).entries]
            assert titles == ["Event 5", "Event 4", "Event 3"]
    index = html.parse(str(settings.out_dir / "site" / "en" / "index.html")).getroot()
    assert len(index.xpath("//main//li//h2/a")) == 5  # the index keeps every release


def test_naive_publish_time_is_refused(settings):
    from pressflow.core.errors import PublishError

    with pytest.raises(PublishError, match="no time zone"):
        publish(settings, now=dt.datetime(2030, 1, 1))


# --- newsboat -------------------------------------------------------------------------------

NEWSBOAT = shutil.which("newsboat")


def skip_unless_ci(reason: str) -> None:
    """Skip with `reason` on a developer's machine, but fail under CI (the CI variable set, as
    CI services do): CI installs everything these tests need, so a skip there would only hide
    a check that could have run."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false"):
        pytest.fail(f"{reason}; CI must run this test, not skip it")
    pytest.skip(reason)


@pytest.fixture
def newsboat() -> str:
    if NEWSBOAT is None:
        skip_unless_ci("newsboat is not installed (apt-get install -y newsboat)")
    return NEWSBOAT


@pytest.fixture
def loopback(site):
    """The output folder served over HTTP on 127.0.0.1, as a subscriber's reader would fetch it."""
    settings = site[0]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(settings.out_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def newsboat_items(newsboat: str, urls: list[str], work: Path) -> list[tuple[str, str, str]]:
    """Let newsboat fetch `urls` and return (feed url, guid, title) from its own cache."""
    work.mkdir()
    (work / "urls").write_text("\n".join(urls) + "\n")
    (work / "config").write_text("")
    cache = work / "cache.db"
    env = {**os.environ, "HOME": str(work)}
    done = subprocess.run([newsboat, "-u", str(work / "urls"), "-C", str(work / "config"), "-c", str(cache),
                           "-x", "reload", "print-unread"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "unread articles" in done.stdout
    with sqlite3.connect(cache) as db:
        return db.execute("SELECT feedurl, guid, title FROM rss_item").fetchall()


def test_newsboat_reads_every_language_feed(site, loopback, tmp_path, newsboat):
    settings = site[0]
    urls = [f"{loopback}/feeds/{lang}/atom.xml" for lang in ("en", "es")]
    urls += [f"file://{feed_path(settings, 'zh', 'rss')}"]
    items = newsboat_items(newsboat, urls, tmp_path / "nb")
    for url, (name, kind) in zip(urls, [("en", "atom"), ("es", "atom"), ("zh", "rss")]):
        expected = {(e.id, " ".join(e.title.split())) for e in parsed(settings, name, kind).entries}
        assert {(guid, " ".join(title.split())) for feed, guid, title in items if feed == url} == expected


@pytest.mark.parametrize("kind", ["atom", "rss"])
def test_newsboat_reads_the_all_languages_feed(site, loopback, tmp_path, kind, newsboat):
    settings = site[0]
    url = f"{loopback}/feeds/all/{kind}.xml"
    items = newsboat_items(newsboat, [url], tmp_path / "nb")
    expected = {e.id for e in parsed(settings, "all", kind).entries}
    assert sorted(guid for _, guid, _ in items) == sorted(expected)
    english_titles = {" ".join(e.title.split()) for e in parsed(settings, "en", "atom").entries}
    assert english_titles <= {" ".join(title.split()) for _, _, title in items}
