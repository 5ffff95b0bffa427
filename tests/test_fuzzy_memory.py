"""Fuzzy memory suggestions on real SQLite (FTS5 trigram) and PostgreSQL (pg_trgm) stores."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from pressflow.core import db
from pressflow.drafts import reviewers, service, store
from pressflow.memory import fuzzy
from pressflow.memory.store import MemoryEntry, MemorySource, SqlMemory, SuggestionCache
from pressflow.core.config import Settings
from pressflow.review_app import create_app
from pressflow.review_app.publishing import PublishMode
from pressflow.memory.scoring import adapt, fuzzy_form, score

ENGINE = "argos-en-es-1.0"
PASSWORD = "correct horse battery"


def postgres_url() -> str | None:
    from conftest import postgres_server_url  # the variable's server, else a throwaway cluster

    url = postgres_server_url()
    if not url and os.environ.get("CI") == "1":
        pytest.fail("CI=1 but PRESSFLOW_TEST_POSTGRES_URL is unset: the PostgreSQL tests must run in CI")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh store: SQLite in a temp folder, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server = postgres_url()
    if not server:
        pytest.skip("PRESSFLOW_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
    name = f"i16mem_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.rsplit("/", 1)[0] + f"/{name}"
    yield url
    db._engines.pop(url).dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_numbers_compare_as_placeholders_and_are_put_back():
    old, new = "The forum was held in 2021 with ⟦0⟧.", "The forum was held in 2022 with ⟦0⟧."
    assert fuzzy_form(old) == fuzzy_form(new) == "The forum was held in ⟦#⟧ with ⟦0⟧."
    assert score(fuzzy_form(old), fuzzy_form(new)) == 100
    assert adapt(old, "El foro se celebró en 2021 con ⟦0⟧.", new) == "El foro se celebró en 2022 con ⟦0⟧."
    # Damerau-Levenshtein: a transposition is one edit (Levenshtein would count two)
    assert score("The forum opened today.", "The forum opened tdoay.") == 95


def test_suggestions_rank_human_first_and_fit_the_sentence(db_url):
    machine = SqlMemory(db_url)
    machine.save("en", "es", ENGINE, {
        "The office in ⟦0⟧ was opened in 2021 by the alliance.": "La oficina en ⟦0⟧ fue abierta en 2021 por la alianza.",
        "Delegates from twenty countries attended the forum.": "Asistieron delegados de veinte países.",
        "A sentence about something else entirely, nothing alike.": "Otra cosa.",
    })
    SqlMemory(db_url, author="alice").save("en", "es", "human", {
        "The office in ⟦0⟧ was opened in 2021 by the alliance members.":
            "Los miembros de la alianza abrieron la oficina en ⟦0⟧ en 2021.",
    })
    wanted = "The office in ⟦0⟧ was opened in 2023 by the alliance."
    found = machine.suggest("en", "es", [wanted, "Nothing in the memory looks like this at all."])
    assert list(found) == [wanted]  # the second sentence has nothing at 75% or more
    first, second = found[wanted]
    assert (first.origin, first.who) == ("human", "alice") and first.score < second.score == 100
    assert first.text == "Los miembros de la alianza abrieron la oficina en ⟦0⟧ en 2023."
    assert (second.origin, second.who, second.text) == ("machine", ENGINE,
                                                        "La oficina en ⟦0⟧ fue abierta en 2023 por la alianza.")
    assert first.date == dt.date.today().isoformat() or first.date  # YYYY-MM-DD of the entry
    assert re.fullmatch(r"suggestion \d+% \(human, alice, \d{4}-\d\d-\d\d\): .+", first.line())
    # an entry with the very same source is the sentence's own translation, not a suggestion
    same = "Delegates from twenty countries attended the forum."
    assert same not in machine.suggest("en", "es", [same])
    # other target languages' entries are not offered
    assert machine.suggest("en", "zh", [wanted]) == {}


def add_draft(url: str, segments: list[dict], text_: str) -> int:
    with db.session_scope(url) as session:
        store.upsert_release(session, slug="office", title="Office", date=dt.date(2022, 9, 12), publish_at=None,
                             fingerprint="f1", record={}, source_file=None)
        draft = store.add_draft(session, slug="office", lang="es", channel="release", fingerprint="f1",
                                source_text=" ".join(s["source"] for s in segments) + "\n", text=text_,
                                meta={"segments": segments})
        session.flush()
        return draft.id


SEGMENTS = [
    {"key": "⟦0⟧ opened an office in Tashkent in 2022.", "values": ["ANSO"],
     "source": "ANSO opened an office in Tashkent in 2022.", "target": "⟦0⟧ abrió una oficina.",
     "text": "ANSO abrió una oficina."},
    {"key": "Nothing like this sentence is in the memory.", "values": [],
     "source": "Nothing like this sentence is in the memory.", "target": "Nada.", "text": "Nada."},
]


def test_review_show_prints_suggestions_and_caches_them_per_revision(db_url, tmp_path):
    settings = Settings(out_dir=tmp_path / "out", database_url=db_url)
    SqlMemory(db_url, author="bob").save("en", "es", "human", {
        "⟦0⟧ opened an office in Tashkent in 2021.": "⟦0⟧ inauguró una oficina en Taskent en 2021."})
    draft_id = add_draft(db_url, SEGMENTS, "ANSO abrió una oficina. Nada.\n")
    shown = service.show(settings, draft_id)
    today = dt.date.today().isoformat()
    assert f"suggestion 100% (human, bob, {today}): ANSO inauguró una oficina en Taskent en 2022." in shown
    assert "sentence 1: ANSO opened an office in Tashkent in 2022." in shown and "sentence 2" not in shown
    with db.session_scope(db_url) as session:
        cached = session.get(SuggestionCache, draft_id)
        assert cached.revision == 1 and list(cached.suggestions) == ["0"]
        stamp = cached.stamp
    assert service.show(settings, draft_id) == shown  # from the cache: same stamp, same revision
    SqlMemory(db_url, author="carol").save("en", "es", "human", {
        "Nothing like this sentence is in the memory at all.": "Nada parecido está en la memoria."})
    again = service.show(settings, draft_id)  # the memory changed: computed again
    assert "suggestion 86% (human, carol" in again and "sentence 2: Nothing like" in again
    with db.session_scope(db_url) as session:
        assert session.get(SuggestionCache, draft_id).stamp != stamp


def test_review_page_offers_suggestions_with_a_use_button(db_url, tmp_path):
    settings = Settings(out_dir=tmp_path / "out", database_url=db_url)
    reviewers.add_user(db_url, "alice", PASSWORD, [])
    SqlMemory(db_url, author="bob").save("en", "es", "human", {
        "⟦0⟧ opened an office in Tashkent in 2021.": "⟦0⟧ inauguró una oficina en Taskent en 2021."})
    draft_id = add_draft(db_url, SEGMENTS, "ANSO abrió una oficina. Nada.\n")
    client = TestClient(create_app(settings, PublishMode(on_approve=False, via_prefect=False)), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text).group(1)
    client.post("/signin", data={"name": "alice", "password": PASSWORD, "csrf_token": token})
    response = client.get(f"/drafts/{draft_id}")
    html = response.text
    row = re.search(r'<tr id="segment-1"[^>]*>(.*?)</tr>', html, re.S).group(1)
    assert "100%" in row and "human, bob" in row
    button = re.search(r'<button type="button" class="use-suggestion" data-target="seg-1" data-text="([^"]+)">', row)
    assert button.group(1) == "ANSO inauguró una oficina en Taskent en 2022."
    assert 'id="seg-1"' in row  # the box the button fills
    assert "use-suggestion" not in re.search(r'<tr id="segment-2"[^>]*>(.*?)</tr>', html, re.S).group(1)
    # CSP-safe: no inline handlers; the script that wires the button carries the page's nonce
    assert "onclick" not in html
    nonce = re.search(r"script-src 'nonce-([^']+)'", response.headers["content-security-policy"]).group(1)
    script = re.search(r'<script nonce="([^"]+)">\s*// "Use this"', html)
    assert script and script.group(1) == nonce


def test_a_store_made_before_the_fuzzy_index_gets_its_sources_indexed(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    SqlMemory(url).save("en", "es", ENGINE, {"The forum opened in Lima today.": "El foro abrió en Lima hoy."})
    engine = db._engines.pop(url)
    with engine.begin() as connection:  # as a store written before memory_sources existed
        connection.execute(text("DELETE FROM memory_sources"))
        connection.execute(text("DELETE FROM memory_grams"))
        connection.execute(text("DELETE FROM schema_migrations"))  # made before numbered migrations
    engine.dispose()
    found = SqlMemory(url).suggest("en", "es", ["The forum opened in Lima yesterday."])
    assert [s.text for s in found["The forum opened in Lima yesterday."]] == ["El foro abrió en Lima hoy."]
    with db.session_scope(url) as session:
        assert session.scalar(select(MemorySource.folded)) == "the forum opened in lima today."
    assert fuzzy.rarest(["aaa", "bbb", "ccc", "ddd"], {"aaa": 5, "bbb": 1, "ccc": 900, "ddd": 0}) == ["bbb", "aaa", "ccc"]


# PostgreSQL only: SQLite's FTS5 index lists a trigram's rows itself, it keeps no id lists.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgres_counts_trigrams_from_id_lists_and_falls_back_to_pg_trgm(db_url):
    memory = SqlMemory(db_url)
    memory.save("en", "es", ENGINE, {"The forum opened in Lima today.": "El foro abrió en Lima hoy.",
                                     "Delegates from twenty countries attended.": "Asistieron delegados."})
    wanted = "The forum opened in Lima yesterday."
    engine = db.get_engine(db_url)
    with engine.begin() as connection:
        lists = dict(connection.execute(text("SELECT gram, sources FROM memory_grams WHERE gram IN ('lim', 'for')")).all())
        ids = dict(connection.execute(text("SELECT folded, id FROM memory_sources")).all())
    assert lists == {"lim": [ids["the forum opened in lima today."]], "for": [ids["the forum opened in lima today."]]}
    # a store made before the id lists existed gets them when opened
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE memory_grams DROP COLUMN sources"))
        connection.execute(text("DELETE FROM schema_migrations"))  # made before numbered migrations
    db._engines.pop(db_url).dispose()
    assert [s.text for s in SqlMemory(db_url).suggest("en", "es", [wanted])[wanted]] == ["El foro abrió en Lima hoy."]
    with db.get_engine(db_url).begin() as connection:
        assert connection.scalar(text("SELECT sources FROM memory_grams WHERE gram = 'lim'")) == [ids["the forum opened in lima today."]]
        # trigrams past the cap keep no id list: the pg_trgm index is asked for them instead
        connection.execute(text("UPDATE memory_grams SET sources = NULL"))
    assert [s.text for s in memory.suggest("en", "es", [wanted])[wanted]] == ["El foro abrió en Lima hoy."]


def test_a_store_made_before_learned_from_gets_the_column(db_url):
    SqlMemory(db_url).save("en", "es", ENGINE, {"The forum opened in Lima today.": "El foro abrió en Lima hoy."})
    engine = db._engines.pop(db_url)
    with engine.begin() as connection:  # as a store written before entries kept where they came from
        connection.execute(text("ALTER TABLE translation_memory DROP COLUMN learned_from"))
        connection.execute(text("DELETE FROM schema_migrations WHERE number >= 4"))  # made by migration 3's code
    engine.dispose()
    SqlMemory(db_url, author="ana", release="office").save("en", "es", "human", {"Hello.": "Hola."})
    with db.session_scope(db_url) as session:
        rows = dict(session.execute(select(MemoryEntry.source_text, MemoryEntry.learned_from)).all())
    assert rows == {"The forum opened in Lima today.": None, "Hello.": "release office"}
