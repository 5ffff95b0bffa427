"""The review page in a real browser (Playwright driving Debian's Chromium) against `pressflow serve`.

A reviewer signs in, opens a pending Spanish release, corrects a sentence, saves and approves;
approving publishes at once, and the Spanish feed (read with feedparser, fetched from the
server's /feeds/) carries the correction. A later record with the same sentence is prepared
and its Spanish draft reuses the correction from the translation memory.

Needs `pip install playwright` and `apt-get install chromium` (Playwright cannot download its
own browsers here); the test is skipped, saying so, when either is missing.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import httpx
import pytest

from pressflow import pipeline, store, users
from pressflow.config import Settings
from pressflow.records import Event

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "screenshots" / "review.png"
CHROMIUM = os.environ.get("PRESSFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "a long reviewer password"
MARKUP_TITLE = "Follow-up <b>forum</b> <script>window.pwned = 1</script>"

pytestmark = pytest.mark.slow
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def prepared(tmp_path, argos_models, events, monkeypatch):
    """An output folder with one bundled example prepared in Spanish, and a reviewer account."""
    # Random-weight models never stop on their own: short outputs keep translation quick.
    monkeypatch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", "24")
    settings = Settings(out_dir=tmp_path / "out")
    path, event = next((p, e) for p, e in events if "health" in e.slug)
    pipeline.prepare([(path, event.model_copy(update={"languages": ["es"]}))], settings)
    users.add_user(settings.db_url, "rosa", PASSWORD, ["es"])
    return settings, event


@pytest.fixture
def server(prepared):
    """`pressflow serve` in a subprocess on a free loopback port, publishing in process on approve."""
    settings, _ = prepared
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PRESSFLOW_PUBLISH_ON_APPROVE="1", PRESSFLOW_SITE_URL=f"http://127.0.0.1:{port}")
    process = subprocess.Popen([sys.executable, "-m", "pressflow.cli", "serve", "--out", str(settings.out_dir),
                                "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/signin").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"pressflow serve did not start:\n{process.stdout.read()}")
        time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def page():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        yield page
        browser.close()


def pending_release_draft(settings, lang: str, slug: str | None = None) -> store.Draft:
    with store.session_scope(settings.db_url) as session:
        drafts = store.list_drafts(session, status=store.PENDING, lang=lang, channel="release", slug=slug)
        assert drafts, "no pending release draft"
        return drafts[-1]


def test_review_edit_approve_publish_and_reuse(prepared, server, page):
    settings, event = prepared
    draft = pending_release_draft(settings, "es", event.slug)
    segments = draft.meta["segments"]
    # the summary's first sentence: a later record will contain exactly this sentence
    number, segment = next((i + 1, s) for i, s in enumerate(segments) if event.summary.startswith(s["source"]))
    correction = "Corrección de la revisora: " + " y ".join(segment["values"] or ["cumbre"]) + " en Roma."

    page.goto(f"{server}/")
    assert "/signin" in page.url  # nothing without signing in
    page.get_by_label("Your name").fill("rosa")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name=f"Review draft {draft.id} (release, es)").click()
    assert page.locator(f"#segment-{number} td").nth(1).inner_text() == segment["source"]
    editor = page.locator(f"#seg-{number}")
    assert editor.get_attribute("lang") == "es" and editor.get_attribute("dir") == "ltr"
    editor.fill(correction)
    editor.scroll_into_view_if_needed()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    page.get_by_role("button", name="Save changes").click()
    assert page.get_by_role("status").filter(has_text="Saved as revision 2").count() == 1
    assert page.locator(f"#seg-{number}").input_value() == correction
    page.get_by_role("button", name="Approve", exact=True).click()
    assert page.get_by_role("status").filter(has_text=re.compile(r"Published \d+ release language")).count() == 1

    feed = feedparser.parse(httpx.get(f"{server}/feeds/es/atom.xml").content)
    entry = next(e for e in feed.entries if e.id.endswith(f":{event.slug}/es"))
    assert correction in entry.content[0].value
    assert page.goto(f"{server}/site/es/{event.slug}.html").ok

    # A later record with the same sentence: its Spanish draft reuses the reviewer's correction.
    later = Event(title=MARKUP_TITLE, date=dt.date(2021, 12, 1), summary=segment["source"], languages=["es"])
    pipeline.prepare([(None, later)], settings)
    assert correction in pending_release_draft(settings, "es", later.slug).text

    # A title with markup is shown as text, never run or rendered.
    page.goto(f"{server}/?lang=es")
    heading = page.get_by_role("heading", level=2).filter(has_text="Follow-up")
    assert MARKUP_TITLE in heading.inner_text()
    assert heading.locator("b, script").count() == 0
    assert page.evaluate("typeof window.pwned") == "undefined"
