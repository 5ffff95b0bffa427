"""The review page through its HTTP interface (FastAPI's TestClient), against a real SQLite store."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import feedparser
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from conftest import add_release_row
from pressflow.core import db
from pressflow.drafts import reviewers, service, store
from pressflow.memory.store import SqlMemory
from pressflow.core.config import Settings
from pressflow.core.errors import ReviewError
from pressflow.platforms import PLATFORMS
from pressflow.review_app import create_app
from pressflow.translate.layout import changed_segments, current_layout, first_layout, follow
from pressflow.review_app.publishing import SCHEDULED_DEPLOYMENT, PublishMode, Publisher

PUBLISH_WAIT = 180  # seconds: the first in-process flow run waits for Prefect's server to start

PASSWORD = "correct horse battery"
EVIL_TITLE = '<script>alert("x")</script> & <b>bold</b> launch'

# A release as the translation stage leaves it: sentences with protected values (⟦n⟧), and a
# machine translation holding stray full stops, so sentence re-splitting would misalign.
SEGMENTS = [
    {"key": "⟦0⟧ opens an office", "values": ["ANSO"], "source": "ANSO opens an office",
     "target": "⟦0⟧ abre. una oficina", "text": "ANSO abre. una oficina"},
    {"key": "The office will serve Central Asia.", "values": [], "source": "The office will serve Central Asia.",
     "target": "La oficina. servirá.", "text": "La oficina. servirá."},
    {"key": "It opened on ⟦0⟧.", "values": ["12 September 2021"], "source": "It opened on 12 September 2021.",
     "target": "Abrió el ⟦0⟧.", "text": "Abrió el 12 September 2021."},
]
TEXT = "# ANSO abre. una oficina\n\nLa oficina. servirá. Abrió el 12 September 2021.\n"
SOURCE = "# ANSO opens an office\n\nThe office will serve Central Asia. It opened on 12 September 2021.\n"


def add_release(settings, slug="office", title="ANSO opens an office", langs=("es",)) -> dict[str, int]:
    ids = {}
    with db.session_scope(settings.db_url) as session:
        record = add_release_row(session, slug=slug, fingerprint="f1", source_text=SOURCE, title=title)
        for lang in langs:  # each with its document, as prepare stores it
            draft = store.add_draft(session, slug=slug, lang=lang, channel="release", fingerprint="f1",
                                    source_text=SOURCE, text=TEXT, meta={"segments": SEGMENTS},
                                    document=store.revision_document("release", lang, TEXT, record, SOURCE),
                                    qa=[{"kind": "identical_to_source", "segment": 2},
                                        {"kind": "glossary_term_missing", "segment": 0, "items": ["ANSO"]}])
            session.flush()
            ids[lang] = draft.id
    return ids


def add_post(settings, channel="x", slug="p") -> int:
    """A post of two translated sentences, as prepare leaves it."""
    segments = [{"key": "Hello world.", "values": [], "source": "Hello world.", "target": "Hola mundo.",
                 "text": "Hola mundo."},
                {"key": "Read more.", "values": [], "source": "Read more.", "target": "Lee más.", "text": "Lee más."}]
    with db.session_scope(settings.db_url) as session:
        store.upsert_release(session, slug=slug, title="P", date=dt.date(2021, 1, 1), publish_at=None,
                             fingerprint="f", record={}, source_file=None)
        draft = store.add_draft(session, slug=slug, lang="es", channel=channel, fingerprint="f",
                                source_text="Hello world. Read more.\n", text="Hola mundo. Lee más.\n",
                                meta={"segments": segments})
        session.flush()
        return draft.id


@pytest.fixture
def app(settings):
    reviewers.add_user(settings.db_url, "alice", PASSWORD, [])
    reviewers.add_user(settings.db_url, "esther", PASSWORD, ["es", "ar"])
    app = create_app(settings, PublishMode(on_approve=True, via_prefect=False))
    yield app
    assert app.state.publisher.wait(PUBLISH_WAIT), "a publish run outlived its test"


@pytest.fixture
def quiet_app(settings):
    """The app with approving not publishing: for tests about decisions, where a publish run
    (a tenth of a second in process) would move approved drafts on to published mid-test."""
    reviewers.add_user(settings.db_url, "alice", PASSWORD, [])
    reviewers.add_user(settings.db_url, "esther", PASSWORD, ["es", "ar"])
    return create_app(settings, PublishMode(on_approve=False, via_prefect=False))


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def signed_in(app, name="alice") -> TestClient:
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get("/signin").text)
    response = client.post("/signin", data={"name": name, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303, response.text
    return client


def form(client: TestClient, path: str) -> dict:
    """The hidden fields a page's forms carry (CSRF token, revision, and for decisions the status seen)."""
    html = client.get(path).text
    return {"csrf_token": csrf_of(html),
            "expected_revision": re.search(r'name="expected_revision" value="(\d+)"', html).group(1),
            "expected_status": re.search(r'name="expected_status" value="(\w+)"', html).group(1)}


def approve_all_forms(html: str) -> list[dict]:
    """Each approve-all form of a page, with the fields it carries (the drafts as listed: "id:revision:status")."""
    forms = re.findall(r'<form method="post" action="/approve-all">(.*?)</form>', html, re.S)
    return [{"csrf_token": csrf_of(f), "release": re.search(r'name="release" value="([^"]+)"', f).group(1),
             "lang": re.search(r'name="lang" value="([^"]+)"', f).group(1),
             "seen": re.findall(r'name="seen" value="([^"]+)"', f)} for f in forms]


def draft_row(settings, draft_id):
    with db.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, draft_id)
        return {"status": draft.status, "text": draft.text, "revision": draft.revision, "qa": draft.qa,
                "revisions": [(r.number, r.author, r.text) for r in draft.revisions]}


def test_requests_without_sign_in_are_refused(app, settings):
    ids = add_release(settings)
    client = TestClient(app, follow_redirects=False)
    for path in ("/", f"/drafts/{ids['es']}"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/signin")
    token = csrf_of(client.get("/signin").text)  # even with a valid CSRF token, no session, no action
    response = client.post(f"/drafts/{ids['es']}/approve", data={"csrf_token": token, "expected_revision": "1"})
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")
    assert draft_row(settings, ids["es"])["status"] == store.PENDING


def use_token(app, token: str) -> None:
    """The review page restarted with this shared token configured (PRESSFLOW_REVIEW_TOKEN)."""
    app.state.settings = app.state.settings.model_copy(update={"review_token": token})


def test_wrong_password_and_wrong_token_are_refused(app):
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get("/signin").text)
    assert client.post("/signin", data={"name": "alice", "password": "nope-nope", "csrf_token": token}).status_code == 401
    use_token(app, "team-secret-token")
    assert client.post("/signin", data={"name": "guest", "password": "other", "csrf_token": token}).status_code == 401
    # the shared token never signs anyone in under a named account
    assert client.post("/signin", data={"name": "alice", "password": "team-secret-token",
                                        "csrf_token": token}).status_code == 401
    assert client.get("/").status_code == 303


def test_repeated_failed_sign_ins_are_throttled(app):
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get("/signin").text)
    for _ in range(5):
        assert client.post("/signin", data={"name": "alice", "password": "guess", "csrf_token": token}).status_code == 401
    # The right password no longer helps for a while: a guesser cannot tell when they hit it.
    refused = client.post("/signin", data={"name": "Alice", "password": PASSWORD, "csrf_token": token})
    assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text
    assert client.get("/").status_code == 303
    signed_in(app, "esther")  # another account from the same address still signs in


def test_shared_token_signs_in_and_changing_it_signs_out(app):
    use_token(app, "team-secret-token")
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get("/signin").text)
    assert client.post("/signin", data={"name": "guest", "password": "team-secret-token",
                                        "csrf_token": token}).status_code == 303
    assert client.get("/").status_code == 200
    use_token(app, "a-new-token")
    assert client.get("/").status_code == 303


def test_session_cookie_is_httponly_and_samesite(app):
    client = TestClient(app, follow_redirects=False)
    cookie = client.get("/signin").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie


def test_post_without_csrf_token_is_refused(app, settings):
    ids = add_release(settings)
    client = signed_in(app)
    fields = form(client, f"/drafts/{ids['es']}")
    for token in (None, "forged"):
        data = {"expected_revision": fields["expected_revision"], **({"csrf_token": token} if token else {})}
        assert client.post(f"/drafts/{ids['es']}/approve", data=data).status_code == 403
        assert client.post(f"/drafts/{ids['es']}/save", data={**data, "text": "hacked"}).status_code == 403
    row = draft_row(settings, ids["es"])
    assert row["status"] == store.PENDING and row["text"] == TEXT


def test_segments_shown_side_by_side_with_qa_flag_at_the_segment(app, settings):
    ids = add_release(settings)
    html = signed_in(app).get(f"/drafts/{ids['es']}").text
    assert html.count('name="segment"') == 3
    flagged = re.search(r'<tr id="segment-3" class="flagged">(.*?)</tr>', html, re.S).group(1)
    assert "It opened on 12 September 2021." in flagged and "Same as the source" in flagged
    assert 'class="flagged"' not in re.search(r'<tr id="segment-2".*?>', html).group(0)
    first = re.search(r'<tr id="segment-1" class="flagged">(.*?)</tr>', html, re.S).group(1)
    assert "Glossary term not followed: ANSO" in first


def test_segment_edit_is_a_new_revision_and_feeds_the_memory(app, settings):
    ids = add_release(settings)
    client = signed_in(app)
    fields = form(client, f"/drafts/{ids['es']}")
    new = ["ANSO abre una oficina", "La oficina servirá a Asia Central.", "Abrió el 12 September 2021."]
    response = client.post(f"/drafts/{ids['es']}/save", data={**fields, "segment": new, "note": "fixed"})
    assert response.status_code == 303
    row = draft_row(settings, ids["es"])
    assert row["text"] == "# ANSO abre una oficina\n\nLa oficina servirá a Asia Central. Abrió el 12 September 2021.\n"
    assert [(n, a) for n, a, _ in row["revisions"]] == [(1, "pressflow"), (2, "alice")]
    assert row["revisions"][0][2] == TEXT  # history kept, not overwritten
    memory = SqlMemory(settings.db_url).lookup("en", "es", "human", [s["key"] for s in SEGMENTS])
    assert memory == {"⟦0⟧ opens an office": "⟦0⟧ abre una oficina",
                      "The office will serve Central Asia.": "La oficina servirá a Asia Central."}
    # the page shows the new text at its segments after the edit
    html = client.get(f"/drafts/{ids['es']}").text
    assert ">La oficina servirá a Asia Central.</textarea>" in html


def test_a_web_edit_recomputes_the_flags_the_page_and_the_queue_show(app, settings):
    ids = add_release(settings)
    client = signed_in(app)
    assert "identical_to_source" in {f["kind"] for f in draft_row(settings, ids["es"])["qa"]}
    fields = form(client, f"/drafts/{ids['es']}")
    # Sentence 1 loses ANSO, sentence 3 gets its number wrong; sentence 2 is now a translation.
    new = ["Abre una oficina", "La oficina servirá a Asia Central.", "Abrió el 13 September 2021."]
    response = client.post(f"/drafts/{ids['es']}/save", data={**fields, "segment": new})
    assert response.status_code == 303
    qa = draft_row(settings, ids["es"])["qa"]
    assert {(f["kind"], f["segment"]) for f in qa} >= {("protected_missing", 0), ("numbers_differ", 2)}
    assert "identical_to_source" not in {f["kind"] for f in qa}  # gone with the text that earned it
    html = client.get(f"/drafts/{ids['es']}").text
    first = re.search(r'<tr id="segment-1" class="flagged">(.*?)</tr>', html, re.S).group(1)
    assert "Protected item missing: ANSO" in first and "must come through translation unchanged" in first
    third = re.search(r'<tr id="segment-3" class="flagged">(.*?)</tr>', html, re.S).group(1)
    assert "Numbers differ: 12, 13" in third
    assert "Saved as revision 2. 3 edited sentence(s) will be reused" in html
    queue = client.get("/?qa=numbers_differ").text
    assert "ANSO opens an office" in queue and '<option value="numbers_differ" selected>' in queue
    assert "No drafts match" in client.get("/?qa=doubled_word").text


def test_a_huge_save_is_refused_at_once_and_the_page_stays_quick(app, settings):
    ids = add_release(settings)
    client = signed_in(app)
    fields = form(client, f"/drafts/{ids['es']}")
    huge = (TEXT * (165_000 // len(TEXT) + 1))[:165_000]  # the text pasted over and over: 165 kB
    started = time.perf_counter()
    response = client.post(f"/drafts/{ids['es']}/save", data={**fields, "text": huge})
    assert response.status_code == 303 and time.perf_counter() - started < 5
    html = client.get(f"/drafts/{ids['es']}").text
    assert "a draft may have at most 50,000" in html and draft_row(settings, ids["es"])["revision"] == 1
    # Near the limit the save goes through, aligned in bounded time, and later views align nothing.
    sentence = TEXT.split("\n\n")[1].strip() + " "
    long = "# ANSO abre. una oficina\n\n" + (sentence * (49_000 // len(sentence))).strip() + "\n"
    started = time.perf_counter()
    client.post(f"/drafts/{ids['es']}/save", data={**fields, "text": long})
    assert time.perf_counter() - started < 5 and draft_row(settings, ids["es"])["revision"] == 2
    started = time.perf_counter()
    for _ in range(3):
        assert client.get(f"/drafts/{ids['es']}").status_code == 200
    assert time.perf_counter() - started < 5


def test_conflicting_saves_are_detected(app, settings):
    ids = add_release(settings)
    alice, bob = signed_in(app, "alice"), signed_in(app, "esther")
    alice_form, bob_form = form(alice, f"/drafts/{ids['es']}"), form(bob, f"/drafts/{ids['es']}")
    first = alice.post(f"/drafts/{ids['es']}/save", data={**alice_form, "text": "# Alice's title\n\nAlice text.\n"})
    assert first.status_code == 303
    second = bob.post(f"/drafts/{ids['es']}/save", data={**bob_form, "text": "# Bob's title\n\nBob text.\n"})
    assert second.status_code == 409
    assert "Not saved: someone else changed this draft" in second.text
    assert "alice saved revision 2" in second.text
    assert "Alice text." in second.text and "Bob text." in second.text  # current text and theirs, both shown
    row = draft_row(settings, ids["es"])
    assert row["revision"] == 2 and "Alice text." in row["text"]
    # approving the text as first opened is refused too: bob has not seen alice's version
    bob.post(f"/drafts/{ids['es']}/approve", data=bob_form)
    assert draft_row(settings, ids["es"])["status"] == store.PENDING


def test_title_with_markup_is_shown_as_text(app, settings):
    ids = add_release(settings, title=EVIL_TITLE)
    client = signed_in(app)
    for path in ("/", f"/drafts/{ids['es']}"):
        html = client.get(path).text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt; launch" in html
        assert "<script>alert" not in html and "<b>bold</b>" not in html


def test_reviewer_is_limited_to_their_languages(app, settings):
    ids = add_release(settings, langs=("es", "zh"))
    client = signed_in(app, "esther")
    assert client.get(f"/drafts/{ids['es']}").status_code == 200
    assert client.get(f"/drafts/{ids['zh']}").status_code == 403
    token = form(client, f"/drafts/{ids['es']}")["csrf_token"]
    for action in ("approve", "save"):
        response = client.post(f"/drafts/{ids['zh']}/{action}",
                               data={"csrf_token": token, "expected_revision": "1", "text": "x"})
        assert response.status_code == 403
    response = client.post("/approve-all", data={"csrf_token": token, "release": "office", "lang": "zh"})
    assert response.status_code == 403
    assert f"/drafts/{ids['zh']}" not in client.get("/?status=all").text
    assert draft_row(settings, ids["zh"])["status"] == store.PENDING


def test_request_body_size_is_limited(app, settings):
    ids = add_release(settings)
    client = signed_in(app)
    fields = form(client, f"/drafts/{ids['es']}")
    response = client.post(f"/drafts/{ids['es']}/save", data={**fields, "text": "x" * (1024 * 1024 + 10)})
    assert response.status_code == 413
    assert draft_row(settings, ids["es"])["revision"] == 1


def test_right_to_left_language_is_shown_right_to_left(app, settings):
    ids = add_release(settings, langs=("ar",))
    html = signed_in(app, "esther").get(f"/drafts/{ids['ar']}").text
    assert re.search(r'<textarea id="seg-1" name="segment" lang="ar" dir="rtl"', html)
    assert 'lang="en" dir="ltr"' in html


def test_approve_publishes_at_once_and_the_feed_carries_the_text(prefect_harness, app, settings):
    """Without a Prefect deployment to call, approving runs the publish flow in this process, in the background."""
    ids = add_release(settings)
    client = signed_in(app)
    html = client.get(f"/drafts/{ids['es']}").text
    assert "Approving publishes at once, from this server" in html
    fields = form(client, f"/drafts/{ids['es']}")
    client.post(f"/drafts/{ids['es']}/save",
                data={**fields, "segment": ["ANSO abre su oficina", "Servirá a Asia Central.", "Abrió el 12 September 2021."]})
    response = client.post(f"/drafts/{ids['es']}/approve", data=form(client, f"/drafts/{ids['es']}"))
    assert response.status_code == 303
    assert "Publishing has started in the background" in client.get("/").text
    assert app.state.publisher.wait(PUBLISH_WAIT)
    assert draft_row(settings, ids["es"])["status"] == store.PUBLISHED
    assert re.search(r"Published 1 release language\(s\): \d+ files written, 0 unchanged\. \(finished",
                     client.get("/").text)
    assert client.get("/publishing").json()["running"] is False
    feed = feedparser.parse((settings.out_dir / "feeds" / "es" / "atom.xml").read_bytes())
    assert feed.entries[0].title == "ANSO abre su oficina"
    assert "Servirá a Asia Central." in feed.entries[0].content[0].value
    served = client.get("/feeds/es/atom.xml")  # the app serves the published outputs too
    assert served.status_code == 200 and b"ANSO abre su oficina" in served.content
    sitemap = client.get("/sitemap.xml")  # and the sitemap, which lists the pages it serves
    assert sitemap.status_code == 200 and sitemap.headers["content-type"].startswith("application/xml")
    for url in re.findall(r"<loc>([^<]+)</loc>", sitemap.text):
        assert client.get(url.removeprefix(settings.site_url)).status_code == 200, url


def test_reject_needs_a_reason_and_records_it(app, settings):
    ids = add_release(settings)
    client = signed_in(app)
    fields = form(client, f"/drafts/{ids['es']}")
    client.post(f"/drafts/{ids['es']}/reject", data={**fields, "reason": " "})
    assert draft_row(settings, ids["es"])["status"] == store.PENDING
    client.post(f"/drafts/{ids['es']}/reject", data={**fields, "reason": "wrong terminology"})
    assert draft_row(settings, ids["es"])["status"] == store.REJECTED
    assert "Rejected because: wrong terminology" in client.get(f"/drafts/{ids['es']}").text


def test_a_stale_decision_does_not_replace_one_made_in_an_earlier_request(quiet_app, settings):
    """Esther loaded the page while the draft was pending; Alice approved it; Esther's reject is refused."""
    app = quiet_app
    ids = add_release(settings)
    alice, esther = signed_in(app, "alice"), signed_in(app, "esther")
    alice_form, esther_form = form(alice, f"/drafts/{ids['es']}"), form(esther, f"/drafts/{ids['es']}")
    assert esther_form["expected_status"] == store.PENDING  # the form carries the status she saw
    assert alice.post(f"/drafts/{ids['es']}/approve", data=alice_form).status_code == 303
    refused = esther.post(f"/drafts/{ids['es']}/reject", data={**esther_form, "reason": "wrong terminology"})
    assert refused.status_code == 409
    alert = re.search(r'<section class="error-box" role="alert".*?</section>', refused.text, re.S).group(0)
    assert "Not rejected: someone else decided on this draft first" in alert
    assert re.search(r"alice approved it at \d{4}-\d\d-\d\d \d\d:\d\d UTC, after you saw it pending\.", alert)
    assert "Now: approved by alice, revision 1." in alert
    assert "wrong terminology</textarea>" in alert  # her reason, kept for her to use again
    # the page is the draft as it is now, with forms carrying the new state
    assert "status <strong>approved</strong> by alice" in refused.text
    assert 'name="expected_status" value="approved"' in refused.text
    row = draft_row(settings, ids["es"])
    assert row["status"] == store.APPROVED
    with db.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, ids["es"])
        assert (draft.reviewer, draft.reason) == ("alice", None)
    # approving with the same stale form is refused too: alice decided, not esther
    assert esther.post(f"/drafts/{ids['es']}/approve", data=esther_form).status_code == 409
    # having seen the new state, she may decide again
    fresh = form(esther, f"/drafts/{ids['es']}")
    assert esther.post(f"/drafts/{ids['es']}/reject", data={**fresh, "reason": "wrong terminology"}).status_code == 303
    assert draft_row(settings, ids["es"])["status"] == store.REJECTED


def test_the_same_decision_sent_twice_is_not_an_error(app, settings):
    ids = add_release(settings)
    client = signed_in(app)
    fields = form(client, f"/drafts/{ids['es']}")
    for _ in range(2):  # a double click without JavaScript: the second finds her own decision
        assert client.post(f"/drafts/{ids['es']}/reject", data={**fields, "reason": "names"}).status_code == 303
    assert draft_row(settings, ids["es"])["status"] == store.REJECTED
    # but a different reason from the stale form is not silently dropped nor silently applied
    assert client.post(f"/drafts/{ids['es']}/reject", data={**fields, "reason": "other"}).status_code == 409


def test_a_decision_form_without_the_status_seen_is_refused(app, settings):
    ids = add_release(settings)
    client = signed_in(app)
    fields = form(client, f"/drafts/{ids['es']}")
    del fields["expected_status"]
    response = client.post(f"/drafts/{ids['es']}/approve", data=fields)
    assert response.status_code == 303
    assert "This form is from an older version of the page" in client.get(response.headers["location"]).text
    assert draft_row(settings, ids["es"])["status"] == store.PENDING


def _posts_of_one_release(settings) -> dict[str, int]:
    ids = {"release": add_release(settings, slug="office")["es"]}
    for channel in ("x", "linkedin"):
        ids[channel] = add_post(settings, channel, slug="office")
    return ids


def test_approve_all_refuses_when_a_listed_draft_changed_since_the_page_was_loaded(app, settings):
    ids = _posts_of_one_release(settings)
    alice, esther = signed_in(app, "alice"), signed_in(app, "esther")
    listed = approve_all_forms(alice.get("/").text)
    assert len(listed) == 1 and len(listed[0]["seen"]) == 3
    # meanwhile esther saves a new text of the X post and rejects the LinkedIn post
    x_form = form(esther, f"/drafts/{ids['x']}")
    esther.post(f"/drafts/{ids['x']}/save", data={**x_form, "text": "Texto de Esther.\n"})
    linkedin_form = form(esther, f"/drafts/{ids['linkedin']}")
    esther.post(f"/drafts/{ids['linkedin']}/reject", data={**linkedin_form, "reason": "too long"})

    refused = alice.post("/approve-all", data=listed[0])
    assert refused.status_code == 409
    alert = re.search(r'<section class="error-box" role="alert".*?</section>', refused.text, re.S).group(0)
    assert "Nothing was approved: 2 of the 3 draft(s) you saw changed since you loaded the page" in alert
    x_item = re.search(rf'Draft {ids["x"]} \(x\)</a>: (.*?)</li>', alert, re.S).group(1)
    assert "esther saved revision 2" in x_item and "after you opened revision 1" in x_item
    assert "Now: pending, revision 2." in x_item
    linkedin_item = re.search(rf'Draft {ids["linkedin"]} \(linkedin\)</a>: (.*?)</li>', alert, re.S).group(1)
    assert "esther rejected it" in linkedin_item and "(reason: too long)" in linkedin_item
    assert "Now: rejected by esther, revision 1." in linkedin_item
    # nothing approved: not the unchanged draft, not the text alice never saw, not over the rejection
    assert draft_row(settings, ids["release"])["status"] == store.PENDING
    assert draft_row(settings, ids["x"])["status"] == store.PENDING
    assert draft_row(settings, ids["linkedin"])["status"] == store.REJECTED
    # the queue shown with the refusal carries the drafts as they are now: approving again works
    again = approve_all_forms(refused.text)[0]
    assert sorted(again["seen"]) == sorted([f"{ids['release']}:1:draft", f"{ids['x']}:2:draft"])
    assert alice.post("/approve-all", data=again).status_code == 303
    assert draft_row(settings, ids["x"])["status"] == store.APPROVED
    assert draft_row(settings, ids["linkedin"])["status"] == store.REJECTED


def test_approve_all_undoes_its_approvals_when_a_draft_changes_mid_approval(app, settings, monkeypatch):
    """The look before approving passed; a draft changed between it and that draft's own write."""
    ids = _posts_of_one_release(settings)
    alice = signed_in(app, "alice")
    listed = approve_all_forms(alice.get("/").text)[0]
    last = max(int(value.split(":")[0]) for value in listed["seen"])
    real_set_status, calls = store.set_status, []

    def set_status_while_esther_rejects(session, draft, *args, **kwargs):
        if not calls:  # another request decides on the last draft before approve-all reaches it
            with db.session_scope(settings.db_url) as other:
                real_set_status(other, store.get_draft(other, last), store.REJECTED, reviewer="esther", reason="no")
        calls.append(draft.id)
        return real_set_status(session, draft, *args, **kwargs)

    monkeypatch.setattr(store, "set_status", set_status_while_esther_rejects)
    refused = alice.post("/approve-all", data=listed)
    assert refused.status_code == 409
    assert calls[-1] == last and len(calls) == 3  # the first two were approved, then the last one failed
    assert "Nothing was approved: 1 of the 3 draft(s) you saw changed" in refused.text
    assert re.search(rf'Draft {last} \(\w+\)</a>: esther rejected it at .*?\(reason: no\)', refused.text)
    statuses = {name: draft_row(settings, draft_id)["status"] for name, draft_id in ids.items()}
    assert statuses == {name: store.REJECTED if draft_id == last else store.PENDING for name, draft_id in ids.items()}


def test_approve_all_leaves_drafts_it_did_not_list_and_refuses_other_releases_drafts(app, settings):
    ids = _posts_of_one_release(settings)
    other = add_release(settings, slug="forum", title="Green forum")["es"]
    client = signed_in(app)
    listed = next(f for f in approve_all_forms(client.get("/?channel=x").text) if f["release"] == "office")
    assert listed["seen"] == [f"{ids['x']}:1:draft"]  # the filter shows only the X post: only it is approved
    smuggled = {**listed, "seen": [*listed["seen"], f"{other}:1:draft"]}
    assert client.post("/approve-all", data=smuggled).status_code == 403
    assert draft_row(settings, other)["status"] == store.PENDING
    response = client.post("/approve-all", data=listed)
    assert response.status_code == 303
    assert "2 other pending draft(s), not listed on your page" in client.get("/").text
    assert [draft_row(settings, ids[c])["status"] for c in ("release", "x", "linkedin")] == [
        store.PENDING, store.APPROVED, store.PENDING]


def test_queue_groups_counts_filters_and_approve_all(prefect_harness, app, settings):
    add_release(settings, slug="office", langs=("es", "zh"))
    add_release(settings, slug="forum", title="Green forum", langs=("es",))
    client = signed_in(app)
    html = client.get("/").text
    assert "Pending: 3" in html and html.index("ANSO opens an office") < html.index("Green forum")
    assert "Green forum" not in client.get("/?lang=zh").text
    assert "No drafts match" in client.get("/?qa=protected_missing").text
    office_es = next(f for f in approve_all_forms(html) if (f["release"], f["lang"]) == ("office", "es"))
    assert client.post("/approve-all", data=office_es).status_code == 303
    assert app.state.publisher.wait(PUBLISH_WAIT)
    html = client.get("/").text
    assert "Pending: 2" in html and "Published: 1" in html


def test_a_long_queue_shows_its_oldest_groups_and_says_how_many_there_are(app, settings, monkeypatch):
    from pressflow.review_app import queue

    add_release(settings, slug="office", langs=("es", "zh"))
    add_release(settings, slug="forum", title="Green forum", langs=("es",))
    monkeypatch.setattr(queue, "QUEUE_GROUPS", 2)
    html = signed_in(app).get("/").text
    assert "Pending: 3" in html  # counts cover the whole queue, not the page
    assert "ANSO opens an office" in html and "Green forum" not in html
    assert "Showing the oldest 2 of\n  3 releases and languages" in html
    assert [(f["release"], f["lang"]) for f in approve_all_forms(html)] == [("office", "es"), ("office", "zh")]
    assert "Showing the oldest" not in signed_in(app).get("/?lang=es").text


def test_layout_follows_edits_and_gives_up_when_the_glue_is_gone():
    layout = first_layout(TEXT, SEGMENTS)
    assert layout.segments == tuple(s["text"] for s in SEGMENTS) and layout.text() == TEXT
    edited = layout.with_segments(["ANSO inaugura. Una oficina", SEGMENTS[1]["text"], "Se abrió el 12 September 2021."])
    followed = follow(layout, edited.text())
    assert followed == edited
    assert changed_segments(SEGMENTS, layout, followed) == {
        "⟦0⟧ opens an office": "⟦0⟧ inaugura. Una oficina", "It opened on ⟦0⟧.": "Se abrió el ⟦0⟧."}
    assert follow(layout, "All one line, headings gone.") is None


def test_layout_of_a_draft_follows_its_revisions(settings):
    ids = add_release(settings)
    with db.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, ids["es"])
        store.edit_draft(session, draft, TEXT.replace("servirá.", "servirá a Asia."), author="cli")
        store.edit_draft(session, draft, draft.text.replace("# ANSO abre.", "# ANSO abre"), author="cli")
        assert current_layout(draft).segments == ("ANSO abre una oficina", "La oficina. servirá a Asia.",
                                                  "Abrió el 12 September 2021.")


def test_post_length_is_counted_as_the_platform_counts(app, settings):
    with db.session_scope(settings.db_url) as session:
        store.upsert_release(session, slug="p", title="P", date=dt.date(2021, 1, 1), publish_at=None,
                             fingerprint="f", record={}, source_file=None)
        draft = store.add_draft(session, slug="p", lang="zh", channel="x", fingerprint="f", source_text="x",
                                text="中文 https://example.org/a/very/long/path/that/is/long\n")
        session.flush()
        draft_id = draft.id
    html = signed_in(app).get(f"/drafts/{draft_id}").text
    # 2 CJK characters weigh 2 each, the space 1, the link 23, the newline 1
    assert "29 of 280" in html and 'data-platform="x"' in html


def test_users_cli_adds_an_account_from_a_password_file(tmp_path, settings):
    from pressflow.cli import app as cli

    secret = tmp_path / "pw"
    secret.write_text("s3cret-enough\n")
    result = CliRunner().invoke(cli, ["users", "add", "lin", "--languages", "zh, es", "--password-file", str(secret),
                                      "--out", str(settings.out_dir)])
    assert result.exit_code == 0, result.output
    assert reviewers.authenticate(settings.db_url, "lin", "s3cret-enough") == ["zh", "es"]
    assert reviewers.authenticate(settings.db_url, "lin", "wrong") is None
    short = tmp_path / "short"
    short.write_text("abc")
    result = CliRunner().invoke(cli, ["users", "add", "lin", "--password-file", str(short), "--out", str(settings.out_dir)])
    assert result.exit_code == 1 and "at least 8 characters" in result.output


def test_secret_key_file_is_private(app, settings):
    path = settings.out_dir / "state" / "review-secret-key"
    assert path.stat().st_mode & 0o777 == 0o600


def test_publish_through_prefect_starts_no_run_per_approval(prefect_harness, settings):
    """With a Prefect server, the page starts no run of its own: the approval is an event, and
    the `publish` deployment's trigger makes one run of a burst (tests/test_runs_events.py)."""
    from prefect.client.orchestration import get_client

    from pressflow.flows.publish import publish_flow
    from pressflow.review_app.publishing import mode_from_environment

    assert mode_from_environment().via_prefect  # the harness configures a Prefect API
    publish_flow.to_deployment(name="publish").apply()
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("pressflow-publish/publish")
        before = [r.id for r in client.read_flow_runs() if r.deployment_id == deployment.id]
        messages = [Publisher(settings, PublishMode(on_approve=True, via_prefect=True)).request() for _ in range(3)]
        after = [r.id for r in client.read_flow_runs() if r.deployment_id == deployment.id]
    assert after == before
    assert "pressflow-publish/publish" in messages[0] and "one run for a burst" in messages[0]


# --- saves and decisions at the same moment ----------------------------------------------------


def _open_session(settings):
    """A session of its own, as a second request would have, outside session_scope."""
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(db.get_engine(settings.db_url), expire_on_commit=False)()


def test_two_saves_read_before_either_wrote_exactly_one_wins(settings):
    """Both saves pass the 'still at revision 1?' check; the store's compare-and-set refuses the later."""
    ids = add_release(settings)
    late = _open_session(settings)
    try:
        stale = store.get_draft(late, ids["es"])  # read at revision 1, before the other save
        with db.session_scope(settings.db_url) as first:
            store.edit_draft(first, store.get_draft(first, ids["es"]), "Ana.\n", author="ana", expected_revision=1)
        refusal = r"changed by ana \(revision 2\) after you opened it \(revision 1\)"
        with pytest.raises(store.DraftChanged, match=refusal):
            store.edit_draft(late, stale, "Ben.\n", author="ben", expected_revision=1)
    finally:
        late.rollback()
        late.close()
    row = draft_row(settings, ids["es"])
    assert (row["revision"], row["text"]) == (2, "Ana.\n")
    assert [(n, a) for n, a, _ in row["revisions"]] == [(1, "pressflow"), (2, "ana")]


def test_a_decision_read_before_a_save_or_another_decision_is_refused(settings):
    ids = add_release(settings, langs=("es", "zh"))
    for lang, meanwhile, expected in (
            ("es", lambda s, d: store.edit_draft(s, d, "Ana.\n", author="ana"), r"changed by ana \(revision 2\)"),
            ("zh", lambda s, d: store.set_status(s, d, store.APPROVED, reviewer="ana"), "became approved by ana")):
        late = _open_session(settings)
        try:
            stale = store.get_draft(late, ids[lang])
            with db.session_scope(settings.db_url) as first:
                meanwhile(first, store.get_draft(first, ids[lang]))
            with pytest.raises(store.DraftChanged, match=expected):
                store.set_status(late, stale, store.REJECTED, reviewer="ben", reason="no", expected_revision=1)
        finally:
            late.rollback()
            late.close()
    assert draft_row(settings, ids["es"])["status"] == store.PENDING  # nobody decided on revision 2
    assert draft_row(settings, ids["zh"])["status"] == store.APPROVED  # ana's approval stands


def test_concurrent_saves_of_one_revision_one_wins_the_others_see_the_conflict(app, settings):
    """Several reviewers press Save at the same moment on the same revision, through the page."""
    ids = add_release(settings)
    clients = [signed_in(app, name) for name in ("alice", "esther", "alice", "esther")]
    fields = [form(client, f"/drafts/{ids['es']}") for client in clients]
    start, statuses = threading.Barrier(len(clients)), [None] * len(clients)

    def save(i):
        start.wait()
        response = clients[i].post(f"/drafts/{ids['es']}/save", data={**fields[i], "text": f"# Texto {i}\n\nUno.\n"})
        statuses[i] = response.status_code

    threads = [threading.Thread(target=save, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) == [303, 409, 409, 409]
    row = draft_row(settings, ids["es"])
    winner = statuses.index(303)
    assert row["revision"] == 2 and row["text"] == f"# Texto {winner}\n\nUno.\n"
    assert [n for n, _, _ in row["revisions"]] == [1, 2]


def test_concurrent_saves_in_the_store_leave_unique_revision_numbers(settings):
    ids = add_release(settings)
    start, outcomes = threading.Barrier(6), []

    def save(i):
        start.wait()
        try:
            outcomes.append(service.edit(settings, ids["es"], f"# Texto {i}\n\nTexto.\n", author=f"r{i}", expected_revision=1).revision)
        except ReviewError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=save, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert outcomes.count(2) == 1 and all("after you opened it (revision 1)" in o for o in outcomes if o != 2)
    assert [n for n, _, _ in draft_row(settings, ids["es"])["revisions"]] == [1, 2]


def test_the_database_refuses_a_second_row_for_one_revision_number(settings):
    ids = add_release(settings)
    with pytest.raises(IntegrityError):
        with db.session_scope(settings.db_url) as session:
            session.add(store.Revision(draft_id=ids["es"], number=1, text="again", author="x"))


def test_an_older_store_gets_the_unique_index_and_raced_revisions_are_renumbered(settings):
    """A store written before the index, where two saves raced: opening it keeps both texts, numbered apart."""
    ids = add_release(settings)
    with db.get_engine(settings.db_url).begin() as connection:
        connection.exec_driver_sql("DROP INDEX uq_revisions_draft_number")
        connection.execute(store.Revision.__table__.insert().values(
            draft_id=ids["es"], number=1, text="Raced.\n", author="ben", created_at=db.utcnow()))
        connection.exec_driver_sql("DELETE FROM schema_migrations")  # made before numbered migrations
    db._engines.pop(settings.db_url).dispose()  # as a new process opening the old store
    db.get_engine(settings.db_url)
    row = draft_row(settings, ids["es"])
    assert [(n, a) for n, a, _ in row["revisions"]] == [(1, "pressflow"), (2, "ben")]
    assert (row["revision"], row["text"]) == (2, "Raced.\n")
    with pytest.raises(IntegrityError), db.session_scope(settings.db_url) as session:
        session.add(store.Revision(draft_id=ids["es"], number=2, text="again", author="x"))


# --- live length count -------------------------------------------------------------------------

# X counts an emoji (even one joined from several code points) as 2 and a link, with or
# without "https://", as 23: a count in the browser by code points gets both wrong.
TYPED = "Lanzamiento 👩‍🔬🎉 en example.org/foro/2021 y más"


def test_length_endpoint_counts_the_text_a_save_would_store(app, settings):
    draft_id = add_post(settings, "x")
    client = signed_in(app)
    token = form(client, f"/drafts/{draft_id}")["csrf_token"]
    whole = client.post(f"/drafts/{draft_id}/length", data={"csrf_token": token, "text": TYPED})
    x = PLATFORMS["x"]
    assert whole.json() == {"length": x.count(TYPED), "limit": 280, "over": False, "text": f"{x.count(TYPED)} of 280"}
    assert x.count(TYPED) == 12 + 2 + 2 + 4 + 23 + 6  # "Lanzamiento ", 👩‍🔬, 🎉, " en ", the link, " y más"
    # sentence by sentence: the server puts them together as saving does (glue, one line each)
    segments = ["Hola 🌍\n mundo.", "Lee example.org/x ahora."]
    counted = client.post(f"/drafts/{draft_id}/length", data={"csrf_token": token, "segment": segments}).json()
    client.post(f"/drafts/{draft_id}/save", data={**form(client, f"/drafts/{draft_id}"), "segment": segments})
    saved = draft_row(settings, draft_id)["text"]
    assert saved == "Hola 🌍 mundo. Lee example.org/x ahora.\n" and counted["length"] == x.count(saved)
    assert f"{counted['length']} of 280" in client.get(f"/drafts/{draft_id}").text


def test_length_endpoint_needs_sign_in_and_csrf_and_limits_size(app, settings):
    draft_id, release_id = add_post(settings, "mastodon"), add_release(settings)["es"]
    client = signed_in(app)
    token = form(client, f"/drafts/{draft_id}")["csrf_token"]
    assert client.post(f"/drafts/{draft_id}/length", data={"text": "hola"}).status_code == 403
    assert client.post(f"/drafts/{draft_id}/length", data={"text": "hola", "csrf_token": "forged"}).status_code == 403
    anonymous = TestClient(app, follow_redirects=False)
    anonymous_token = csrf_of(anonymous.get("/signin").text)
    refused = anonymous.post(f"/drafts/{draft_id}/length", data={"text": "hola", "csrf_token": anonymous_token})
    assert refused.status_code == 401 and "length" not in refused.json()
    too_long = client.post(f"/drafts/{draft_id}/length", data={"text": "a" * 20_001, "csrf_token": token})
    assert too_long.status_code == 413
    assert client.post(f"/drafts/{release_id}/length", data={"text": "x", "csrf_token": token}).status_code == 404
    assert client.post(f"/drafts/{draft_id}/length", data={"text": "hola", "csrf_token": token}).json()["length"] == 4


def test_draft_page_asks_the_server_for_the_live_count(app, settings):
    html = signed_in(app).get(f"/drafts/{add_post(settings, 'bluesky')}").text
    assert html.count('data-url="/drafts/') == 2 and "fetch(out.dataset.url" in html
    assert "connect-src 'self'" in signed_in(app).get("/").headers["content-security-policy"]


# --- publishing mode ---------------------------------------------------------------------------


def test_scheduled_mode_approving_does_not_publish_and_says_who_will(settings, monkeypatch):
    monkeypatch.setenv("PRESSFLOW_PUBLISH_ON_APPROVE", "0")
    reviewers.add_user(settings.db_url, "alice", PASSWORD, [])
    # the mode from the environment's settings, as `pressflow serve` makes them
    app = create_app(Settings(out_dir=settings.out_dir))
    ids = add_release(settings)
    client = signed_in(app)
    html = client.get(f"/drafts/{ids['es']}").text
    assert f"Approved drafts are published by the scheduled deployment {SCHEDULED_DEPLOYMENT}" in html
    assert "and publish it" not in html
    response = client.post(f"/drafts/{ids['es']}/approve", data=form(client, f"/drafts/{ids['es']}"))
    assert response.status_code == 303
    page = client.get(response.headers["location"]).text
    assert f"Publishing is left to the scheduled deployment {SCHEDULED_DEPLOYMENT}." in page
    assert 'id="publishing"' not in page and app.state.publisher.status() is None  # no run started
    assert draft_row(settings, ids["es"])["status"] == store.APPROVED
    assert not (settings.out_dir / "feeds").exists()


def test_publisher_runs_one_flow_at_a_time_and_once_more_for_approvals_made_meanwhile(settings, monkeypatch):
    from pressflow.review_app import publishing

    runs, finish = [], threading.Event()

    def run_flow(_settings):  # stands in for the publish flow, which tests above run for real
        runs.append(threading.current_thread().name)
        finish.wait(30)
        return publishing.Outcome(True, f"Run {len(runs)}.", dt.datetime.now(dt.timezone.utc))

    monkeypatch.setattr(publishing, "_run_publish_flow", run_flow)
    publisher = Publisher(settings, PublishMode(on_approve=True, via_prefect=False))
    assert publisher.status() is None
    publisher.request()
    while not runs:
        threading.Event().wait(0.01)
    publisher.request()  # two approvals while the first run may already have read the store
    publisher.request()
    assert publisher.status()["running"] and "under way" in publisher.status()["text"]
    finish.set()
    assert publisher.wait(30)
    assert runs == ["pressflow-publish", "pressflow-publish"]  # one more run, not one per approval
    status = publisher.status()
    assert (status["running"], status["ok"]) == (False, True) and status["text"].startswith("Run 2. (finished ")


# --- the browser tests' own set-up ---------------------------------------------------------------


@pytest.mark.parametrize("ci", ["", "1"])
def test_browser_tests_skip_without_chromium_but_fail_on_ci(ci, tmp_path):
    env = {**os.environ, "PRESSFLOW_CHROMIUM": str(tmp_path / "no-chromium"), "CI": ci}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--co",
                             str(Path(__file__).with_name("test_review_browser.py"))],
                            env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert f"no Chromium at {tmp_path / 'no-chromium'} (apt-get install chromium)" in output
    if ci:
        assert result.returncode not in (0, 5) and "CI is set: the browser tests must run" in output
    else:
        assert result.returncode == 5 and "SKIPPED" in output  # 5: nothing collected, nothing failed


def test_the_source_column_shows_the_english_dateline_of_a_translated_release(app, settings, argos_models,
                                                                              monkeypatch):
    from pressflow.prepare import pipeline
    from pressflow.records import Event

    monkeypatch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", "24")
    event = Event(title="Vaccines and global health", date="2021-06-04", summary="Scientists met.",
                  location={"city": "Shanghai"}, languages=["es"])
    pipeline.prepare([(None, event)], settings)
    with db.session_scope(settings.db_url) as session:
        [draft_id] = [d.id for d in store.list_drafts(session, lang="es", channel="release")]
    html = signed_in(app).get(f"/drafts/{draft_id}").text
    rows = re.findall(r'<tr id="segment-\d+".*?>\s*<td class="num">\d+</td>\s*<td[^>]*>(.*?)</td>\s*<td>(.*?)</td>',
                      html, re.S)
    [(source, translation)] = [(s, t) for s, t in rows if "junio" in t]
    assert "Shanghái, 4 de junio de 2021." in translation  # kept as the Spanish reader reads it (city too)
    assert source.strip() == "Shanghai, 4 June 2021."  # the English source, as the column's head says
    assert "junio" not in "".join(s for s, _ in rows)
