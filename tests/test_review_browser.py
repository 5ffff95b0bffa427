"""The review page in a real browser (Playwright driving Debian's Chromium) against `pressflow serve`.

A reviewer signs in, opens a pending Spanish release, corrects a sentence, saves and approves;
approving publishes at once (the publish flow, in the server's process), and the Spanish feed
(read with feedparser, fetched from the server's /feeds/) carries the correction. A later record
with the same sentence is prepared and its Spanish draft reuses the correction from the
translation memory. Other tests check that requests without sign-in or CSRF token are refused,
that two reviewers' conflicting saves are detected, that the live length of a post is the
platform's count, and that signing in and approving work without JavaScript.

Needs `pip install playwright` and `apt-get install chromium` (Playwright cannot download its
own browsers here). Without either, the module is skipped, saying which is missing; with CI
set it fails instead: CI must run what it can, not skip it quietly.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import feedparser
import httpx
import pytest
from conftest import CHROMIUM, browser_missing, decoding_capped, wait_until_serving

from pressflow.core import db
from pressflow.drafts import reviewers, store
from pressflow.prepare import pipeline
from pressflow.core.config import Settings
from pressflow.platforms import PLATFORMS
from pressflow.records import Event, load_records

ROOT = Path(__file__).resolve().parents[1]
# axe-core from npm (tests/tools): the review page must keep 0 WCAG 2.1 A/AA violations.
AXE = ROOT / "tests" / "tools" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "a long reviewer password"
MARKUP_TITLE = "Follow-up <b>forum</b> <script>window.pwned = 1</script>"
# X counts an emoji (even one joined from several code points) as 2 and a link, with or
# without "https://", as 23.
TYPED = "Lanzamiento 👩‍🔬🎉 en example.org/foro/2021 y más"
PUBLISH_WAIT_MS = 180_000  # the server's first publish flow run waits for Prefect's server to start

pytestmark = pytest.mark.slow


if (_missing := browser_missing()) is not None:
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{_missing}; CI is set: the browser tests must run there, not be skipped", pytrace=False)
    pytest.skip(_missing, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_example(settings: Settings, events) -> Event:
    """One bundled example prepared in Spanish, and two reviewers of Spanish."""
    path, event = next((p, e) for p, e in events if "health" in e.slug)
    with decoding_capped():  # random-weight models never stop on their own: short outputs keep it quick
        pipeline.prepare([(path, event.model_copy(update={"languages": ["es"]}))], settings)
    for name in ("rosa", "tomas"):
        reviewers.add_user(settings.db_url, name, PASSWORD, ["es"])
    return event


@contextmanager
def serving(settings: Settings, *, publish_on_approve: bool) -> Iterator[str]:
    """`pressflow serve` in a subprocess on a free loopback port; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PRESSFLOW_PUBLISH_ON_APPROVE="1" if publish_on_approve else "0",
               PRESSFLOW_SITE_URL=f"http://127.0.0.1:{port}")
    process = subprocess.Popen([sys.executable, "-m", "pressflow.cli", "serve", "--out", str(settings.out_dir),
                                "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(process, base, timeout=60)
    try:
        yield base
    finally:
        children = child_pids(process.pid)  # e.g. the temporary Prefect server a publish started
        process.terminate()
        process.wait(timeout=60)
        left = wait_gone(children, seconds=15)
        for pid in left:
            os.kill(pid, 9)
        assert not left, f"pressflow serve stopped but left processes running: {left}"


def child_pids(pid: int) -> list[int]:
    """The processes `pid` started (Linux /proc; none elsewhere)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := [pid for pid in pids if Path(f"/proc/{pid}").exists()]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


@pytest.fixture
def prepared(tmp_path, argos_models, events):
    settings = Settings(out_dir=tmp_path / "out")
    return settings, prepare_example(settings, events)


@pytest.fixture
def server(prepared):
    """A server of its own for the test that publishes: approving publishes at once, in process."""
    with serving(prepared[0], publish_on_approve=True) as base:
        yield base


@pytest.fixture(scope="module")
def shared(tmp_path_factory, argos_models):
    """One store and one server (publishing left to the schedule) for the tests that each use a
    draft of their own: preparing and starting a server for each would double the module's time."""
    settings = Settings(out_dir=tmp_path_factory.mktemp("shared") / "out")
    prepare_example(settings, load_records([ROOT / "events"]).events)
    with serving(settings, publish_on_approve=False) as base:
        yield settings, base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def new_page(browser: Browser, **options) -> Page:
    """A page in a browser context of its own: its own cookies, so its own reviewer."""
    return browser.new_context(viewport={"width": 1366, "height": 900}, **options).new_page()


@pytest.fixture
def page(browser):
    page = new_page(browser)
    yield page
    page.context.close()


def sign_in(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/signin")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def draft_state(settings, draft_id: int) -> tuple[str, int, list[int]]:
    with db.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, draft_id)
        return draft.status, draft.revision, [r.number for r in draft.revisions]


def whole_text_editor(page: Page):
    """The whole-text editor, unfolded when the draft is also shown sentence by sentence."""
    unfold = page.get_by_text("Edit the whole text instead")
    if unfold.count():
        unfold.click()
    return page.locator("#whole-text")


def pending_release_draft(settings, lang: str, slug: str | None = None, channel: str = "release") -> store.Draft:
    with db.session_scope(settings.db_url) as session:
        drafts = store.list_drafts(session, status=store.PENDING, lang=lang, channel=channel, slug=slug)
        assert drafts, f"no pending {channel} draft"
        return drafts[-1]


def axe_violations(page: Page) -> list[dict]:
    """axe-core's WCAG 2.1 A and AA rules on the open page. The page's CSP refuses script
    elements without its nonce, so axe is evaluated through the DevTools protocol instead."""
    if not AXE.is_file():
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"no {AXE} (npm ci in tests/tools); CI must run axe-core")
        return []
    page.evaluate(f"() => {{ {AXE.read_text(encoding='utf-8')}\n}}")
    result = page.evaluate("axe.run(document, {runOnly: {type: 'tag', values: "
                           "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})")
    return [{"id": v["id"], "nodes": [n["html"][:160] for n in v["nodes"]]} for v in result["violations"]]


def test_review_edit_approve_publish_and_reuse(prepared, server, page, tmp_path):
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
    expect(page.get_by_role("link", name=f"Review draft {draft.id} (Press release, es)")).to_have_count(1)
    assert axe_violations(page) == []  # the queue
    page.get_by_role("link", name=f"Review draft {draft.id} (Press release, es)").click()
    assert page.locator(f"#segment-{number} td").nth(1).inner_text() == segment["source"]
    editor = page.locator(f"#seg-{number}")
    assert editor.get_attribute("lang") == "es" and editor.get_attribute("dir") == "ltr"
    editor.fill(correction)
    editor.scroll_into_view_if_needed()
    assert axe_violations(page) == []  # the draft page, mid-edit
    # Into the test's own folder: a test run leaves the checkout as it was (scripts/screenshots.py
    # writes the README's copy).
    page.screenshot(path=str(tmp_path / "review.png"))
    page.get_by_role("button", name="Save changes").click()
    # expect() waits for the page the click leads to; count() would look at the old one
    expect(page.get_by_role("status").filter(has_text="Saved as revision 2")).to_have_count(1)
    assert page.locator(f"#seg-{number}").input_value() == correction
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Publishing has started in the background")).to_have_count(1)
    # the flow runs in the server's background; the page says when it is done, without a reload
    expect(page.locator("#publishing")).to_contain_text(re.compile(r"Published \d+ release language"),
                                                        timeout=PUBLISH_WAIT_MS)

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


# --- on one shared store and server, each test with a draft of its own -------------------------


def test_requests_without_sign_in_or_csrf_token_are_refused(shared, browser):
    settings, base = shared
    draft = pending_release_draft(settings, "es")
    before = draft_state(settings, draft.id)

    stranger = new_page(browser)
    stranger.goto(f"{base}/drafts/{draft.id}")
    assert stranger.url.startswith(f"{base}/signin?next=")  # nothing without signing in
    # A form posted without a session (with the sign-in page's own CSRF token) is sent to sign in.
    stranger.evaluate("""([action, revision]) => {
        const form = Object.assign(document.createElement("form"), {method: "post", action});
        const token = document.querySelector("input[name=csrf_token]").value;
        for (const [name, value] of [["csrf_token", token], ["expected_revision", revision]])
            form.append(Object.assign(document.createElement("input"), {type: "hidden", name, value}));
        document.body.append(form);
        form.submit();
    }""", [f"/drafts/{draft.id}/approve", str(draft.revision)])
    stranger.wait_for_url(re.compile(r"/signin\?next="))
    stranger.context.close()

    reviewer = new_page(browser)
    sign_in(reviewer, base, "rosa")
    reviewer.goto(f"{base}/drafts/{draft.id}")
    # A signed-in reviewer's form without its CSRF token, as a forged cross-site form would be
    reviewer.locator("input[name=csrf_token]").evaluate_all("inputs => inputs.forEach(i => i.remove())")
    with reviewer.expect_response(f"{base}/drafts/{draft.id}/approve") as response:
        reviewer.get_by_role("button", name="Approve", exact=True).click()
    assert response.value.status == 403
    expect(reviewer.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(reviewer.get_by_text("did not come from this site")).to_be_visible()
    reviewer.context.close()
    assert draft_state(settings, draft.id) == before


def test_two_reviewers_saving_the_same_draft_the_second_is_refused(shared, browser):
    settings, base = shared
    draft = pending_release_draft(settings, "es", channel="linkedin")
    rosa, tomas = new_page(browser), new_page(browser)
    for page, name in ((rosa, "rosa"), (tomas, "tomas")):
        sign_in(page, base, name)
        page.goto(f"{base}/drafts/{draft.id}")  # both open revision 1
    mine, theirs = "Texto de Rosa para LinkedIn.", "Texto de Tomás para LinkedIn."
    whole_text_editor(rosa).fill(mine)
    whole_text_editor(tomas).fill(theirs)
    rosa.get_by_role("button", name="Save text").click()
    expect(rosa.get_by_role("status").filter(has_text="Saved as revision 2")).to_have_count(1)

    with tomas.expect_response(f"{base}/drafts/{draft.id}/save") as response:
        tomas.get_by_role("button", name="Save text").click()
    assert response.value.status == 409
    alert = tomas.get_by_role("alert")
    expect(alert.get_by_role("heading")).to_have_text("Not saved: someone else changed this draft")
    expect(alert).to_contain_text("rosa saved revision 2")
    expect(tomas.locator("#yours")).to_have_value(theirs)  # theirs, to apply again
    expect(whole_text_editor(tomas)).to_have_value(mine)  # and the current text
    assert draft_state(settings, draft.id) == (store.PENDING, 2, [1, 2])
    rosa.context.close()
    tomas.context.close()


def test_live_length_of_a_post_is_the_platforms_count(shared, page):
    settings, base = shared
    draft = pending_release_draft(settings, "es", channel="x")
    sign_in(page, base, "rosa")
    page.goto(f"{base}/drafts/{draft.id}")
    x = PLATFORMS["x"]
    count = page.locator("form[data-mode=whole] output.live-length")
    expect(count).to_have_text(f"{x.count(draft.text)} of 280")  # the saved text's length, from the server
    whole_text_editor(page).fill(TYPED)
    expect(count).to_have_text(f"{x.count(TYPED)} of 280")
    assert x.count(TYPED) != len(TYPED)  # emoji and the link without https:// are not counted one by one
    assert draft_state(settings, draft.id)[1] == 1  # counting saves nothing


def test_sign_in_and_approve_without_javascript(shared, browser):
    settings, base = shared
    draft = pending_release_draft(settings, "es", channel="bluesky")
    page = new_page(browser, java_script_enabled=False)
    sign_in(page, base, "tomas")
    page.goto(f"{base}/drafts/{draft.id}")
    bluesky = PLATFORMS["bluesky"]
    expect(page.locator("output.live-length").first).to_have_text(f"{bluesky.count(draft.text)} of 300")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.get_by_role("status").filter(has_text=f"Draft {draft.id} approved.")).to_have_count(1)
    left_to_schedule = page.get_by_role("status").filter(has_text="Publishing is left to the scheduled deployment")
    expect(left_to_schedule).to_have_count(1)
    page.context.close()
    assert draft_state(settings, draft.id)[0] == store.APPROVED
