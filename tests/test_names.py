"""Names in the audit trail follow one rule (text_rules.check_name), wherever they enter:
`users add`, a shared-token sign-in, `review import --reviewer`, a TMX `creationid`, and the
store itself (`db.valid_name`) for whatever reaches it another way."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from translate.storage import tmx as ttk_tmx
from typer.testing import CliRunner

from pressflow.core import db
from pressflow.drafts import reviewers, store
from pressflow.memory.store import MemoryEntry
from pressflow.cli import app
from pressflow.core.errors import ReviewError
from pressflow.review_app import create_app
from pressflow.review_app.publishing import PublishMode

from test_exchange import add_release, export
from test_review_security import PASSWORD, sign_in

FORGED = "agency\nreviewer bob approved draft 1"
TOKEN = "a shared team token"


def cli(settings, *args):
    result = CliRunner().invoke(app, [*args, "--out", str(settings.out_dir)])
    return result.exit_code, result.output


@pytest.mark.parametrize("name, words", [
    ("\u0430lice", "mixes Cyrillic and Latin"), ("ali\u200bce", "ZERO WIDTH SPACE"), ("auto-approve", "writes itself"),
    ("pressflow", "writes itself"), ("ALICE", "looks like the existing name 'alice'"), ("a1ice", "looks like"),
    ("bob\nalice", "line break"),
])
def test_users_add_refuses_look_alikes_system_names_and_invisible_characters(settings, name, words):
    reviewers.add_user(settings.db_url, "alice", PASSWORD, [])
    with pytest.raises(reviewers.AccountError, match=words):
        reviewers.add_user(settings.db_url, name, PASSWORD, [])
    assert [n for n, _ in reviewers.list_users(settings.db_url)] == ["alice"]


def test_the_same_account_again_changes_its_password(settings):
    assert reviewers.add_user(settings.db_url, "alice", PASSWORD, []) is True
    assert reviewers.add_user(settings.db_url, "alice", "another long passphrase", []) is False


@pytest.mark.parametrize("name", ["\u0430lice", "ali\u200bce", "auto-approve", "pressflow", "Alice", "bob\r\nx"])
def test_the_team_token_does_not_sign_in_a_look_alike_or_the_system(settings, name):
    reviewers.add_user(settings.db_url, "alice", PASSWORD, [])
    client = TestClient(create_app(settings.model_copy(update={"review_token": TOKEN}),
                                   PublishMode(on_approve=False, via_prefect=False)), follow_redirects=False)
    response = sign_in(client, name=name, password=TOKEN)
    assert response.status_code == 400, response.text
    assert client.get("/").status_code in (302, 303, 307)  # not signed in
    with db.session_scope(settings.db_url) as session:
        assert session.scalars(select(reviewers.ReviewSession)).all() == []


def test_the_team_token_still_signs_in_a_plain_name(settings):
    reviewers.add_user(settings.db_url, "alice", PASSWORD, [])
    client = TestClient(create_app(settings.model_copy(update={"review_token": TOKEN}),
                                   PublishMode(on_approve=False, via_prefect=False)), follow_redirects=False)
    assert sign_in(client, name="guest", password=TOKEN).status_code == 303


@pytest.mark.parametrize("reviewer", [FORGED, "auto-approve", "\u0430gency"])
def test_xliff_import_refuses_a_reviewer_name_that_forges_the_trail(settings, tmp_path, reviewer):
    draft_id = add_release(settings)
    exported = export(settings, tmp_path / "a.xlf")
    exported.getunits()[1].target = "Sirve a la región del mar de Aral."
    exported.savefile(str(tmp_path / "back.xlf"))
    code, output = cli(settings, "review", "import", str(tmp_path / "back.xlf"), "--reviewer", reviewer)
    assert code == 1 and output.count("\n") == 1 and "nothing imported" in output, output
    with db.session_scope(settings.db_url) as session:
        assert store.get_draft(session, draft_id).revision == 1


def test_xliff_import_refuses_a_translation_with_a_bidi_override(settings, tmp_path):
    add_release(settings)
    exported = export(settings, tmp_path / "a.xlf")
    exported.getunits()[1].target = "Sirve a la \u202eregión\u202c."
    exported.savefile(str(tmp_path / "back.xlf"))
    code, output = cli(settings, "review", "import", str(tmp_path / "back.xlf"), "--reviewer", "agency")
    assert code == 1 and "RIGHT-TO-LEFT OVERRIDE" in output and "not imported" in output, output


def test_a_tmx_creationid_with_a_line_break_is_refused_and_the_rest_imported(settings, tmp_path):
    file = ttk_tmx.tmxfile(sourcelanguage="en")
    for number, author in enumerate([FORGED, "agency", "auto-approve", None]):
        file.addtranslation(f"Sentence {number}.", "en", f"Frase {number}.", "es")
        if author:
            file.units[-1].xmlelement.set("creationid", author)
    path = tmp_path / "memory.tmx"
    path.write_bytes(bytes(file))
    code, output = cli(settings, "memory", "import", str(path))
    assert code == 1, output
    assert "translation unit 1: the creationid 'agency\\nreviewer bob approved draft 1' contains a line break" in output
    assert "translation unit 3: the creationid 'auto-approve' is (or looks like) a name pressflow writes" in output
    assert "imported 2 entries as human; 2 refused" in output
    with db.session_scope(settings.db_url) as session:
        authors = set(session.scalars(select(MemoryEntry.author)))
    assert authors == {"agency", "tmx import"}


@pytest.mark.parametrize("name", [FORGED, "a\u202eb", "x\u200b"])
def test_the_store_refuses_names_with_line_breaks_or_invisible_characters(settings, name):
    draft_id = add_release(settings)
    with db.session_scope(settings.db_url) as session, pytest.raises(ReviewError, match="one line of visible"):
        store.set_status(session, store.get_draft(session, draft_id), store.APPROVED, reviewer=name)
