"""The review page as a tool for translators: checks in words with their counts, and no sideways
scroll at 390 px (a phone) or 1280 px on the queue and on every kind of draft, in Chromium.

One bundled example is prepared in Spanish (a press release and a post for each platform, and the
English drafts waiting for review too); a reviewer's memory holds a long translation that the
draft page offers as a suggestion, with a long unbroken address in it, the case that widened the
page to 1,329 px.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import EVENTS, decoding_capped
from pressflow.prepare import pipeline
from pressflow.drafts import store
from pressflow.drafts import reviewers
from pressflow.core.config import Settings
from pressflow.platforms import PLATFORMS
from pressflow.records import load_records
from pressflow.review_app import create_app
from pressflow.review_app.publishing import PublishMode
from pressflow.core import db
from pressflow.memory.store import SqlMemory

PASSWORD = "correct horse battery"
WIDTHS = {390: 844, 1280: 800}
LONG_ADDRESS = "https://www.anso.org.cn/programmes/data-sharing/2021/" + "workshop-recordings-" * 12 + "slides.html"


def prepare(settings: Settings) -> None:
    path, event = next((p, e) for p, e in load_records([EVENTS]).events if "health" in e.slug)
    with decoding_capped():
        pipeline.prepare([(path, event.model_copy(update={"languages": ["es"]}))], settings)
    reviewers.add_user(settings.db_url, "rosa", PASSWORD, [])
    with db.session_scope(settings.db_url) as session:
        [draft] = store.list_drafts(session, status=store.PENDING, lang="es", channel="release")
        key = max((s["key"] for s in draft.meta["segments"]), key=len)  # the summary's sentence
    # A reviewer's earlier translation of a sentence much like this one: offered as a suggestion.
    SqlMemory(settings.db_url, author="tomas").save("en", "es", "human", {
        key.rstrip(".") + " today.": f"Una traducción revisada, con su dirección {LONG_ADDRESS} entera."})


def sign_in(client: TestClient) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text).group(1)
    client.post("/signin", data={"name": "rosa", "password": PASSWORD, "csrf_token": token})


def test_the_queue_names_checks_in_words_with_their_counts(tmp_path):
    settings = Settings(out_dir=tmp_path / "out")
    reviewers.add_user(settings.db_url, "rosa", PASSWORD, [])
    flags = [{"kind": "protected_missing", "items": ["ANSO"], "segment": 0},
             {"kind": "protected_missing", "items": ["2021"], "segment": 2},
             {"kind": "numbers_differ", "items": ["20"], "segment": 1}]
    with db.session_scope(settings.db_url) as session:
        store.upsert_release(session, slug="office", title="Office opens", date=dt.date(2021, 9, 12), publish_at=None,
                             fingerprint="f1", record={}, source_file=None)
        store.add_draft(session, slug="office", lang="es", channel="x", fingerprint="f1",
                        source_text="Office opens.\n", text="Oficina.\n", qa=flags)
    client = TestClient(create_app(settings, PublishMode(on_approve=False, via_prefect=False)), follow_redirects=False)
    sign_in(client)
    page = client.get("/").text
    table = re.search(r'<table class="queue">.*?</table>', page, re.S).group(0)
    cell = re.search(r'<td data-label="Checks">(.*?)</td>', table, re.S).group(1)
    words = re.sub(r"<[^>]+>", " ", cell)
    assert re.sub(r"\s+", " ", words).strip() == "Numbers differ Protected item missing × 2"
    assert "protected_missing" not in table and "numbers_differ" not in table and "flag(s)" not in table
    assert '<td data-label="Channel">X post</td>' in table


@pytest.fixture(scope="module")
def served(tmp_path_factory, argos_models):
    from test_review_browser import serving

    settings = Settings(out_dir=tmp_path_factory.mktemp("layout") / "out")
    prepare(settings)
    with serving(settings, publish_on_approve=False) as base:
        yield settings, base


@pytest.fixture(scope="module")
def browser():
    from test_review_browser import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def drafts_to_open(settings: Settings) -> dict[str, int]:
    """One draft of every kind: the Spanish release and each platform's post, the English release."""
    with db.session_scope(settings.db_url) as session:
        found = {f"es-{d.channel}": d.id for d in store.list_drafts(session, status=store.PENDING, lang="es")}
        found |= {f"en-{d.channel}": d.id for d in store.list_drafts(session, status=store.PENDING, lang="en")
                  if d.channel == "release"}
    assert set(found) == {"en-release", "es-release", *(f"es-{c}" for c in PLATFORMS)}
    return found


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_no_sideways_scroll_on_the_queue_and_every_draft_kind(served, browser, width, tmp_path):
    settings, base = served
    context = browser.new_context(viewport={"width": width, "height": WIDTHS[width]})
    page = context.new_page()
    page.goto(f"{base}/signin")
    page.get_by_label("Your name").fill("rosa")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    wide = {}
    pages = {"queue": "/", **{name: f"/drafts/{draft_id}" for name, draft_id in drafts_to_open(settings).items()}}
    for name, path in pages.items():
        page.goto(f"{base}{path}")
        page.wait_for_load_state("load")
        if name == "es-release":  # the long suggestion is there, and the whole-text editor unfolded
            assert LONG_ADDRESS in page.content()
            page.get_by_text("Edit the whole text instead").click()
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)
        if scroll > inner:
            wide[name] = scroll
    context.close()
    assert wide == {}, f"pages wider than {width} px: {wide}"
