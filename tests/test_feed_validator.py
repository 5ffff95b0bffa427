"""Every published feed, in every language, through the W3C Feed Validation Service's own code.

The validator (`validate-feed`, the W3C feedvalidator run offline) lives beside the checkout in
`../shared/tools/`; CI has it. A site in English, Spanish and Chinese, with a release whose
text looks like markup and holds "R&D", is published once and every feed must give 0 errors.
Warnings are allowed only of the kinds the README names and explains.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import feedparser
import html5lib
import pytest
from lxml import etree

from pressflow.prepare import pipeline
from pressflow.core.config import Settings
from pressflow.publish import publish
from pressflow.records import load_records, validate_record

from conftest import EVENTS, ROOT, approve_all, decoding_capped



def _validator() -> Path:
    """`shared/tools/validate-feed` beside the checkout, or beside the main checkout when this
    one is a git worktree elsewhere."""
    beside = ROOT.parent / "shared" / "tools" / "validate-feed"
    common = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--path-format=absolute", "--git-common-dir"],
                            capture_output=True, text=True)
    main = Path(common.stdout.strip()).parent if common.returncode == 0 and common.stdout.strip() else ROOT
    return next((p for p in (beside, main.parent / "shared" / "tools" / "validate-feed") if p.is_file()), beside)


VALIDATOR = _validator()
LANGS = ["es", "zh"]
# The warning kinds the README explains (section "Feeds"); anything else is a regression.
MODEL_NOISE = {  # the random-weight test models emit stray byte pieces that decode to U+FFFD
    "content contains bad characters", "content:encoded contains bad characters",
    "title contains bad characters", "summary contains bad characters", "description contains bad characters",
}
LOOKS_LIKE_MARKUP = {  # a record's text that itself reads like HTML, published as the text it is
    "title should not contain HTML", "title should not contain HTML unless declared in the type attribute",
    "summary should not contain HTML unless declared in the type attribute",
}
KNOWN_WARNINGS = MODEL_NOISE | LOOKS_LIKE_MARKUP
MARKUP = {"id": "markup-and-r-and-d", "title": "R&D <script>alert('title')</script> forum", "date": "2021-06-12",
          "summary": "R&D funding <script>alert('summary')</script> and <svg onload=alert(1)> too.",
          "languages": LANGS, "body": ["Joint R&D centres <b>open</b>."]}


@pytest.fixture(scope="module")
def published(tmp_path_factory, argos_models) -> Settings:
    if not VALIDATOR.is_file():
        if os.environ.get("CI") == "1":
            pytest.fail(f"{VALIDATOR} is missing; CI must have the shared tools")
        pytest.skip(f"the W3C feed validator is not at {VALIDATOR}")
    settings = Settings(out_dir=tmp_path_factory.mktemp("validated") / "out")
    events = [(path, event.model_copy(update={"languages": LANGS})) for path, event in load_records([EVENTS]).events]
    with decoding_capped():
        report = pipeline.prepare(events + [(None, validate_record(MARKUP))], settings)
    assert not report.failed and not report.skipped
    approve_all(settings)
    # Published now: a date in the future would add "Implausible date" warnings.
    publish(settings)
    return settings


def validate(paths: list[Path]) -> tuple[list[str], list[str], str]:
    run = subprocess.run([sys.executable, str(VALIDATOR), *map(str, paths)], capture_output=True, text=True,
                         timeout=300)
    lines = run.stdout.splitlines()
    errors = [line for line in lines if ": error: " in line]
    warnings = [line for line in lines if ": warning: " in line]
    return errors, warnings, run.stdout + run.stderr


def test_every_feed_in_every_language_has_no_validator_errors(published):
    feeds = sorted((published.out_dir / "feeds").glob("*/*.xml"))
    assert {p.parent.name for p in feeds} == {"en", *LANGS, "all"} and len(feeds) == 2 * (len(LANGS) + 2)
    errors, warnings, output = validate(feeds)
    assert errors == [], output
    assert output.strip().splitlines()[-1].startswith(f"feeds: {len(feeds)} files, 0 errors")
    assert kinds_of(warnings) <= KNOWN_WARNINGS, kinds_of(warnings) - KNOWN_WARNINGS
    # The English feeds hold only text people wrote: no model noise there.
    errors, warnings, output = validate(sorted((published.out_dir / "feeds" / "en").glob("*.xml")))
    assert not errors and kinds_of(warnings) <= LOOKS_LIKE_MARKUP, output


def kinds_of(warnings: list[str]) -> set[str]:
    return {re.sub(r"^line \d+, column \d+: ", "", w.split(": warning: ", 1)[1]) for w in warnings}


def test_rss_descriptions_are_text_even_to_a_reader_that_reads_them_as_html(published):
    """RSS readers treat <description> as HTML: what they get must be the summary as text."""
    for path in (published.out_dir / "feeds").glob("*/rss.xml"):
        for item in etree.parse(str(path)).getroot().iter("item"):
            description = item.findtext("description")
            fragment = html5lib.parseFragment(description, namespaceHTMLElements=False)
            assert len(fragment) == 0, (path, description)  # no element at all: only text
            if item.findtext("guid").endswith(f"{MARKUP['id']}/en"):
                assert "".join(fragment.itertext()).endswith(MARKUP["summary"])
                assert "R&amp;D" in description  # "&" escaped for HTML, then again for XML on disk


def test_atom_entries_name_the_organization_and_rss_links_the_site(published):
    for name in ("en", "all"):
        atom = feedparser.parse(str(published.out_dir / "feeds" / name / "atom.xml"))
        assert atom.entries and all(e.author_detail.name == published.organization for e in atom.entries)
        rss = feedparser.parse(str(published.out_dir / "feeds" / name / "rss.xml"))
        assert rss.feed.link == f"{published.site_url}/site/en/index.html"
        updated = [e.updated for e in atom.entries]
        assert len(set(updated)) == len(updated)  # each release's own time, not one per run
