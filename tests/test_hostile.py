"""Hostile and broken records (tests/hostile/), and user templates that try to escape the sandbox.

Every bad record gets a one-line error naming its file (and field); markup in good records is
shown as text everywhere it is published; nothing is written outside the output folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import feedparser
import pytest
from lxml import html

from pressflow.prepare import pipeline
from pressflow.core.config import Settings
from pressflow.core.errors import PublishError, TemplateError
from pressflow.core.files import inside
from pressflow.publish import publish
from pressflow.records import load_records
from pressflow.render import Renderer


@pytest.fixture(autouse=True)
def _source_drafts_approved_as_prepared(monkeypatch):
    """What is under test here is hostile records through to publishing, not review
    (tests/test_gate.py has the gate's tests): source drafts are approved as they are prepared."""
    monkeypatch.setenv("PRESSFLOW_AUTO_APPROVE_SOURCE", "1")


CORPUS = Path(__file__).parent / "hostile"
PUBLISHED = {"good-record", "script-everywhere", "duplicate-id", "joiners-legit"}
# file -> (field named in the error, or None for whole-file errors; words the message must contain)
EXPECTED_ERRORS = {
    "control-chars.json": ("title", "control characters"),
    "date-ancient.yaml": ("date", "out of range"),
    "date-far-future.yaml": ("date", "out of range"),
    "date-impossible.yaml": ("date", "valid date"),
    "deep.json": (None, "nested too deeply"),
    "duplicate-b.yaml": ("id", "duplicate id 'duplicate-id'"),
    "escape-id-absolute.json": ("id", "pattern"),
    "escape-id.yaml": ("id", "pattern"),
    "escape-image.yaml": ("image.url", "relative to the record file"),
    "javascript-link.yaml": ("links.0.url", "http"),
    "latin1.yaml": (None, "not UTF-8"),
    "utf16.yaml": (None, "not UTF-8"),
    "publish-at-naive.yaml": ("publish_at", "timezone"),
    "python-tag.yaml": (None, "not valid YAML"),
    "yaml-bomb.yaml": (None, "aliases are not allowed"),
    "huge-summary.yaml": ("summary", "at most 5000 characters"),
    "noncharacter.json": ("title", "U+FFFE"),
    "image-url-crlf.json": ("image.url", "a line break"),
    "publish-at-overflow.yaml": ("publish_at", "out of range"),
    "publish-at-year-one.yaml": ("publish_at", "out of range"),
    "bidi-override.yaml": ("title", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    "zero-width.yaml": ("summary", "U+200B ZERO WIDTH SPACE"),
}


@pytest.fixture
def batch(tmp_path) -> Path:
    """The corpus, plus a record with a 1 MB summary (generated, to keep the repository small)."""
    records = tmp_path / "records"
    shutil.copytree(CORPUS, records)
    (records / "README.md").unlink()
    (records / "huge-summary.yaml").write_text(
        "title: A one-megabyte summary\ndate: 2021-06-20\nsummary: " + "x" * 1_000_000 + "\n")
    return records


def test_every_bad_record_gets_a_one_line_error_naming_file_and_field(batch):
    result = load_records([batch])
    assert {event.slug for _, event in result.events} == PUBLISHED
    errors = {Path(error.file).name: error for error in result.errors}
    assert set(errors) == set(EXPECTED_ERRORS)
    for name, (field, words) in EXPECTED_ERRORS.items():
        error, text = errors[name], str(errors[name])
        assert "\n" not in text and len(text) < 400, text
        assert text.startswith(str(batch / name)), text
        assert words in text, text
        assert error.field == field, text


def snapshot(root: Path, skip: Path) -> dict[str, str]:
    """Every file under `root` except those under `skip`, with a hash of its content."""
    files = {}
    for path in root.rglob("*"):
        if path.is_file() and skip not in path.parents:
            files[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def test_hostile_batch_publishes_the_good_records_and_writes_nothing_outside_out(batch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative path escaping from here would land in the snapshot
    out = tmp_path / "deep" / "out"
    settings = Settings(out_dir=out)
    before = snapshot(tmp_path, out)

    result = load_records([batch])
    report = pipeline.prepare(result.events, settings)
    published = publish(settings)

    assert snapshot(tmp_path, out) == before
    assert set(published.releases) == PUBLISHED and not published.failed
    assert not report.failed
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(out.resolve())
    assert not (tmp_path / "pwned-by-yaml").exists()


@pytest.mark.slow
def test_the_cli_run_with_out_writes_nothing_else_and_names_every_bad_file(batch, tmp_path, monkeypatch,
                                                                           prefect_harness):
    """The same batch the way staff run it: `pressflow run DIR --out OUT --auto-approve`."""
    from typer.testing import CliRunner

    from pressflow.cli import app

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "deep" / "out"
    before = snapshot(tmp_path, out)

    result = CliRunner().invoke(app, ["run", str(batch), "--out", str(out), "--auto-approve"])

    assert result.exit_code == 1, result.output  # bad records are errors, even though the rest went out
    assert snapshot(tmp_path, out) == before
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    for name in EXPECTED_ERRORS:
        assert [line for line in error_lines if line.startswith(f"error: {batch / name}:")], (name, result.stderr)
    assert len(error_lines) == len(EXPECTED_ERRORS), result.stderr
    published = {line.split()[1].rstrip(":") for line in result.stdout.splitlines() if line.startswith("published ")}
    assert published == PUBLISHED, result.stdout
    feed = feedparser.parse(str(out / "feeds" / "en" / "atom.xml"))
    assert feed.bozo == 0 and {e.id.rsplit(":", 1)[1].split("/")[0] for e in feed.entries} == PUBLISHED
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(out.resolve())


def test_markup_in_every_field_is_shown_as_text_never_run(batch, tmp_path):
    settings = Settings(out_dir=tmp_path / "out")
    pipeline.prepare(load_records([batch]).events, settings)
    publish(settings)
    out = settings.out_dir
    page_files = [out / "site" / "en" / "script-everywhere.html",
                  out / "outbox" / "script-everywhere" / "en" / "press-release.html", out / "site" / "en" / "index.html"]
    for path in page_files:
        page = html.parse(str(path)).getroot()
        # The site's own elements only: the structured data (JSON, its '<' escaped) and the masthead's logo.
        ours = "//script[not(@type='application/ld+json')]|//svg[not(parent::a[@class='brand'])]"
        assert not page.xpath(f"{ours}|//iframe|//body//style|//img[@onerror]|//*[@onload]|//*[@onmouseover]"), path
        assert all("<" not in script.text for script in page.xpath("//script")), path
        assert not page.xpath("//a[starts-with(@href, 'javascript:')]"), path
    text = page_files[0].read_text()
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in text or "&lt;script&gt;alert('title')" in text
    for name in ("en", "all"):
        for kind in ("atom", "rss"):
            feed = feedparser.parse(str(out / "feeds" / name / f"{kind}.xml"))
            assert feed.bozo == 0, feed.get("bozo_exception")
            [entry] = [e for e in feed.entries if ":script-everywhere/" in e.id]
            assert entry.title.startswith("<script>alert('title')</script>")  # the title, as text
            raw = (out / "feeds" / name / f"{kind}.xml").read_text()
            assert "<script" not in raw  # escaped in the XML itself, whatever the reader does
            content = html.fragment_fromstring(entry.content[0].value, create_parent="div")
            assert not content.xpath("//script|//iframe|//svg|//style|//@onerror|//@onload")
            assert "<script>alert('body')</script>" in content.text_content()
    for post in (out / "outbox" / "script-everywhere" / "en" / "posts").iterdir():
        assert post.read_text().strip()  # plain text files: markup stays as the author typed it


@pytest.mark.parametrize("parts", [("..", "escape.txt"), ("/etc", "passwd"), ("site", "..", "..", "x")])
def test_paths_outside_the_output_folder_are_refused(tmp_path, parts):
    with pytest.raises(PublishError, match="outside the output folder"):
        inside(tmp_path / "out", *parts)


def test_a_symlink_inside_out_cannot_redirect_writes(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(tmp_path, out / "site")
    with pytest.raises(PublishError):
        inside(out, "site", "en", "page.html")



def test_a_symlink_at_a_page_is_replaced_not_followed(tmp_path):
    from pressflow.core.files import Staging
    from pressflow.core.site import Site

    out, outside = tmp_path / "out", tmp_path / "outside.txt"
    outside.write_text("not the publisher's")
    (out / "site" / "en").mkdir(parents=True)
    os.symlink(outside, out / "site" / "en" / "page.html")
    site, staging = Site(Settings(out_dir=out)), Staging(out)
    staging.write(site.page_path("en", "page"), "<p>the page</p>")
    staging.commit()
    assert outside.read_text() == "not the publisher's"
    assert not (out / "site" / "en" / "page.html").is_symlink()
    assert (out / "site" / "en" / "page.html").read_text() == "<p>the page</p>"



def test_a_symlink_deep_in_the_layout_cannot_redirect_writes(tmp_path):
    from pressflow.core.site import Site

    out = tmp_path / "out"
    (out / "outbox").mkdir(parents=True)
    os.symlink(tmp_path, out / "outbox" / "water-forum")
    site = Site(Settings(out_dir=out))
    assert site.outbox_path("other-forum", "en", "posts", "x.txt") == out.resolve() / "outbox/other-forum/en/posts/x.txt"
    with pytest.raises(PublishError, match="outside the output folder"):
        site.outbox_path("water-forum", "en", "posts", "x.txt")

@pytest.mark.parametrize("slug", ["..", ".", "", "../x", "a/../../x"])
def test_names_that_leave_their_folder_are_refused(tmp_path, slug):
    from pressflow.core.site import Site

    site = Site(Settings(out_dir=tmp_path / "out"))
    with pytest.raises(PublishError, match="outside the output folder"):
        site.outbox_path(slug, "..", "..", "..")


# --- user templates in the sandbox -------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('id') }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ organization.__class__.__base__.__subclasses__() }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_templates_cannot_reach_python_internals(tmp_path, source):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "evil.html.j2").write_text(source)
    renderer = Renderer(Settings(out_dir=tmp_path / "out", templates_dir=templates))
    with pytest.raises(TemplateError, match="evil.html.j2"):
        renderer.html("evil.html.j2")
