"""Tests of publishing: approved drafts to feeds, pages and outbound files, read back for real.

Feeds are parsed with feedparser (a client nobody here wrote); files are compared by content
and modification time; manifests are checked against the files on disk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import feedparser
import pytest
from lxml import html

from pressflow.core import db
from pressflow.drafts import service, store
from pressflow.prepare import pipeline
from pressflow.publish import ledger
from pressflow.core.config import Settings
from pressflow.core.errors import PublishError
from pressflow.core.files import inside
from pressflow.publish import publish
from pressflow.records import Event
from pressflow.render import RELEASE
from pressflow.render.document import load_document, release_markdown

NOW = dt.datetime(2021, 9, 13, 8, 0, tzinfo=dt.timezone.utc)
LATER = NOW + dt.timedelta(hours=12)  # still before the embargo lifts
EMBARGO = dt.datetime(2021, 9, 14, 0, 0, tzinfo=dt.timezone.utc)
HOSTILE_TITLE = "Forum on <script>alert('x')</script> & water"
REMOTE_IMAGE = {"url": "https://media.example.org/2021/aral-sea.jpg?w=1200", "alt": "The Aral Sea seen from orbit"}
RECORDS = [
    {"id": "water-forum", "title": "Water forum opens in Tashkent", "date": "2021-09-12",
     "summary": "Scientists met to restore the Aral Sea.", "languages": ["es", "zh", "pt"],
     "tags": ["water"], "image": REMOTE_IMAGE},
    {"id": "hostile-title", "title": HOSTILE_TITLE, "date": "2021-09-10",
     "summary": "A title that looks like markup stays text.", "languages": ["es"]},
    {"id": "embargoed-summit", "title": "Summit under embargo", "date": "2021-09-13",
     "summary": "Not before the fourteenth.", "languages": ["es"], "publish_at": EMBARGO.isoformat()},
]
PUBLISHED_NOW = {"water-forum": ["en", "es", "zh"], "hostile-title": ["en", "es"]}
# Random-weight models never stop on their own; short outputs keep the module set-up quick.
SHORT_OUTPUT = "24"


def entries_by_id(path: Path) -> dict[str, feedparser.FeedParserDict]:
    parsed = feedparser.parse(path.read_bytes())
    assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
    return {entry.id: entry for entry in parsed.entries}


def output_files(out: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "state" not in p.relative_to(out).parts}


@pytest.fixture(scope="module")
def approved_once(argos_models, tmp_path_factory) -> Path:
    """Three releases prepared and every draft approved; nothing published yet."""
    out = tmp_path_factory.mktemp("approved") / "out"
    settings = Settings(out_dir=out)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", SHORT_OUTPUT)
        report = pipeline.prepare([(None, Event.model_validate(r)) for r in RECORDS], settings)
    assert report.skipped["water-forum"].keys() == {"pt"}
    assert not report.failed
    service.approve_all(settings, reviewer="ana")
    db.get_engine(settings.db_url).dispose()  # fold SQLite's WAL into the file before copies
    return out


@pytest.fixture
def approved(approved_once, tmp_path) -> Settings:
    out = tmp_path / "out"
    shutil.copytree(approved_once, out)
    return Settings(out_dir=out)


@pytest.fixture
def published(approved) -> Settings:
    report = publish(approved, now=NOW)
    assert report.releases == PUBLISHED_NOW
    assert report.embargoed == ["embargoed-summit"]
    return approved


# --- feeds ---------------------------------------------------------------------------------


def test_every_feed_parses_with_one_entry_per_release_and_language(published):
    feeds = sorted((published.out_dir / "feeds").glob("*/*.xml"))
    assert {p.parent.name for p in feeds} >= {"en", "es", "zh"}
    for lang in ("en", "es", "zh"):
        expected = {f"tag:{published.tag_authority}:{slug}/{lang}" for slug, langs in PUBLISHED_NOW.items()
                    if lang in langs}
        for kind in ("atom", "rss"):
            path = published.out_dir / "feeds" / lang / f"{kind}.xml"
            assert set(entries_by_id(path)) == expected, path


def test_feeds_declare_their_language(published):
    for lang in ("en", "es", "zh"):
        for kind in ("atom", "rss"):
            parsed = feedparser.parse((published.out_dir / "feeds" / lang / f"{kind}.xml").read_bytes())
            assert parsed.feed.language == lang, (lang, kind)


def test_entry_links_point_at_the_pages(published):
    for lang in ("en", "es", "zh"):
        for entry_id, entry in entries_by_id(published.out_dir / "feeds" / lang / "atom.xml").items():
            slug = entry_id.rsplit(":", 1)[1].split("/")[0]
            assert entry.link == f"{published.site_url}/site/{lang}/{slug}.html"
            assert (published.out_dir / "site" / lang / f"{slug}.html").is_file()


def test_entries_carry_the_approved_text(published):
    entries = entries_by_id(published.out_dir / "feeds" / "en" / "atom.xml")
    entry = entries[f"tag:{published.tag_authority}:water-forum/en"]
    assert entry.title == "Water forum opens in Tashkent"
    assert "Scientists met to restore the Aral Sea." in entry.summary
    assert entry.published_parsed[:5] == NOW.timetuple()[:5]


def test_entry_ids_are_stable_and_a_second_publish_writes_nothing(published):
    feeds = [published.out_dir / "feeds" / lang / f"{kind}.xml" for lang in ("en", "es", "zh")
             for kind in ("atom", "rss")]
    ids = {path: set(entries_by_id(path)) for path in feeds}
    files = output_files(published.out_dir)
    report = publish(published, now=LATER)
    # Nothing changed in the store: nothing is rendered, nor even compared.
    assert report.files_written == report.files_unchanged == 0 and report.releases == {}
    assert output_files(published.out_dir) == files  # same files, same mtimes
    assert {path: set(entries_by_id(path)) for path in feeds} == ids


def test_an_edit_updates_the_entry_in_place(published):
    feed = published.out_dir / "feeds" / "es" / "atom.xml"
    before = entries_by_id(feed)
    entry_id = f"tag:{published.tag_authority}:water-forum/es"
    with db.session_scope(published.db_url) as session:
        [draft] = store.list_drafts(session, lang="es", channel=RELEASE, slug="water-forum",
                                    status=store.PUBLISHED)
        draft_id, text = draft.id, draft.text
    edited = text.replace(text.splitlines()[0], "# Foro del agua en Taskent", 1)
    service.edit(published, draft_id, edited, author="ana")
    service.decide(published, {i: service.Seen() for i in [draft_id]}, store.APPROVED, reviewer="ana")
    report = publish(published, now=LATER)
    assert report.files_written > 0
    after = entries_by_id(feed)
    assert set(after) == set(before)
    assert after[entry_id].title == "Foro del agua en Taskent"
    assert after[entry_id].published_parsed == before[entry_id].published_parsed
    assert after[entry_id].updated_parsed > before[entry_id].updated_parsed
    assert after[entry_id].updated_parsed[:5] == LATER.timetuple()[:5]
    page = (published.out_dir / "site" / "es" / "water-forum.html").read_text()
    assert "Foro del agua en Taskent" in page
    # the outbound Markdown is the approved revision's document (less the image description the
    # page reads) under its release line
    with db.session_scope(published.db_url) as session:
        approved = load_document(store.document_of(session, draft_id, 2))
    assert approved.title == "Foro del agua en Taskent"
    outbound = (published.out_dir / "outbox" / "water-forum" / "es" / "press-release.md").read_text()
    assert outbound.startswith("**PARA DIFUSIÓN INMEDIATA**")
    assert release_markdown(approved, image_lines=False).strip() in outbound


# --- pages ---------------------------------------------------------------------------------


def test_page_html_escapes_the_title(published):
    page = (published.out_dir / "site" / "en" / "hostile-title.html").read_text()
    # the structured data is the one script element, its JSON escaping every '<', '>' and '&'
    start, end = page.index('<script type="application/ld+json">'), page.index("</script>") + len("</script>")
    assert json.loads(page[start:end].split(">", 1)[1].rsplit("<", 1)[0])["headline"] == HOSTILE_TITLE
    page = page[:start] + page[end:]
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    assert "<title>Forum on &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; water — ANSO</title>" in page
    entry = entries_by_id(published.out_dir / "feeds" / "en" / "atom.xml")[
        f"tag:{published.tag_authority}:hostile-title/en"]
    assert entry.title == HOSTILE_TITLE  # escaped in XML, the same text to a reader


def test_a_remote_image_is_on_every_page_but_no_enclosure(published):
    out = published.out_dir
    for lang in ("en", "es", "zh"):
        page = html.parse(str(out / "site" / lang / "water-forum.html")).getroot()
        meta = {m.get("property") or m.get("name"): m.get("content") for m in page.xpath("//head/meta")}
        assert meta["og:image"] == REMOTE_IMAGE["url"]
        assert meta["og:image:type"] == "image/jpeg"  # from the name, the query string aside
        assert meta["twitter:card"] == "summary_large_image"
        [image] = page.xpath("//article//img")
        # the alt text is translated with the release: the record's own in English only
        assert image.get("src") == REMOTE_IMAGE["url"] and image.get("alt") == meta["og:image:alt"]
        assert (meta["og:image:alt"] == REMOTE_IMAGE["alt"]) == (lang == "en")
    # Its size is unknown without fetching it, and RSS requires one: no enclosure in any feed.
    for name in ("en", "es", "zh", "all"):
        for kind in ("atom", "rss"):
            path = out / "feeds" / name / f"{kind}.xml"
            entries = [e for i, e in entries_by_id(path).items() if ":water-forum/" in i]
            assert entries and all(e.enclosures == [] for e in entries), path
            assert b"aral-sea.jpg" not in path.read_bytes()
    assert not (out / "site" / "media").exists()  # nothing copied


def test_pages_declare_language_and_translations(published):
    page = (published.out_dir / "site" / "zh" / "water-forum.html").read_text()
    assert '<html lang="zh" dir="ltr">' in page
    for lang in ("en", "es", "zh"):
        assert f'hreflang="{lang}" href="{published.site_url}/site/{lang}/water-forum.html"' in page


def test_outbox_layout(published):
    outbox = published.out_dir / "outbox" / "water-forum"
    for lang in ("en", "es", "zh"):
        for name in ("press-release.md", "press-release.html", "press-release.txt",
                     "posts/x.txt", "posts/mastodon.txt", "posts/bluesky.txt", "posts/linkedin.txt"):
            assert (outbox / lang / name).is_file(), (lang, name)
    assert not (outbox / "pt").exists()


# --- manifests -----------------------------------------------------------------------------


def test_manifest_lists_every_file_with_its_hash(published):
    out = published.out_dir
    for slug, langs in PUBLISHED_NOW.items():
        manifest = json.loads((out / "outbox" / slug / "manifest.json").read_text())
        assert manifest["release"] == slug
        assert manifest["languages"] == sorted(langs)
        listed = {entry["path"]: entry for entry in manifest["files"]}
        on_disk = {str(p.relative_to(out)) for p in (out / "outbox" / slug).rglob("*")
                   if p.is_file() and p.name != "manifest.json"}
        on_disk |= {f"site/{lang}/{slug}.html" for lang in langs}
        on_disk |= {str(p.relative_to(out)) for p in (out / "site" / "media").glob(f"{slug}-*")}
        assert set(listed) == on_disk
        for path, entry in listed.items():
            data = (out / path).read_bytes()
            assert entry["sha256"] == hashlib.sha256(data).hexdigest(), path
            assert entry["bytes"] == len(data)
        # For delivery: each language's canonical page
        assert manifest["pages"] == {lang: f"{published.site_url}/site/{lang}/{slug}.html" for lang in langs}


def test_manifest_gives_the_image_with_each_languages_alt_text(published):
    out = published.out_dir
    manifest = json.loads((out / "outbox" / "water-forum" / "manifest.json").read_text())
    image = manifest["image"]
    assert {k: image[k] for k in ("path", "url", "type")} == {"path": None, "url": REMOTE_IMAGE["url"],
                                                              "type": "image/jpeg"}  # a web image: not copied
    assert set(image["alt"]) == set(PUBLISHED_NOW["water-forum"]) and image["alt"]["en"] == REMOTE_IMAGE["alt"]
    for lang, alt in image["alt"].items():  # the alt text the language's page shows
        page = html.fromstring((out / "site" / lang / "water-forum.html").read_bytes())
        assert page.xpath("//article//img")[0].get("alt") == alt
    assert json.loads((out / "outbox" / "hostile-title" / "manifest.json").read_text())["image"] is None


def test_manifest_names_skipped_languages_with_reasons(published):
    manifest = json.loads((published.out_dir / "outbox" / "water-forum" / "manifest.json").read_text())
    skipped = {item["language"]: item["reason"] for item in manifest["skipped_languages"]}
    assert set(skipped) == {"pt"}
    assert "no translation model installed for en->pt" in skipped["pt"]
    other = json.loads((published.out_dir / "outbox" / "hostile-title" / "manifest.json").read_text())
    assert other["skipped_languages"] == []


# --- embargo -------------------------------------------------------------------------------


def test_embargo_keeps_a_release_out_of_everything(published):
    out = published.out_dir
    assert not list(out.rglob("*embargoed-summit*"))
    for path in (out / "feeds").rglob("*.xml"):
        assert "embargoed-summit" not in path.read_text()
        assert "Summit under embargo" not in path.read_text()
    for path in (out / "site").rglob("*.html"):
        assert "embargoed-summit" not in path.read_text()
    with db.session_scope(published.db_url) as session:
        statuses = {d.status for d in store.list_drafts(session, slug="embargoed-summit")}
    assert statuses == {store.APPROVED}  # still waiting, not published


def test_embargo_lifts_at_publish_at(published):
    report = publish(published, now=EMBARGO + dt.timedelta(minutes=5))
    assert report.embargoed == []
    assert report.releases["embargoed-summit"] == ["en", "es"]
    entry = entries_by_id(published.out_dir / "feeds" / "es" / "atom.xml")[
        f"tag:{published.tag_authority}:embargoed-summit/es"]
    assert entry.published_parsed[:5] == (EMBARGO + dt.timedelta(minutes=5)).timetuple()[:5]
    assert (published.out_dir / "site" / "es" / "embargoed-summit.html").is_file()


def test_a_release_moved_back_under_embargo_is_withdrawn_until_then(published):
    out = published.out_dir
    new_embargo = LATER + dt.timedelta(days=30)
    with db.session_scope(published.db_url) as session:  # as prepare does with a record whose publish_at moved
        session.get(store.Release, "water-forum").publish_at = new_embargo
    report = publish(published, now=LATER)
    # Only what changed is published again: hostile-title did not.
    assert report.withdrawn == ["water-forum"] and report.releases == {}
    assert not list(out.rglob("*water-forum*"))  # pages, outbound folder, and no temporary folder left behind
    for path in output_files(out):
        assert b"water-forum" not in path.read_bytes() and b"Tashkent" not in path.read_bytes(), path
    for kind in ("atom", "rss"):  # it was the only release in Chinese: those feeds are now empty, not stale
        assert entries_by_id(out / "feeds" / "zh" / f"{kind}.xml") == {}
    with db.session_scope(published.db_url) as session:
        assert {d.status for d in store.list_drafts(session, slug="water-forum")} == {store.APPROVED}
        assert not session.query(ledger.Publication).filter_by(release_slug="water-forum").count()
    assert publish(published, now=LATER).withdrawn == []  # nothing left to withdraw

    lifted = new_embargo + dt.timedelta(minutes=1)
    assert publish(published, now=lifted).releases["water-forum"] == ["en", "es", "zh"]
    entry = entries_by_id(out / "feeds" / "zh" / "atom.xml")[f"tag:{published.tag_authority}:water-forum/zh"]
    assert entry.published_parsed[:5] == new_embargo.timetuple()[:5]  # published anew, at the time the embargo lifted
    assert (out / "outbox" / "water-forum" / "zh" / "press-release.md").is_file()


def test_a_folder_a_killed_publisher_was_removing_is_cleaned_up(published):
    leftover = published.out_dir / "state" / "trash" / "water-forum.0badc0de"
    (leftover / "es").mkdir(parents=True)
    (leftover / "es" / "press-release.md").write_text("half of a withdrawn release")
    publish(published, now=LATER)
    assert not leftover.exists()
    assert (published.out_dir / "outbox" / "water-forum" / "es" / "press-release.md").is_file()


# --- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("parts", [("../x",), ("..", "x"), ("a", "..", "..", "x"), ("/etc/passwd",),
                                   ("site", "../../x.html")])
def test_paths_cannot_escape_the_output_folder(tmp_path, parts):
    with pytest.raises(PublishError, match="outside the output folder"):
        inside(tmp_path, *parts)


def test_paths_inside_the_output_folder_are_fine(tmp_path):
    assert inside(tmp_path, "site", "es", "a.html") == tmp_path.resolve() / "site" / "es" / "a.html"
    assert inside(tmp_path, "a", "..", "b") == tmp_path.resolve() / "b"


def test_a_symlink_out_of_the_folder_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "site").symlink_to(tmp_path)
    with pytest.raises(PublishError):
        inside(tmp_path / "out", "site", "x.html")


def test_release_ids_cannot_be_paths():
    from pressflow.core.errors import RecordError
    from pressflow.records import validate_record

    for bad in ("../x", "a/b", "..", "x/../../y"):
        with pytest.raises(RecordError, match="'id'"):
            validate_record({**RECORDS[0], "id": bad})


def test_progress_listeners_hear_each_release_as_it_starts(approved, monkeypatch):
    from pressflow import publish as publishing

    monkeypatch.setattr(publishing, "_progress_listeners", [])
    heard, passed = [], []
    publishing.on_progress(heard.append)
    publish(approved, now=NOW, progress=passed.append)
    assert sorted(heard) == sorted(PUBLISHED_NOW) and heard == passed
