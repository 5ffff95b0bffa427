"""The review page through its HTTP interface (FastAPI's TestClient), against a real SQLite store."""

from __future__ import annotations

import datetime as dt
import re

import feedparser
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pressflow import store, users
from pressflow.review_app import create_app
from pressflow.review_app.layout import changed_segments, current_layout, first_layout, follow
from pressflow.review_app.publishing import PublishMode

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
    with store.session_scope(settings.db_url) as session:
        store.upsert_release(session, slug=slug, title=title, date=dt.date(2021, 9, 12), publish_at=None,
                             fingerprint="f1", record={}, source_file=None)
        for lang in langs:
            draft = store.add_draft(session, slug=slug, lang=lang, channel="release", fingerprint="f1",
                                    source_text=SOURCE, text=TEXT, meta={"segments": SEGMENTS},
                                    qa=[{"kind": "identical_to_source", "segment": 2},
                                        {"kind": "glossary_term_missing", "segment": 0, "items": ["ANSO"]}])
            session.flush()
            ids[lang] = draft.id
    return ids


@pytest.fixture
def app(settings):
    users.add_user(settings.db_url, "alice", PASSWORD, [])
    users.add_user(settings.db_url, "esther", PASSWORD, ["es", "ar"])
    return create_app(settings, PublishMode(on_approve=True, via_prefect=False))


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def signed_in(app, name="alice") -> TestClient:
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get("/signin").text)
    response = client.post("/signin", data={"name": name, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303, response.text
    return client


def form(client: TestClient, path: str) -> dict:
    """The hidden fields a page's forms carry (CSRF token, revision)."""
    html = client.get(path).text
    return {"csrf_token": csrf_of(html),
            "expected_revision": re.search(r'name="expected_revision" value="(\d+)"', html).group(1)}


def draft_row(settings, draft_id):
    with store.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, draft_id)
        return {"status": draft.status, "text": draft.text, "revision": draft.revision,
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


def test_wrong_password_and_wrong_token_are_refused(app, monkeypatch):
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get("/signin").text)
    assert client.post("/signin", data={"name": "alice", "password": "nope-nope", "csrf_token": token}).status_code == 401
    monkeypatch.setenv("PRESSFLOW_REVIEW_TOKEN", "team-secret-token")
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


def test_shared_token_signs_in_and_changing_it_signs_out(app, monkeypatch):
    monkeypatch.setenv("PRESSFLOW_REVIEW_TOKEN", "team-secret-token")
    client = TestClient(app, follow_redirects=False)
    token = csrf_of(client.get("/signin").text)
    assert client.post("/signin", data={"name": "guest", "password": "team-secret-token",
                                        "csrf_token": token}).status_code == 303
    assert client.get("/").status_code == 200
    monkeypatch.setenv("PRESSFLOW_REVIEW_TOKEN", "a-new-token")
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
    assert "Glossary term not used: ANSO" in first


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
    memory = store.SqlMemory(settings.db_url).lookup("en", "es", "human", [s["key"] for s in SEGMENTS])
    assert memory == {"⟦0⟧ opens an office": "⟦0⟧ abre una oficina",
                      "The office will serve Central Asia.": "La oficina servirá a Asia Central."}
    # the page shows the new text at its segments after the edit
    html = client.get(f"/drafts/{ids['es']}").text
    assert ">La oficina servirá a Asia Central.</textarea>" in html


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


def test_approve_publishes_at_once_and_the_feed_carries_the_text(app, settings):
    ids = add_release(settings)
    client = signed_in(app)
    html = client.get(f"/drafts/{ids['es']}").text
    assert "Approving publishes at once, from this server" in html
    fields = form(client, f"/drafts/{ids['es']}")
    client.post(f"/drafts/{ids['es']}/save",
                data={**fields, "segment": ["ANSO abre su oficina", "Servirá a Asia Central.", "Abrió el 12 September 2021."]})
    response = client.post(f"/drafts/{ids['es']}/approve", data=form(client, f"/drafts/{ids['es']}"))
    assert response.status_code == 303
    assert draft_row(settings, ids["es"])["status"] == store.PUBLISHED
    feed = feedparser.parse((settings.out_dir / "feeds" / "es" / "atom.xml").read_bytes())
    assert feed.entries[0].title == "ANSO abre su oficina"
    assert "Servirá a Asia Central." in feed.entries[0].content[0].value
    served = client.get("/feeds/es/atom.xml")  # the app serves the published outputs too
    assert served.status_code == 200 and b"ANSO abre su oficina" in served.content


def test_reject_needs_a_reason_and_records_it(app, settings):
    ids = add_release(settings)
    client = signed_in(app)
    fields = form(client, f"/drafts/{ids['es']}")
    client.post(f"/drafts/{ids['es']}/reject", data={**fields, "reason": " "})
    assert draft_row(settings, ids["es"])["status"] == store.PENDING
    client.post(f"/drafts/{ids['es']}/reject", data={**fields, "reason": "wrong terminology"})
    assert draft_row(settings, ids["es"])["status"] == store.REJECTED
    assert "Rejected because: wrong terminology" in client.get(f"/drafts/{ids['es']}").text


def test_queue_groups_counts_filters_and_approve_all(app, settings):
    add_release(settings, slug="office", langs=("es", "zh"))
    add_release(settings, slug="forum", title="Green forum", langs=("es",))
    client = signed_in(app)
    html = client.get("/").text
    assert "Pending: 3" in html and html.index("ANSO opens an office") < html.index("Green forum")
    assert "Green forum" not in client.get("/?lang=zh").text
    assert "No drafts match" in client.get("/?qa=protected_missing").text
    token = csrf_of(html)
    client.post("/approve-all", data={"csrf_token": token, "release": "office", "lang": "es"})
    html = client.get("/").text
    assert "Pending: 2" in html and "Published: 1" in html


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
    with store.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, ids["es"])
        store.edit_draft(session, draft, TEXT.replace("servirá.", "servirá a Asia."), author="cli")
        store.edit_draft(session, draft, draft.text.replace("# ANSO abre.", "# ANSO abre"), author="cli")
        assert current_layout(draft).segments == ("ANSO abre una oficina", "La oficina. servirá a Asia.",
                                                  "Abrió el 12 September 2021.")


def test_post_length_is_counted_as_the_platform_counts(app, settings):
    with store.session_scope(settings.db_url) as session:
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
    assert users.authenticate(settings.db_url, "lin", "s3cret-enough") == ["zh", "es"]
    assert users.authenticate(settings.db_url, "lin", "wrong") is None
    short = tmp_path / "short"
    short.write_text("abc")
    result = CliRunner().invoke(cli, ["users", "add", "lin", "--password-file", str(short), "--out", str(settings.out_dir)])
    assert result.exit_code == 1 and "at least 8 characters" in result.output


def test_secret_key_file_is_private(app, settings):
    path = settings.out_dir / "state" / "review-secret-key"
    assert path.stat().st_mode & 0o777 == 0o600


def test_publish_through_prefect_starts_a_run_of_the_publish_deployment(prefect_harness, settings):
    """With a Prefect server, approving starts a run of `pressflow-publish/publish` (a worker runs it)."""
    from prefect.client.orchestration import get_client
    from prefect.utilities.asyncutils import run_coro_as_sync

    from flows.publish import publish_flow
    from pressflow.review_app.publishing import mode_from_environment, publish_now

    assert mode_from_environment().via_prefect  # the harness configures a Prefect API
    publish_flow.to_deployment(name="publish").apply()
    message = publish_now(settings, PublishMode(on_approve=True, via_prefect=True))
    assert message.startswith("Publishing started: Prefect flow run ")

    async def runs():
        async with get_client() as client:
            return await client.read_flow_runs()

    run_name = message.removeprefix("Publishing started: Prefect flow run ").split(" of ")[0]
    run = next(r for r in run_coro_as_sync(runs()) if r.name == run_name)
    assert run.parameters == {"out_dir": str(settings.out_dir.resolve())}
