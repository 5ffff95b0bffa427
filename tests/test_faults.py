"""Faults: a publisher killed at any point, publishers racing, one language failing.

The crash and race tests publish 40 releases in English and Spanish (tiny test model) from a
separate process, SIGKILL it at many points, and check what a subscriber would see on disk.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import pytest
from lxml import etree, html

from pressflow.core import db
from pressflow.drafts import service, store
from pressflow.prepare import pipeline
from pressflow.publish import ledger
from pressflow.core.config import Settings
from pressflow.publish import publish
from pressflow.records import validate_record
from pressflow.render import RELEASE

from conftest import approve_all, decoding_capped


@pytest.fixture(autouse=True)
def _source_drafts_approved_as_prepared(monkeypatch):
    """What is under test here is publishing, not review (tests/test_gate.py has the gate's
    tests): source drafts are approved as they are prepared, the setting an office may choose."""
    monkeypatch.setenv("PRESSFLOW_AUTO_APPROVE_SOURCE", "1")

RELEASES = 40
LANGS = ("en", "es")
FEED_LIMIT = 100  # above 2 x RELEASES, so every entry is in every feed and "exactly once" is checkable
CHILD = """
import sys
from pathlib import Path
from pressflow.core.config import Settings
from pressflow.publish import publish

print("START", flush=True)
report = publish(Settings(out_dir=Path(sys.argv[1])), progress=lambda slug: print(slug, flush=True))
print("DONE", report.files_written, flush=True)
"""


def record(i: int, **extra) -> dict:
    return {"id": f"release-{i:03d}", "title": f"Forum {i} on water and energy", "date": f"2021-0{1 + i % 9}-{1 + i % 28:02d}",
            "summary": f"Delegates met for session {i} to discuss water, energy and climate.", "languages": ["es"],
            "tags": ["science"], "body": ["The forum agreed on joint projects.", "Results follow in spring."], **extra}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, argos_models) -> Path:
    """An output folder with 40 releases approved in English and Spanish, not yet published."""
    settings = Settings(out_dir=tmp_path_factory.mktemp("prepared") / "out")
    with decoding_capped():
        report = pipeline.prepare([(None, validate_record(record(i))) for i in range(RELEASES)], settings)
    assert not report.failed and not report.skipped
    approve_all(settings)
    db.get_engine(settings.db_url).dispose()  # checkpoint SQLite's WAL so a plain copy is complete
    return settings.out_dir


def fresh_copy(prepared: Path, tmp_path: Path, name: str = "out") -> Settings:
    out = tmp_path / name
    shutil.copytree(prepared, out)
    return Settings(out_dir=out, feed_limit=FEED_LIMIT)


def child_env() -> dict[str, str]:
    return {**os.environ, "PRESSFLOW_FEED_LIMIT": str(FEED_LIMIT)}


def start_publisher(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(out)], stdout=subprocess.PIPE, text=True,
                            env=child_env())


def kill_after(out: Path, lines: int, extra_delay: float) -> bool:
    """Start a publisher; once it has begun publishing and printed `lines` progress lines, wait
    `extra_delay` seconds more and SIGKILL it. Returns whether the kill landed mid-publish: the
    publisher had started, printed every line awaited, and died of the signal before finishing."""
    child = start_publisher(out)
    started = child.stdout.readline().startswith("START")
    seen = 0
    while started and seen < lines:
        line = child.stdout.readline()
        if not line or line.startswith("DONE"):
            break
        seen += 1
    time.sleep(extra_delay)
    child.send_signal(signal.SIGKILL)
    killed = child.wait() == -signal.SIGKILL
    finished = "DONE" in child.stdout.read()  # it may have finished just before the signal
    child.stdout.close()
    return started and seen == lines and killed and not finished


def published(out: Path, pattern: str) -> list[Path]:
    """Files matching `pattern` in the output folder, but for the publisher's own `state/`
    (its staging folder holds what a killed run was writing, which nobody is served)."""
    return [path for path in out.rglob(pattern) if path.relative_to(out).parts[0] != "state"]


def assert_everything_parses(out: Path) -> None:
    """What a subscriber, crawler or outlet could fetch right now is whole and well-formed."""
    for path in (out / "feeds").rglob("*.xml") if (out / "feeds").exists() else []:
        feed = feedparser.parse(str(path))
        assert feed.bozo == 0, f"{path}: {feed.get('bozo_exception')}"
    if (out / "sitemap.xml").exists():
        etree.parse(str(out / "sitemap.xml"))  # strict: raises on a truncated file
    for path in published(out, "*.html"):
        text = path.read_text(encoding="utf-8")
        assert text.rstrip().endswith("</html>"), f"truncated page {path}"
        assert html.document_fromstring(text).find(".//title") is not None, path
    for path in published(out, "manifest.json"):
        json.loads(path.read_text(encoding="utf-8"))


def assert_every_entry_once(settings: Settings) -> None:
    out = settings.out_dir
    slugs = [f"release-{i:03d}" for i in range(RELEASES)]
    assert not list(out.rglob(".*.tmp")), "temporary files left behind"
    for name in (*LANGS, "all"):
        for kind in ("atom", "rss"):
            entries = feedparser.parse(str(out / "feeds" / name / f"{kind}.xml")).entries
            ids = [e.id for e in entries]
            langs = LANGS if name == "all" else (name,)
            expected = {f"tag:{settings.tag_authority}:{slug}/{lang}" for slug in slugs for lang in langs}
            assert len(ids) == len(set(ids)) and set(ids) == expected, (name, kind)
    for lang in LANGS:  # the front page has the newest; archive pages have each release once
        def releases_on(page: Path) -> list[str]:
            links = html.parse(str(page)).getroot().xpath("//main//a/@href")
            return [link for link in links if not link.startswith("index")]
        archive = [link for page in sorted((out / "site" / lang).glob("index-*.html")) for link in releases_on(page)]
        assert len(archive) == len(set(archive)) == RELEASES // 20 * 20
        assert set(archive) | set(releases_on(out / "site" / lang / "index.html")) == {f"{slug}.html" for slug in slugs}
    locs = etree.parse(str(out / "sitemap.xml")).getroot().findall("{*}url/{*}loc")
    assert len(locs) == len({loc.text for loc in locs}) == RELEASES * len(LANGS) + 2 * len(LANGS)  # and each language's index and subscribe page
    with db.session_scope(settings.db_url) as session:
        assert session.query(ledger.Publication).count() == RELEASES * len(LANGS)
        assert not store.list_drafts(session, status=store.APPROVED)  # every approved draft is now published


# Kill points: (progress lines read, extra seconds). 0 lines = as publishing begins (taking the
# lock, reading the store); RELEASES lines = the last release's pages, then the feeds, sitemap
# and database commit, which take ~0.3 s here (0.2 and 0.5 s, the earlier delays, often came
# after the publisher had finished).
KILL_POINTS = [(0, 0.0), (2, 0.01), (15, 0.0), (33, 0.02), (RELEASES, 0.0), (RELEASES, 0.05), (RELEASES, 0.12)]
ATTEMPTS = 3  # per kill point; each retry halves the extra seconds, for a machine faster than this one


def crash_and_rerun(settings: Settings, lines: int, delay: float, twice: bool) -> bool:
    """Kill a publisher at one point (`twice`: and a second one halfway to it, on top), check
    what is on disk after each kill and after a complete re-run. Returns whether every kill
    landed mid-publish."""
    landed = kill_after(settings.out_dir, lines, delay)
    assert_everything_parses(settings.out_dir)
    if twice:
        landed &= kill_after(settings.out_dir, lines // 2, delay)
        assert_everything_parses(settings.out_dir)
    publish(settings)
    assert_everything_parses(settings.out_dir)
    assert_every_entry_once(settings)
    db.get_engine(settings.db_url).dispose()
    return landed


@pytest.mark.slow
def test_publisher_killed_at_any_point_leaves_valid_files_and_a_rerun_completes(prepared, tmp_path):
    missed = []
    for number, (lines, delay) in enumerate(KILL_POINTS):
        for attempt in range(ATTEMPTS):
            settings = fresh_copy(prepared, tmp_path, f"out-{number}-{attempt}")
            if crash_and_rerun(settings, lines, delay / 2 ** attempt, twice=bool(number % 2)):
                break
        else:
            missed.append((lines, delay))
    # A kill after the publisher finished proves nothing: every point must have hit a publish.
    assert not missed, f"kill points that never landed mid-publish: {missed}"


@pytest.mark.slow
def test_concurrent_publishers_publish_every_entry_once(prepared, tmp_path):
    settings = fresh_copy(prepared, tmp_path)
    children = [start_publisher(settings.out_dir) for _ in range(4)]
    outputs = [child.communicate(timeout=300)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0, 0, 0], outputs
    written = sorted(int(out.strip().splitlines()[-1].split()[1]) for out in outputs)
    # The lock serialises them: the first writes the site, the others find nothing to change.
    assert written[:3] == [0, 0, 0] and written[3] > RELEASES * len(LANGS)
    assert_everything_parses(settings.out_dir)
    assert_every_entry_once(settings)


# --- one language failing ---------------------------------------------------------------------

BROKEN, FINE = "broken-release", "fine-release"


@pytest.fixture
def broken_templates(tmp_path) -> Path:
    """The real templates, except that the release text cannot render in Chinese for one release,
    and its page cannot render in Spanish (a staff edit gone wrong: an undefined variable)."""
    from conftest import ROOT

    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    release = templates / "release.md.j2"
    release.write_text(f'{{% if lang == "zh" and event.id == "{BROKEN}" %}}{{{{ no_such_variable }}}}{{% endif %}}\n'
                       + release.read_text())
    page = templates / "page.html.j2"
    page.write_text(page.read_text().replace(
        "{% block body %}", f'{{% block body %}}{{% if lang == "es" and "{BROKEN}" in url %}}{{{{ no_such_page_variable }}}}{{% endif %}}', 1))
    return templates


def test_a_failing_language_fails_only_that_release_and_is_reported(tmp_path, argos_models, broken_templates):
    settings = Settings(out_dir=tmp_path / "out", templates_dir=broken_templates)
    records = [record(1, id=BROKEN, languages=["es", "zh", "fr"]), record(2, id=FINE, languages=["es", "zh", "fr"])]
    with decoding_capped():
        prepared = pipeline.prepare([(None, validate_record(r)) for r in records], settings)
    assert list(prepared.failed) == [BROKEN] and list(prepared.failed[BROKEN]) == ["zh"]
    assert "no_such_variable" in prepared.failed[BROKEN]["zh"]
    assert set(prepared.skipped[FINE]) == {"fr"}  # no fr model: skipped, not failed
    approve_all(settings)

    report = publish(settings, now=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))

    assert report.releases == {BROKEN: ["en"], FINE: ["en", "es", "zh"]}
    assert set(report.failed[BROKEN]) == {"es", "zh"} and "no_such_page_variable" in report.failed[BROKEN]["es"]
    assert report.skipped[FINE] == {"fr": prepared.skipped[FINE]["fr"]}
    assert report.skipped[BROKEN] == {"fr": prepared.skipped[FINE]["fr"], "zh": prepared.failed[BROKEN]["zh"]}
    manifest = json.loads((settings.out_dir / "outbox" / BROKEN / "manifest.json").read_text())
    assert manifest["languages"] == ["en"]
    assert {f["language"] for f in manifest["failed_languages"]} == {"es", "zh"}
    assert {s["language"]: s["status"] for s in manifest["skipped_languages"]} == {
        "es": "failed", "zh": "failed", "fr": "skipped"}
    assert not (settings.out_dir / "site" / "es" / f"{BROKEN}.html").exists()
    assert not (settings.out_dir / "outbox" / BROKEN / "es").exists()
    # The English page does not point readers at the missing translations.
    page = html.parse(str(settings.out_dir / "site" / "en" / f"{BROKEN}.html")).getroot()
    assert not page.xpath("//link[@hreflang='es' or @hreflang='zh']")
    es_ids = {e.id for e in feedparser.parse(str(settings.out_dir / "feeds" / "es" / "atom.xml")).entries}
    assert es_ids == {f"tag:{settings.tag_authority}:{FINE}/es"}
    with db.session_scope(settings.db_url) as session:  # the failed language stays approved, unpublished
        statuses = {d.status for d in store.list_drafts(session, slug=BROKEN, lang="es")}
        assert statuses == {store.APPROVED}


def test_publish_flow_summary_names_failed_languages(tmp_path, argos_models, broken_templates, prefect_harness,
                                                     monkeypatch):
    from pressflow.flows.publish import publish_flow

    monkeypatch.setenv("PRESSFLOW_TEMPLATES", str(broken_templates))
    settings = Settings(out_dir=tmp_path / "out")
    with decoding_capped():
        pipeline.prepare([(None, validate_record(record(1, id=BROKEN)))], settings)
    approve_all(settings)
    summary = publish_flow(out_dir=str(settings.out_dir))
    assert summary.releases == {BROKEN: ["en"]}
    assert list(summary.failed[BROKEN]) == ["es"]
    assert summary.failed[BROKEN]["es"].startswith("rendering failed: template")


def test_a_language_published_before_that_fails_later_stays_as_published(tmp_path, argos_models, broken_templates):
    """Feeds and pages agree on the version a subscriber sees: the last one published."""
    good = Settings(out_dir=tmp_path / "out")
    broken = good.model_copy(update={"templates_dir": broken_templates})
    out, first, second, third = good.out_dir, *(dt.datetime(2030, 1, d, tzinfo=dt.timezone.utc) for d in (1, 2, 3))
    with decoding_capped():
        pipeline.prepare([(None, validate_record(record(1, id=BROKEN)))], good)
    approve_all(good)
    assert publish(good, now=first).releases == {BROKEN: ["en", "es"]}
    page = out / "site" / "es" / f"{BROKEN}.html"
    page_before, entry_id = page.read_bytes(), f"tag:{good.tag_authority}:{BROKEN}/es"
    [before] = [e for e in feedparser.parse(str(out / "feeds" / "es" / "atom.xml")).entries if e.id == entry_id]

    # A reviewer corrects the Spanish title, then a staff edit breaks the Spanish page template.
    with db.session_scope(good.db_url) as session:
        [draft] = store.list_drafts(session, slug=BROKEN, lang="es", channel=RELEASE)
        draft_id, text = draft.id, draft.text
    service.edit(good, draft_id, text.replace(text.splitlines()[0], "# Foro corregido", 1), author="ana")
    edited = dt.datetime.now(dt.timezone.utc)
    report = publish(broken, now=second)

    assert report.releases == {BROKEN: ["en"]} and report.kept == {BROKEN: ["es"]}
    assert "no_such_page_variable" in report.failed[BROKEN]["es"]
    assert report.failed[BROKEN]["es"].endswith(f"the version published {before.updated} stays")
    assert page.read_bytes() == page_before
    for name in ("es", "all"):
        for kind in ("atom", "rss"):
            [entry] = [e for e in feedparser.parse(str(out / "feeds" / name / f"{kind}.xml")).entries
                       if e.id == entry_id]
            assert entry.title == before.title != "Foro corregido"  # not the edit, which no page shows
            assert entry.published_parsed == before.published_parsed
    english = html.parse(str(out / "site" / "en" / f"{BROKEN}.html")).getroot()
    assert english.xpath("//head/link[@hreflang='es']/@href") == [f"{good.site_url}/site/es/{BROKEN}.html"]
    assert f"/site/es/{BROKEN}.html" in (out / "sitemap.xml").read_text()
    manifest = json.loads((out / "outbox" / BROKEN / "manifest.json").read_text())
    assert manifest["languages"] == ["en", "es"] and [f["language"] for f in manifest["failed_languages"]] == ["es"]
    assert f"site/es/{BROKEN}.html" in {f["path"] for f in manifest["files"]}
    with db.session_scope(good.db_url) as session:  # the edit waits for review
        drafts = store.list_drafts(session, slug=BROKEN, lang="es", channel=RELEASE)
        assert {d.status for d in drafts} == {store.PENDING}
    service.decide(good, {draft_id: service.Seen(2, store.PENDING)}, store.APPROVED, reviewer="bo")
    approved = dt.datetime.now(dt.timezone.utc)

    # Templates mended: the approved edit goes out, and only now does the entry's `updated` move,
    # to the time the edit was approved.
    report = publish(good, now=third)
    assert report.releases == {BROKEN: ["en", "es"]} and not report.kept and not report.failed
    [entry] = [e for e in feedparser.parse(str(out / "feeds" / "es" / "atom.xml")).entries if e.id == entry_id]
    assert entry.title == "Foro corregido" and entry.published_parsed == before.published_parsed
    updated, earlier = dt.datetime.fromisoformat(entry.updated), dt.datetime.fromisoformat(before.updated)
    assert edited <= updated <= approved and earlier < updated


POISON = "Kryptonite sentence that the engine chokes on."


def test_a_sentence_the_model_fails_on_fails_only_the_release_holding_it(tmp_path, argos_models, monkeypatch):
    """An engine error on one sentence (injected here: the model raises on any batch holding it)
    fails Spanish for the one release that holds it; the other release's Spanish, both releases'
    Chinese and the engine's other sentences go through, and the memory keeps what was done."""
    from pressflow.translate.engine import LoadedModel

    real = LoadedModel.translate

    def choking(self, sentences, **kwargs):
        if self.model.target == "es" and any("Kryptonite" in s for s in sentences):
            raise RuntimeError("engine choked")
        return real(self, sentences, **kwargs)

    monkeypatch.setattr(LoadedModel, "translate", choking)
    settings = Settings(out_dir=tmp_path / "out")
    records = [record(1, id=BROKEN, languages=["es", "zh"], body=["The forum agreed on joint projects.", POISON]),
               record(2, id=FINE, languages=["es", "zh"])]
    with decoding_capped():
        prepared = pipeline.prepare([(None, validate_record(r)) for r in records], settings)

    assert prepared.failed == {BROKEN: {"es": prepared.failed[BROKEN]["es"]}}
    assert "engine choked" in prepared.failed[BROKEN]["es"] and "Kryptonite" in prepared.failed[BROKEN]["es"]
    with db.session_scope(settings.db_url) as session:
        drafts = {(d.release_slug, d.lang) for d in store.list_drafts(session)}
        assert drafts == {(BROKEN, "en"), (BROKEN, "zh"), (FINE, "en"), (FINE, "es"), (FINE, "zh")}
        skips = store.skipped_languages(session, BROKEN, validate_record(records[0]).fingerprint())
        assert set(skips) == {"es"} and "engine choked" in skips["es"]

    monkeypatch.setattr(LoadedModel, "translate", real)  # the engine is fixed: a re-run completes the release
    with decoding_capped():
        again = pipeline.prepare([(None, validate_record(r)) for r in records], settings)
    assert not again.failed and again.releases[BROKEN].languages == ["en", "es"]
    assert again.stats.translated < prepared.stats.translated  # only what failed went to the model again


def test_an_engine_failing_on_everything_fails_the_language_without_bisecting_forever(tmp_path, argos_models,
                                                                                       monkeypatch):
    from pressflow.translate import stage
    from pressflow.translate.engine import LoadedModel

    real, calls = LoadedModel.translate, []

    def broken_for_spanish(self, sentences, **kwargs):
        if self.model.target == "es":
            calls.append(len(sentences))
            raise RuntimeError("engine broken")
        return real(self, sentences, **kwargs)

    monkeypatch.setattr(LoadedModel, "translate", broken_for_spanish)
    settings = Settings(out_dir=tmp_path / "out")
    records = [record(i, languages=["es", "zh"], body=[f"Point {j} of session {i}." for j in range(20)])
               for i in range(3)]
    with decoding_capped():
        prepared = pipeline.prepare([(None, validate_record(r)) for r in records], settings)
    assert {slug: set(langs) for slug, langs in prepared.failed.items()} == {r["id"]: {"es"} for r in records}
    assert all("engine broken" in langs["es"] for langs in prepared.failed.values())
    assert sum(n == 1 for n in calls) == stage.MAX_FAILED_SENTENCES + 1  # gave up after that many lone failures
    assert prepared.releases[records[0]["id"]].languages == ["en", "zh"]


@pytest.mark.parametrize("flush_each_up_to", [0, 10_000])
def test_staged_files_are_flushed_then_put_in_place_in_order(tmp_path, monkeypatch, flush_each_up_to):
    """Both ways of making staged files durable (an fsync each, one syncfs of the filesystem)
    put every file in place, the last version of a file written twice winning."""
    from pressflow.core import files

    monkeypatch.setattr(files, "FSYNC_EACH_UP_TO", flush_each_up_to)
    flushed = []
    monkeypatch.setattr(files, "sync_filesystem", lambda folder: flushed.append("syncfs"))
    real_fsync = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (flushed.append("fsync"), real_fsync(fd)))
    staging = files.Staging(tmp_path)
    targets = [tmp_path / "site" / "en" / f"{i}.html" for i in range(5)]
    for i, target in enumerate(targets):
        assert staging.write(target, f"<p>{i}</p>")
    staging.write(targets[0], "<p>again</p>")
    staging.commit()
    assert [t.read_text() for t in targets] == ["<p>again</p>", "<p>1</p>", "<p>2</p>", "<p>3</p>", "<p>4</p>"]
    assert flushed == (["syncfs"] if flush_each_up_to == 0 else ["fsync"] * 5)
    assert not (tmp_path / "state" / "staging").exists() or not any((tmp_path / "state" / "staging").iterdir())


def test_a_large_run_flushes_the_output_filesystem_alone(tmp_path, monkeypatch):
    from pressflow.core import files

    monkeypatch.setattr(files.os, "sync", lambda: pytest.fail("flushed every filesystem, not the output's"))
    files.sync_filesystem(tmp_path)  # Linux's syncfs, through libc
