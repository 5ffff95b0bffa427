"""Incremental publishing: a run renders and writes what changed, known from the store.

English-only releases (the source language, approved as prepared) keep these fast: no model.
Files are compared by content and modification time; feeds and sitemaps are read back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
from pathlib import Path

import feedparser
import pytest
from lxml import etree, html
from sqlalchemy import select

from pressflow.core import db
from pressflow.drafts import store
from pressflow.prepare import pipeline
from pressflow.publish import ledger
from pressflow.core.config import Settings
from pressflow.core.errors import PublishError
from pressflow.publish import publish
from pressflow.publish.sitemap import Sitemap
from pressflow.records import validate_record


@pytest.fixture(autouse=True)
def _source_drafts_approved_as_prepared(monkeypatch):
    """What is under test here is publishing, not review (tests/test_gate.py has the gate's
    tests): source drafts are approved as they are prepared, the setting an office may choose."""
    monkeypatch.setenv("PRESSFLOW_AUTO_APPROVE_SOURCE", "1")


T0 = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def record(i: int, **extra) -> dict:
    return {"id": f"release-{i:03d}", "title": f"Forum {i} on water", "date": "2021-09-01",
            "summary": f"Delegates met for session {i}.", "languages": [], **extra}


def prepare(settings: Settings, numbers, **extra) -> None:
    report = pipeline.prepare([(None, validate_record(record(i, **extra))) for i in numbers], settings)
    assert not report.failed


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def mtimes(out: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and "state" not in p.relative_to(out).parts}


def links(page: Path) -> list[str]:
    return [a for a in html.parse(str(page)).getroot().xpath("//main//a/@href") if not a.startswith("index")]


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, tmp_path) -> Settings:
    """The bookkeeping is SQL written in batches: each test runs on both stores."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return Settings(out_dir=tmp_path / "out", database_url=url)


def test_index_pages_keep_their_releases_and_a_new_release_rewrites_only_what_lists_it(settings):
    out = settings.out_dir
    for i in range(45):  # one a minute: publication order is release order
        prepare(settings, [i])
        publish(settings, now=at(i))
    site = out / "site" / "en"
    assert links(site / "index.html") == [f"release-{i:03d}.html" for i in range(44, 24, -1)]  # newest 20
    assert links(site / "index-2.html") == [f"release-{i:03d}.html" for i in range(19, -1, -1)]  # first 20 ever
    assert links(site / "index-3.html") == [f"release-{i:03d}.html" for i in range(39, 19, -1)]
    assert not (site / "index-4.html").exists()  # 5 more: on the front page only, until there are 20
    front = html.parse(str(site / "index.html")).getroot()
    assert "index-3.html" in front.xpath("//a/@href")  # older releases, one click away

    before = mtimes(out)
    prepare(settings, [45])
    report = publish(settings, now=at(45))
    assert report.releases == {"release-045": ["en"]}
    changed = {p.relative_to(out).as_posix() for p, m in mtimes(out).items() if before.get(p) != m}
    assert changed == {"site/en/index.html", "site/en/release-045.html", "feeds/en/atom.xml", "feeds/en/rss.xml",
                       "feeds/all/atom.xml", "feeds/all/rss.xml", "feeds/en/feed.json", "feeds/all/feed.json",
                       "sitemap.xml", "outbox/release-045/manifest.json",
                       *(f"outbox/release-045/en/{f}" for f in ("press-release.md", "press-release.html",
                                                               "press-release.txt", "posts/x.txt", "posts/mastodon.txt",
                                                               "posts/bluesky.txt", "posts/linkedin.txt"))}
    entries = feedparser.parse(str(out / "feeds" / "en" / "atom.xml")).entries
    assert entries[0].id.endswith(":release-045/en") and len(entries) == 46

    # An edit of an old release rewrites its page, the archive page and feeds listing it, nothing else.
    prepare(settings, [3], title="Forum 3 on water, corrected")
    before = mtimes(out)
    publish(settings, now=at(50))
    changed = {p.relative_to(out).as_posix() for p, m in mtimes(out).items() if before.get(p) != m}
    assert "site/en/index-2.html" in changed and "site/en/index-3.html" not in changed
    assert "site/en/release-004.html" not in changed and "site/en/release-003.html" in changed
    assert "Forum 3 on water, corrected" in (site / "index-2.html").read_text()



def test_an_edit_moves_the_entry_and_its_sitemap_lines_and_nothing_else(settings):
    from pressflow.drafts import service

    def feed_entries() -> dict:
        entries = {e.id: e for e in feedparser.parse(str(settings.out_dir / "feeds" / "en" / "atom.xml")).entries}
        return {i: entries[f"tag:{settings.tag_authority}:release-00{i}/en"] for i in (1, 2)}

    def lastmods() -> dict:
        return {u.findtext(f"{SM}loc").rsplit("/", 1)[1]: u.findtext(f"{SM}lastmod")
                for u in etree.parse(str(settings.out_dir / "sitemap.xml")).getroot().iter(f"{SM}url")}

    prepare(settings, [1, 2])
    publish(settings, now=at(0))
    before, sitemap_before = feed_entries(), lastmods()
    with db.session_scope(settings.db_url) as session:
        [draft] = store.list_drafts(session, slug="release-001", channel="release", status=store.PUBLISHED)
        draft_id, text = draft.id, draft.text
    service.edit(settings, draft_id, text.replace("Forum 1 on water", "Forum 1 on water and energy", 1), author="ana")
    service.decide(settings, {i: service.Seen() for i in [draft_id]}, store.APPROVED, reviewer="ana")
    assert publish(settings, now=at(30)).releases == {"release-001": ["en"]}
    after, sitemap_after = feed_entries(), lastmods()
    assert after[1].title == "Forum 1 on water and energy"
    assert after[1].published == before[1].published and after[1].updated > before[1].updated
    assert (after[2].published, after[2].updated) == (before[2].published, before[2].updated)
    assert sitemap_after["release-001.html"] > sitemap_before["release-001.html"]
    assert sitemap_after["release-002.html"] == sitemap_before["release-002.html"]
    with db.session_scope(settings.db_url) as session:
        kept = list(session.scalars(select(ledger.PublishedRelease)))
        assert ledger.sitemap_parts(session) == {1: (2, sum(len(r.sitemap_xml) for r in kept))}

def test_a_template_change_republishes_everything_once(settings, tmp_path):
    import shutil
    from conftest import ROOT

    prepare(settings, range(3))
    publish(settings, now=at(0))
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    page = templates / "page.html.j2"
    page.write_text(page.read_text().replace("{% block body %}", "{% block body %}<p>New look</p>", 1))
    restyled = settings.model_copy(update={"templates_dir": templates})
    report = publish(restyled, now=at(1))
    assert sorted(report.releases) == [f"release-{i:03d}" for i in range(3)]
    assert all("New look" in p.read_text() for p in (settings.out_dir / "site" / "en").glob("release-*.html"))
    assert publish(restyled, now=at(2)).releases == {}  # once
    assert publish(settings.model_copy(update={"site_url": "https://press.example.org"}), now=at(3)).releases
    assert "https://press.example.org/site/en/release-000.html" in (settings.out_dir / "sitemap.xml").read_text()


def test_the_sitemap_splits_into_parts_and_a_new_release_rewrites_the_last(settings, monkeypatch):
    monkeypatch.setattr(Sitemap, "PART_URLS", 5)
    out = settings.out_dir
    prepare(settings, range(3))
    publish(settings, now=at(0))
    root = etree.parse(str(out / "sitemap.xml")).getroot()
    assert root.tag == f"{SM}urlset" and len(root) == 5  # 3 pages, the index and subscribe pages: one file still

    prepare(settings, range(3, 9))
    publish(settings, now=at(1))
    root = etree.parse(str(out / "sitemap.xml")).getroot()
    assert root.tag == f"{SM}sitemapindex"
    parts = [loc.text.removeprefix(settings.site_url + "/") for loc in root.iter(f"{SM}loc")]
    assert parts == [f"sitemaps/sitemap-{n}.xml" for n in range(3)]  # 0: the index pages; then 5, 4 releases
    locs = []
    for part in parts:
        urls = etree.parse(str(out / part)).getroot().findall(f"{SM}url")
        assert len(urls) <= 5
        locs += [u.findtext(f"{SM}loc") for u in urls]
    assert sorted(locs) == sorted([f"{settings.site_url}/site/en/release-{i:03d}.html" for i in range(9)]
                                  + [f"{settings.site_url}/site/en/index.html",
                                     f"{settings.site_url}/site/en/subscribe.html"])

    before = mtimes(out)
    prepare(settings, [9])
    publish(settings, now=at(2))
    changed = {p.relative_to(out).as_posix() for p, m in mtimes(out).items() if before.get(p) != m}
    assert {c for c in changed if "sitemap" in c} == {"sitemap.xml", "sitemaps/sitemap-0.xml", "sitemaps/sitemap-2.xml"}


def test_a_release_under_embargo_again_leaves_the_index_pages_and_later_ones_move_up(settings):
    for i in range(41):  # publication order = release order
        prepare(settings, [i])
        publish(settings, now=at(i))
    site = settings.out_dir / "site" / "en"
    assert (site / "index-3.html").exists()
    with db.session_scope(settings.db_url) as session:
        session.get(store.Release, "release-005").publish_at = at(1000)
    report = publish(settings, now=at(100))
    assert report.withdrawn == ["release-005"]
    assert "release-005.html" not in links(site / "index-2.html")
    assert links(site / "index-2.html")[0] == "release-020.html"  # moved up from the next page
    assert links(site / "index-3.html") == [f"release-{i:03d}.html" for i in range(40, 20, -1)]
    with db.session_scope(settings.db_url) as session:
        session.get(store.Release, "release-006").publish_at = at(1000)
    publish(settings, now=at(101))
    assert not (site / "index-3.html").exists()  # 39 releases: one full archive page
    assert "index-3.html" not in html.parse(str(site / "index.html")).getroot().xpath("//a/@href")


# --- a full disk --------------------------------------------------------------------------------


def _small_disk(path: Path, size: str) -> bool:
    path.mkdir(parents=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def tree_digest(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in out.rglob("*") if p.is_file() and "state" not in p.relative_to(out).parts}


def test_a_full_disk_names_the_file_changes_nothing_published_and_the_next_run_completes(tmp_path):
    disk = tmp_path / "disk"
    if not _small_disk(disk, "12m"):
        if os.environ.get("CI"):
            pytest.fail("CI runs as root and must be able to mount a small tmpfs for this test")
        pytest.skip("needs root to mount a small tmpfs (a real full disk); CI runs it")
    try:
        settings = Settings(out_dir=disk / "out", database_url=f"sqlite:///{tmp_path / 'store.db'}")
        prepare(settings, range(20))
        publish(settings, now=at(0))
        before = tree_digest(settings.out_dir)
        ballast = disk / "ballast"
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        ballast.write_bytes(b"\0" * max(0, free - 60_000))  # room for a few files, not a run's worth
        prepare(settings, range(20), summary="Every release edited: " + "long text " * 200)
        with pytest.raises(PublishError, match=r"could not write (site|outbox|feeds)/\S+: No space left on device"):
            publish(settings, now=at(1))
        assert tree_digest(settings.out_dir) == before  # the published set as it was
        assert not (settings.out_dir / "state" / "staging").exists() or not any((settings.out_dir / "state" / "staging").iterdir())
        ballast.unlink()
        report = publish(settings, now=at(2))
        assert len(report.releases) == 20
        assert "long text" in (settings.out_dir / "site" / "en" / "release-007.html").read_text()
        entries = feedparser.parse(str(settings.out_dir / "feeds" / "en" / "atom.xml")).entries
        assert len(entries) == 20 and all("long text" in e.summary for e in entries)
    finally:
        db.get_engine(f"sqlite:///{tmp_path / 'store.db'}").dispose()
        subprocess.run(["umount", str(disk)], check=False)
